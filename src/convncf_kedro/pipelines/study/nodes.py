"""The study: MF, MF trained longer and each ConvNCF recipe on several seeds, paired over the same test users.

Every member reuses a `train` node with its seed (and recipe) put into the parameters, so a member is
trained exactly as `kedro run --pipeline train` would train it; the report compares variants user by user.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from convncf_kedro.interactions.lineage import check_same_run  # noqa: E402
from convncf_kedro.models import load_model  # noqa: E402
from convncf_kedro.params import EvaluationParams, PretrainParams, StudyParams, parse_params  # noqa: E402
from convncf_kedro.pipelines.convncf.nodes import train_convncf  # noqa: E402
from convncf_kedro.pipelines.evaluation.nodes import evaluate_model, markdown_table  # noqa: E402
from convncf_kedro.pipelines.pretrain.nodes import train_mf  # noqa: E402
from convncf_kedro.ranking.metrics import mean_interval, paired_difference  # noqa: E402
from convncf_kedro.tracking import MetricHistory, history_metrics, metric_key, value_metrics  # noqa: E402
from convncf_kedro.training.stage import check_trained_on, seed_everything, train_stage  # noqa: E402

MF, MF_LONGER = "mf", "mf_longer"
Member = tuple[int, str]  # (seed, variant)


def variants(recipes: Sequence[str]) -> list[str]:
    """The study's variants in report order: the two baselines, then the ConvNCF recipes."""
    return [MF, MF_LONGER, *recipes]


def _with_training(params: dict, **training: object) -> dict:
    return {**params, "training": {**params["training"], **training}}


def _member_budget(s: StudyParams, seed: int) -> dict:
    """What every variant beyond MF shares: its seed, and the study's epoch cap and early-stopping schedule."""
    return {"seed": seed, "epochs": s.extra_epochs, "validate_every": s.validate_every, "patience": s.patience,
            "min_epochs": s.min_epochs}


def train_mf_member(
    train_matrix: sp.csr_matrix, valid: pd.DataFrame, valid_negatives: pd.DataFrame, resume_checkpoint: dict | None,
    ingestion_manifest: dict, pretrain: dict, *, seed: int,
) -> Iterator[tuple[dict, dict, pd.DataFrame]]:
    """MF-BPR pretraining as `train` runs it, with this member's seed."""
    yield from train_mf(train_matrix, valid, valid_negatives, resume_checkpoint, ingestion_manifest,
                        _with_training(pretrain, seed=seed))


def train_mf_longer(
    train_matrix: sp.csr_matrix, valid: pd.DataFrame, valid_negatives: pd.DataFrame, mf_model: dict,
    resume_checkpoint: dict | None, ingestion_manifest: dict, pretrain: dict, study: dict, *, seed: int,
) -> Iterator[tuple[dict, dict, pd.DataFrame]]:
    """The control: MF continued from its best epoch for the epochs ConvNCF gets, embeddings only."""
    p = parse_params(PretrainParams, pretrain, "pretrain")
    s = parse_params(StudyParams, study, "study")
    data = check_same_run(ingestion_manifest, "study", train_matrix=train_matrix, valid=valid,
                          valid_negatives=valid_negatives)
    check_trained_on(mf_model, data, "study")
    model = load_model(mf_model)
    seed_everything(seed)
    training = p.training.model_copy(update=_member_budget(s, seed))
    yield from train_stage(f"MF trained longer (seed {seed})", model, train_matrix, valid, valid_negatives,
                           resume_checkpoint, s.mf_longer.batch_size, s.mf_longer.phases, training, data,
                           recipe=MF_LONGER)


def train_convncf_member(
    train_matrix: sp.csr_matrix, valid: pd.DataFrame, valid_negatives: pd.DataFrame, mf_model: dict,
    resume_checkpoint: dict | None, ingestion_manifest: dict, convncf: dict, study: dict, *, seed: int, recipe: str,
) -> Iterator[tuple[dict, dict, pd.DataFrame]]:
    """ConvNCF as `train` trains it, with this member's recipe and seed, for the study's extra epochs."""
    s = parse_params(StudyParams, study, "study")
    params = _with_training({**convncf, "recipe": recipe}, **_member_budget(s, seed))
    yield from train_convncf(train_matrix, valid, valid_negatives, mf_model, resume_checkpoint, ingestion_manifest,
                             params)


