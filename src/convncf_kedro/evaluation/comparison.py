"""Which model should I deploy? Every evaluated model side by side on the same users, each with its interval, and
MF, ConvNCF and the rest compared pairwise with the baseline that ranked best on validation (never on test) — for one
`train` run (:func:`model_table`, :func:`recommendation`) and over a study's seeds (:func:`compare_variants`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from convncf_kedro.config.params import BaselinesParams, EvaluationParams, StudyParams
from convncf_kedro.config.study_members import Member
from convncf_kedro.ranking.metrics import (
    mean_interval,
    paired_difference,
    seed_aware_difference,
    seed_aware_interval,
)

MF, MF_LONGER = "mf", "mf_longer"  # the study's reference and its control


def split_left_out(baseline_metrics: Mapping[str, dict]) -> tuple[dict[str, dict], dict[str, str]]:
    """The baselines that were fitted and evaluated, and those left out (over the memory or co-occurrence budget) with why."""
    fitted = {name: m for name, m in baseline_metrics.items() if "left_out" not in m}
    return fitted, {name: m["left_out"] for name, m in baseline_metrics.items() if "left_out" in m}


def left_out_note(left_out: Mapping[str, str]) -> str:
    """What the recommendation could not consider, and why."""
    return "".join(f" Not compared: {reason}." for reason in left_out.values())


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
                       "mean_random_ties": test_metrics[name].get(protocol, {}).get("random_ties", {}).get(key),
                       "candidates": (test_metrics[name].get("full_ranking_candidates") or "every unseen item")
                       if protocol == "full" else "sampled negatives",
                       "parameters": ", ".join(f"{p}={v:.4g}" if isinstance(v, float) else f"{p}={v}"
                                               for p, v in (test_metrics[name].get("params") or {}).items())
                       + (f"; {stopped}" if (stopped := test_metrics[name].get("tuning_stopped")) else "")}
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
    return (recommendation_sentence(best, second, valid, metric, protocol, compared)
            + _protocols_disagree(test_metrics, metric, protocol) + _tie_rule_note(test_metrics, best, second, metric,
                                                                                  protocol))


TIES_WORTH_A_NOTE = 0.05  # share of test rows where the tie rule, not the model, placed the held-out item


def _tie_rule_note(test_metrics: Mapping[str, dict], best: str, second: str, metric: str, protocol: str) -> str:
    """Where ties are common (KNN scores are often exactly 0), whether the test order of the two models depends on the
    rule that counts a tie against the held-out item."""
    results = {name: test_metrics[name].get(protocol, {}) for name in (best, second)}
    if any("random_ties" not in r for r in results.values()):
        return ""
    shares = {name: r["tied_held_out"] / r["rows"] for name, r in results.items()}
    if max(shares.values()) <= TIES_WORTH_A_NOTE:
        return ""
    pessimistic = results[best][metric] - results[second][metric]
    random = results[best]["random_ties"][metric] - results[second]["random_ties"][metric]
    tied = ", ".join(f"{name} {share:.0%}" for name, share in shares.items())
    depends = ("the order does not depend on the tie rule" if (pessimistic >= 0) == (random >= 0)
               else "the order depends on the tie rule")
    return (f" Ties decided many test rows ({tied}); broken at random, {best} − {second} is {random:+.4f} against "
            f"{pessimistic:+.4f} with ties counted against the held-out item: {depends}.")


def _protocols_disagree(test_metrics: Mapping[str, dict], metric: str, protocol: str) -> str:
    """A note when the other protocol orders the models' test means differently at the top (Krichene & Rendle 2020:
    sampled metrics can)."""
    other = "sampled" if protocol == "full" else "full"
    orders = {}
    for name_of in (protocol, other):
        means = {name: m[name_of][metric] for name, m in test_metrics.items() if name_of in m}
        if len(means) < len(test_metrics):
            return ""
        orders[name_of] = sorted(means, key=means.get, reverse=True)[:2]
    if orders[protocol] == orders[other]:
        return ""
    return (f" On test, {protocol} ranking puts {' ahead of '.join(orders[protocol])} but {other} ranking puts "
            f"{' ahead of '.join(orders[other])}: the advice follows {protocol} ranking.")


def recommendation_sentence(best: str, second: str, valid: Mapping[str, float], metric: str, protocol: str,
                            compared: dict) -> str:
    """The one sentence: the declared comparison (best on validation − runner-up) on test, and what to do."""
    verdict = {"gain": "a significant advantage: deploy it",
               "loss": "yet it is significantly behind on test: validation did not carry over, look closer",
               "no significant difference": "not a significant difference: either will do, prefer the simpler",
               "one seed: no verdict": "one seed cannot tell a difference from seed noise: run more seeds"}
    return (f"**Recommendation:** {best} ranked best on validation {metric} ({valid[best]:.4f}, runner-up {second} "
            f"{valid[second]:.4f}); on test ({protocol} {metric}) it {'trails' if compared['difference'] < 0 else 'leads'} "
            f"{second} by {abs(compared['difference']):.4f} (difference {compared['difference']:+.4f}, interval "
            f"{compared['ci_low']:+.4f} to {compared['ci_high']:+.4f}): {verdict[compared['verdict']]}.")


# --- the study: variants × seeds -----------------------------------------------------------------------------
BEST_BASELINE = "best_baseline"  # the column prefix of each row's difference from the best baseline on validation


def variants(recipes: Sequence[str]) -> list[str]:
    """The study's variants in report order: MF and its control, then the ConvNCF recipes."""
    return [MF, MF_LONGER, *recipes]


