"""Which model should I deploy? Every evaluated model side by side on the same users, each with its interval, and
MF, ConvNCF and the rest compared pairwise with the baseline that ranked best on validation (never on test)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from convncf_kedro.ranking.metrics import mean_interval, paired_difference


def best_on_validation(valid: Mapping[str, float | None]) -> str | None:
    """The model with the highest validation metric (None where a model was selected on another metric)."""
    scored = {name: value for name, value in valid.items() if value is not None}
    return max(scored, key=scored.get) if scored else None


def model_table(
    test_metrics: Mapping[str, dict], per_user: Mapping[str, pd.DataFrame], baselines: list[str], metric: str,
    ks: list[int], confidence: float, resamples: int, seed: int,
) -> pd.DataFrame:
    """Long table: protocol, metric, model, its validation ``metric``, its test mean and interval, and its paired
    difference from the best baseline on validation (the best baseline's own row has none)."""
    valid = {name: metrics["valid"].get(metric) for name, metrics in test_metrics.items()}
    reference = best_on_validation({name: valid[name] for name in baselines})
    rows = []
    for protocol in ("sampled", "full"):
        frames = {name: frame[frame["protocol"] == protocol] for name, frame in per_user.items()
                  if protocol in test_metrics[name]}
        if len(frames) < len(per_user):
            continue
        users = [frame["user"].to_numpy() for frame in frames.values()]
        if any(not np.array_equal(users[0], other) for other in users[1:]):
            raise ValueError(f"{protocol}: the models were evaluated on different users; re-run evaluation")
        for key in [f"{m}@{k}" for m in ("ndcg", "hr") for k in ks]:
            for name, frame in frames.items():
                values = frame[key].to_numpy()
                low, high = mean_interval(values, confidence, resamples, seed)
                row = {"protocol": protocol, "metric": key, "model": name, f"valid_{metric}": valid[name],
                       "mean": float(values.mean()), "ci_low": low, "ci_high": high,
                       "tied_held_out": test_metrics[name].get(protocol, {}).get("tied_held_out"),
                       "parameters": ", ".join(f"{p}={v:.4g}" if isinstance(v, float) else f"{p}={v}"
                                               for p, v in (test_metrics[name].get("params") or {}).items())}
                if reference is not None and name != reference:
                    compared = paired_difference(values, frames[reference][key].to_numpy(), confidence, resamples, seed)
                    row |= {"vs_best_baseline": compared["difference"], "vs_low": compared["ci_low"],
                            "vs_high": compared["ci_high"], "verdict": compared["verdict"]}
                rows.append(row)
    table = pd.DataFrame(rows).astype({"tied_held_out": "Int64"}) if rows else pd.DataFrame(rows)
    table.attrs["best_baseline"] = reference
    return table


def recommendation(
    test_metrics: Mapping[str, dict], per_user: Mapping[str, pd.DataFrame], metric: str, protocol: str,
    confidence: float, resamples: int, seed: int,
) -> str:
    """One sentence to act on: the model that ranked best on validation, and whether it is ahead of the runner-up
    on test with an interval that excludes 0."""
    valid = {name: metrics["valid"].get(metric) for name, metrics in test_metrics.items()}
    ranked = sorted((name for name in valid if valid[name] is not None), key=valid.get, reverse=True)
    if len(ranked) < 2:
        return f"Fewer than two models were selected on validation {metric}: no recommendation."
    best, second = ranked[:2]
    frames = {name: per_user[name][per_user[name]["protocol"] == protocol] for name in (best, second)}
    compared = paired_difference(frames[best][metric].to_numpy(), frames[second][metric].to_numpy(), confidence,
                                 resamples, seed)
    verdict = {"gain": "a significant advantage: deploy it",
               "loss": "yet it is significantly behind on test: validation did not carry over, look closer",
               "no significant difference": "not a significant difference: either will do, prefer the simpler"}
    return (f"**Recommendation:** {best} ranked best on validation {metric} ({valid[best]:.4f}, runner-up {second} "
            f"{valid[second]:.4f}); on test ({protocol} {metric}) it leads {second} by {compared['difference']:+.4f} "
            f"(interval {compared['ci_low']:+.4f} to {compared['ci_high']:+.4f}): {verdict[compared['verdict']]}.")