def evaluate_member(
    saved_model: dict, train_matrix: sp.csr_matrix, valid: pd.DataFrame, valid_negatives: pd.DataFrame,
    test: pd.DataFrame, test_negatives: pd.DataFrame, ingestion_manifest: dict, evaluation: dict, study: dict,
) -> tuple[dict, pd.DataFrame]:
    """`evaluation`'s test metrics by the study's protocols: every member on the same users and candidates."""
    s = parse_params(StudyParams, study, "study")
    return evaluate_model(saved_model, train_matrix, valid, valid_negatives, test, test_negatives, ingestion_manifest,
                          {**evaluation, "protocols": s.protocols})


def compare_variants(
    members: Sequence[Member], study: dict, evaluation: dict, *results: dict | pd.DataFrame
) -> tuple[pd.DataFrame, list[dict]]:
    """Per protocol and metric, each variant's mean over users (seeds averaged per user) with a bootstrap
    interval, and its paired difference from MF and from MF trained longer.

    ``results`` holds each member's ``(test_metrics, per_user_metrics)`` in the order of ``members``.
    Returns the table and one row per member (its best epoch, validation and test means).
    """
    s = parse_params(StudyParams, study, "study")
    e = parse_params(EvaluationParams, evaluation, "evaluation")
    test_metrics = dict(zip(members, results[0::2], strict=True))
    per_user = dict(zip(members, results[1::2], strict=True))
    names = [variant for variant in variants(s.recipes) if any(v == variant for _, v in members)]
    seeds = sorted({seed for seed, _ in members})
    rows = []
    for protocol in s.protocols:
        frames = {member: frame[frame["protocol"] == protocol] for member, frame in per_user.items()}
        _check_pairing(protocol, test_metrics, frames)
        for metric in s.metrics:
            # users × seeds per variant, then each user's mean over seeds
            by_seed = {v: np.stack([frames[(seed, v)][metric].to_numpy() for seed in seeds], axis=1) for v in names}
            values = {v: by_seed[v].mean(axis=1) for v in names}
            for variant in names:
                low, high = mean_interval(values[variant], e.confidence, e.bootstrap_resamples, e.seed)
                row = {"protocol": protocol, "metric": metric, "variant": variant, "seeds": len(seeds),
                       "mean": float(values[variant].mean()), "ci_low": low, "ci_high": high,
                       "seed_sd": float(by_seed[variant].mean(axis=0).std(ddof=1)) if len(seeds) > 1 else 0.0}
                for baseline in (MF, MF_LONGER):
                    if variant in (MF, baseline):  # MF is the reference; MF trained longer is compared with MF
                        continue
                    compared = paired_difference(values[variant], values[baseline], e.confidence,
                                                 e.bootstrap_resamples, e.seed)
                    row |= {f"vs_{baseline}": compared["difference"], f"vs_{baseline}_low": compared["ci_low"],
                            f"vs_{baseline}_high": compared["ci_high"], f"vs_{baseline}_verdict": compared["verdict"]}
                rows.append(row)
    member_rows = [
        {"seed": seed, "variant": variant, "best_epoch": metrics["best_epoch"], "stopped": metrics.get("stopped"),
         "valid": metrics["valid"][metrics["selection_metric"]], "selection_metric": metrics["selection_metric"],
         **{f"{protocol}.{metric}": metrics[protocol][metric] for protocol in s.protocols for metric in s.metrics}}
        for (seed, variant), metrics in test_metrics.items()
    ]
    return pd.DataFrame(rows), member_rows


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