def compare_variants(
    results: Mapping[Member, tuple[dict, pd.DataFrame]], s: StudyParams, e: EvaluationParams, b: BaselinesParams,
    baseline_metrics: dict, baseline_per_user: dict,
) -> tuple[pd.DataFrame, list[dict], str]:
    """Per protocol and metric, each variant's mean with an interval over users and seeds, and its paired difference
    from MF, from MF trained longer and from the baseline that ranked best on validation — users and seeds both
    random (:func:`~convncf_kedro.ranking.metrics.seed_aware_difference`), each seed's difference beside it; each
    tuned baseline (one fit) with its own interval and its difference from MF.

    ``results`` holds each member's ``(test_metrics, per_user_metrics)``, variants in report order; the baselines'
    come as partitions. Returns the table, one row per member (its best epoch, validation and test means) and the
    sentence to act on.
    """
    test_metrics = {member: metrics for member, (metrics, _) in results.items()}
    per_user = {member: frame for member, (_, frame) in results.items()}
    names = list(dict.fromkeys(variant for _, variant in results))
    fitted_metrics, left_out = split_left_out({name: baseline_metrics[name]() for name in b.models
                                                if name in baseline_metrics})
    fitted = list(fitted_metrics)
    fitted_per_user = {name: baseline_per_user[name]() for name in fitted}
    best = best_on_validation({name: fitted_metrics[name]["valid"].get(b.selection_metric) for name in fitted})
    seeds = sorted({seed for seed, _ in results})
    rows, sentence = [], ""
    for protocol in s.protocols:
        frames = {member: frame[frame["protocol"] == protocol] for member, frame in per_user.items()}
        _check_pairing(protocol, test_metrics, frames)
        (reference, first), *_ = frames.items()
        for name in fitted:
            scored = fitted_per_user[name]
            if (fitted_metrics[name].get(protocol, {}).get("candidates") != test_metrics[reference][protocol]["candidates"]
                    or not np.array_equal(scored.loc[scored["protocol"] == protocol, "user"], first["user"])):
                raise ValueError(f"study: the baseline {name} was evaluated on other {protocol} users or candidates "
                                 "than the members; re-run the study")
        for metric in s.metrics:
            # users × seeds per variant, then each user's mean over seeds; a baseline is one fit
            by_seed = {v: np.stack([frames[(seed, v)][metric].to_numpy() for seed in seeds], axis=1) for v in names}
            by_seed |= {name: frame.loc[frame["protocol"] == protocol, metric].to_numpy()[:, None]
                        for name, frame in fitted_per_user.items()}
            references = [MF, MF_LONGER] + ([BEST_BASELINE] if best else [])
            for variant in [*names, *fitted]:
                interval = seed_aware_interval(by_seed[variant], e.confidence)
                row = {"protocol": protocol, "metric": metric, "variant": variant, "seeds": by_seed[variant].shape[1],
                       "mean": interval["mean"], "ci_low": interval["ci_low"], "ci_high": interval["ci_high"],
                       "seed_sd": float(by_seed[variant].mean(axis=0).std(ddof=1)) if by_seed[variant].shape[1] > 1
                       else 0.0}
                for reference in references:
                    against = best if reference == BEST_BASELINE else reference
                    # MF is the reference; MF trained longer and the baselines are compared with MF
                    if variant in (MF, against) or (reference == MF_LONGER and variant in fitted):
                        continue
                    # a one-fit baseline (one column) is compared with every seed of the other side
                    compared = seed_aware_difference(by_seed[variant], by_seed[against], e.confidence)
                    row |= {f"vs_{reference}": compared["difference"], f"vs_{reference}_low": compared["ci_low"],
                            f"vs_{reference}_high": compared["ci_high"], f"vs_{reference}_verdict": compared["verdict"],
                            f"vs_{reference}_by_seed": " ".join(f"{d:+.4f}" for d in compared["by_seed"])}
                rows.append(row)
            if not sentence:  # the study's first protocol and metric decide what to deploy
                sentence = _study_recommendation(names, fitted, test_metrics, fitted_metrics, by_seed, protocol,
                                                 metric, b.selection_metric, e)
    member_rows = [
        {"seed": seed, "variant": variant, "best_epoch": metrics["best_epoch"], "stopped": metrics.get("stopped"),
         "valid": metrics["valid"][metrics["selection_metric"]], "selection_metric": metrics["selection_metric"],
         **{f"{protocol}.{metric}": metrics[protocol][metric] for protocol in s.protocols for metric in s.metrics}}
        for (seed, variant), metrics in test_metrics.items()
    ]
    return pd.DataFrame(rows), member_rows, sentence + left_out_note(left_out)


def _study_recommendation(
    names: list[str], fitted: list[str], test_metrics: dict, fitted_metrics: dict, by_seed: dict[str, np.ndarray],
    protocol: str, metric: str, selection_metric: str, e: EvaluationParams,
) -> str:
    """The recommendation over the study's variants (validation averaged over seeds) and baselines, the declared
    comparison (best on validation − runner-up) with users and seeds as the units."""
    if metric != selection_metric:
        return f"(the recommendation compares {selection_metric}; the study's first metric is {metric})"
    valid = {variant: [m["valid"].get(selection_metric) for (_, v), m in test_metrics.items() if v == variant]
             for variant in names}
    averaged = {variant: None if None in seen else float(np.mean(seen)) for variant, seen in valid.items()}
    averaged |= {name: fitted_metrics[name]["valid"].get(selection_metric) for name in fitted}
    ranked = sorted((name for name in averaged if averaged[name] is not None), key=averaged.get, reverse=True)
    if len(ranked) < 2:
        return f"Fewer than two models were selected on validation {metric}: no recommendation."
    best, second = ranked[:2]
    compared = seed_aware_difference(by_seed[best], by_seed[second], e.confidence)
    return recommendation_sentence(best, second, averaged, selection_metric, protocol, compared)


def _check_pairing(protocol: str, test_metrics: dict[Member, dict], frames: dict[Member, pd.DataFrame]) -> None:
    """Every member must have ranked the same users' same candidates, or a paired comparison means nothing."""
    (first, reference), *others = frames.items()
    for member, frame in others:
        same_candidates = test_metrics[member][protocol]["candidates"] == test_metrics[first][protocol]["candidates"]
        if not same_candidates or not np.array_equal(frame["user"].to_numpy(), reference["user"].to_numpy()):
            raise ValueError(
                f"study: {member[1]} (seed {member[0]}) was evaluated on other {protocol} users or candidates than "
                f"{first[1]} (seed {first[0]}); re-run the study so every member reads the same split"
            )


def kept_starts(members: list[dict]) -> dict[str, int]:
    """Per variant trained beyond MF, how many seeds selected its start (epoch 0): for ``mf_identity``,
    ``residual`` and ``mf_longer`` that start is MF itself, so the variant ranks exactly as MF there."""
    return dict(Counter(member["variant"] for member in members if member["variant"] != MF and member["best_epoch"] == 0))