def write_study_report(
    table: pd.DataFrame, members: list[dict], dataset_name: str, dataset_statistics: dict, study: dict
) -> tuple[str, dict]:
    """The answer in words (Markdown) and in numbers (JSON): does any ConvNCF variant beat MF here?"""
    s = parse_params(StudyParams, study, "study")
    lines = [
        f"# Does ConvNCF beat MF on {dataset_name}?",
        "",
        f"{len(s.seeds)} seeds ({', '.join(map(str, s.seeds))}); every variant starts from its seed's MF-BPR (best "
        f"validation epoch) and trains at most {s.extra_epochs} more epochs (validated every {s.validate_every}, "
        f"stopping after {s.patience} checks without improvement, not before epoch {s.min_epochs}), keeping its "
        "best validation epoch; "
        "`mf_longer` is MF continued for the same epochs (a control: a gain may come from extra embedding "
        "training, not from the convolutions). All scored in fp32 on the same test users and candidates. "
        "`vs_*`: the paired difference over users (seeds averaged per user) with its bootstrap interval; a "
        "difference is a gain or a loss only when its interval excludes 0.",
        "",
        f"{dataset_statistics['users']:,} users × {dataset_statistics['items']:,} items; density "
        f"{dataset_statistics['density']:.4%}.",
        "",
    ]
    verdicts = []
    for (protocol, metric), rows in table.groupby(["protocol", "metric"], sort=False):
        lines += [f"## {metric}, {protocol} protocol", "", markdown_table(rows.drop(columns=["protocol", "metric"])), ""]
        for row in rows.itertuples(index=False):
            if row.variant in (MF, MF_LONGER):
                continue
            verdicts.append(f"{row.variant} vs MF on {metric} ({protocol}): {row.vs_mf_verdict}"
                            f" ({row.vs_mf:+.4f}, {row.vs_mf_low:+.4f} to {row.vs_mf_high:+.4f})")
    kept_start = kept_starts(members)
    verdicts += [f"{variant} kept its start (best epoch 0: no epoch improved validation) for {count} of "
                 f"{len(s.seeds)} seeds" for variant, count in kept_start.items()]
    lines += ["## Verdicts", "", *[f"- {line}" for line in verdicts], "", "## Members", "",
              markdown_table(pd.DataFrame(members)), ""]
    summary = {"dataset": dataset_name, "seeds": s.seeds, "extra_epochs": s.extra_epochs,
               "schedule": {"validate_every": s.validate_every, "patience": s.patience, "min_epochs": s.min_epochs},
               "statistics": dataset_statistics, "table": table.to_dict(orient="records"), "members": members,
               "kept_start": kept_start}
    return "\n".join(lines), summary


def kept_starts(members: list[dict]) -> dict[str, int]:
    """Per variant trained beyond MF, how many seeds selected its start (epoch 0): for ``mf_identity``,
    ``residual`` and ``mf_longer`` that start is MF itself, so the variant ranks exactly as MF there."""
    return dict(Counter(member["variant"] for member in members if member["variant"] != MF and member["best_epoch"] == 0))


_BASELINES = ((MF, -0.15, "o"), (MF_LONGER, 0.15, "s"))  # what each variant is compared with: row offset, marker


def plot_study(table: pd.DataFrame) -> plt.Figure:
    """Forest plot: each variant's difference from MF and from MF trained longer, with its interval."""
    panels = list(table.groupby(["protocol", "metric"], sort=False))
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 3.5), squeeze=False)
    for ax, ((protocol, metric), rows) in zip(axes[0], panels, strict=True):
        labels = [variant for variant in rows["variant"] if variant != MF]  # one row per variant compared
        for baseline, offset, marker in _BASELINES:
            compared = rows[rows[f"vs_{baseline}"].notna()] if f"vs_{baseline}" in rows else rows.iloc[:0]
            for row in compared.itertuples(index=False):
                difference = getattr(row, f"vs_{baseline}")
                low, high = getattr(row, f"vs_{baseline}_low"), getattr(row, f"vs_{baseline}_high")
                verdict = getattr(row, f"vs_{baseline}_verdict")
                colour = "tab:green" if verdict == "gain" else "tab:red" if verdict == "loss" else "tab:grey"
                ax.errorbar(difference, labels.index(row.variant) + offset, xerr=[[difference - low], [high - difference]],
                            fmt=marker, color=colour, capsize=3)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_yticks(range(len(labels)), labels)
        ax.invert_yaxis()
        ax.set(xlabel=f"difference in test {metric} (paired bootstrap interval)", title=f"{metric}, {protocol}")
        ax.legend(handles=[Line2D([], [], marker=marker, color="black", linestyle="", label=f"vs {baseline}")
                           for baseline, _, marker in _BASELINES], fontsize=8)
    fig.suptitle("variant − baseline: green gain, red loss, grey no significant difference", fontsize=9)
    fig.tight_layout()
    return fig


def study_tracked_metrics(members: Sequence[Member], table: pd.DataFrame, *histories: pd.DataFrame) -> MetricHistory:
    """MLflow metrics of the study run: each member's training curves, and the table's means and differences."""
    out: MetricHistory = {}
    for (seed, variant), history in zip(members, histories, strict=True):
        out |= history_metrics(f"{variant}/seed_{seed}", history)
    for row in table.to_dict(orient="records"):
        numbers = {key: value for key, value in row.items() if key not in ("protocol", "metric", "variant")}
        out |= value_metrics(metric_key("study", row["variant"], row["protocol"], row["metric"]), numbers)
    return out
