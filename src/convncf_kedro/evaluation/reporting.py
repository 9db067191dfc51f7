"""What people read and look at: Markdown tables and reports, the plots, and the one colour rule of a verdict."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from convncf_kedro.config.params import StudyParams  # noqa: E402
from convncf_kedro.evaluation.comparison import BEST_BASELINE, MF, MF_LONGER, kept_starts  # noqa: E402

VERDICT_COLOURS = {"gain": "tab:green", "loss": "tab:red"}  # anything else (no significant difference): grey


def verdict_colour(verdict: str) -> str:
    return VERDICT_COLOURS.get(verdict, "tab:grey")


def markdown_table(table: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    for row in table.itertuples(index=False):
        cells = ["" if pd.isna(v) else f"{v:.4f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(
    table: pd.DataFrame, mf_metrics: dict, convncf_metrics: dict, dataset_statistics: dict, models: pd.DataFrame,
    recommendation: str,
) -> str:
    """A Markdown page: does ConvNCF beat its MF pretraining, and by how much, on validation and test."""
    mf_metric, metric = mf_metrics["selection_metric"], convncf_metrics["selection_metric"]
    valid_mf, valid_convncf = mf_metrics["valid"][mf_metric], convncf_metrics["valid"][metric]
    verdict = (f"ConvNCF {'is at or above' if valid_convncf >= valid_mf else 'is below'} MF" if metric == mf_metric
               else "selected on different metrics, so not compared")
    lines = [
        "# ConvNCF vs its MF pretraining",
        "",
        f"ConvNCF recipe: `{convncf_metrics.get('recipe')}`. Best epochs on validation (sampled negatives): "
        f"MF {mf_metric} {valid_mf:.4f} at epoch {mf_metrics['best_epoch']} ({mf_metrics['valid_precision']}), "
        f"ConvNCF {metric} {valid_convncf:.4f} at epoch {convncf_metrics['best_epoch']} "
        f"({convncf_metrics['valid_precision']}) — {verdict}."
        + (" Epoch 0 is ConvNCF's start: no training epoch improved on it on validation, so it was kept "
           "(for a recipe that starts as MF, that start ranks as MF does)." if convncf_metrics["best_epoch"] == 0 else ""),
        "",
        *[f"{name} training {metrics['stopped']}." for name, metrics in (("MF", mf_metrics), ("ConvNCF", convncf_metrics))
          if metrics.get("stopped")],
        "",
        "## Test split",
        "",
        f"Test scores computed in {mf_metrics['precision']} (MF) and {convncf_metrics['precision']} (ConvNCF; "
        "bf16 is used only where validation NDCG@10 equals fp32's to 3 decimals); ties "
        "count against the held-out item in both protocols. `ci_low`–`ci_high`: a paired bootstrap interval of "
        "ConvNCF − MF over the same users and candidates (one trained model each); a difference is a gain or a "
        "loss only when its interval excludes 0.",
        "",
        markdown_table(table.astype({"k": "Int64"})),  # read back from CSV, K is float beside AUC's empty K
        "",
        "## Every model",
        "",
        "MF, ConvNCF and the simple baselines (each tuned on validation only, its parameters below), on the same "
        "users and candidates. `vs_best_baseline`: the paired difference from the baseline that ranked best on "
        "validation, with its interval; `tied_held_out`: test rows whose held-out item tied a negative (the tie "
        "rule ranks it last among them: KNN scores are often exactly 0), `mean_random_ties` the metric with ties "
        "broken at random instead. One seed: the intervals are over users only. Only the recommendation's comparison "
        "below (the model best on validation against the runner-up, fixed before the test split is read) is "
        "declared; every other verdict here is exploratory, not adjusted for the number of comparisons."
        + (f" {mf_metrics['cold_test_users']:,} test users have no training interaction: every model ranks them by "
           "training popularity." if mf_metrics.get("cold_test_users") else ""),
        "",
        *_model_lines(models),
        "",
        "## Data",
        "",
        f"{dataset_statistics['users']:,} users × {dataset_statistics['items']:,} items; interactions: "
        + ", ".join(f"{k} {v:,}" for k, v in dataset_statistics["interactions"].items())
        + f"; density {dataset_statistics['density']:.4%}.",
        "",
        "Plots: `model_comparison.png` (every model), `training_curves.png`, `metrics_at_k.png`; numbers: `test_metrics_*.json`, `metrics_table.csv`, "
        "`model_table.csv`.",
        "",
        recommendation,
    ]
    return "\n".join(lines) + "\n"


def _model_lines(models: pd.DataFrame) -> list[str]:
    if models.empty:
        return ["(no baselines were evaluated)"]
    shown = models[models["metric"].isin(["ndcg@10", "hr@10"])].drop(columns="parameters")
    chosen = models.drop_duplicates("model").query("parameters.notna() and parameters != ''", engine="python")
    return [markdown_table(shown.astype({"tied_held_out": "Int64"})), "", "Chosen on validation: "
            + "; ".join(f"{row.model} ({row.parameters})" for row in chosen.itertuples()) + "."]


def plot_training_curves(
    mf_history: pd.DataFrame, convncf_history: pd.DataFrame, mf_metrics: dict, convncf_metrics: dict
) -> plt.Figure:
    """Loss and the validation selection metric per epoch; ConvNCF drawn from MF's best epoch on, where it starts."""
    metric = convncf_metrics["selection_metric"]
    mf_metric = mf_metrics["selection_metric"]
    start = int(mf_metrics["best_epoch"])
    fig, (loss_ax, metric_ax) = plt.subplots(1, 2, figsize=(11, 4))
    curves = (("MF-BPR", mf_history, 0, mf_metric),
              (f"ConvNCF, {convncf_metrics.get('recipe')} (from MF's best epoch)", convncf_history, start, metric))
    for name, history, offset, column in curves:
        trained = history[history["epoch"] > 0]
        loss_ax.plot(trained["epoch"] + offset, trained["loss"], label=name)
        if column == metric:
            checked = history.dropna(subset=[column])  # epochs between validation checks have no metric
            metric_ax.plot(checked["epoch"] + offset, checked[column], marker=".", label=name)
    if mf_metric == metric:
        metric_ax.axhline(mf_metrics["valid"][metric], color="grey", linestyle="--", label="MF best")
    loss_ax.set(xlabel="epoch", ylabel="BPR loss per triple", title="training loss", yscale="log")
    metric_ax.set(xlabel="epoch", ylabel=f"validation {metric}", title="validation (sampled negatives)")
    loss_ax.legend()
    metric_ax.legend()
    fig.tight_layout()
    return fig


def plot_metrics_at_k(table: pd.DataFrame) -> plt.Figure:
    """Per protocol: test metric@K side by side (top), and ConvNCF − MF with its interval (bottom)."""
    protocols = list(dict.fromkeys(table["protocol"]))
    fig, axes = plt.subplots(2, len(protocols), figsize=(6 * len(protocols), 8), squeeze=False)
    for column, protocol in enumerate(protocols):
        rows = table[(table["protocol"] == protocol) & table["k"].notna() & (table["metric"] != "recall")]
        labels = [f"{m}@{int(k)}" for m, k in zip(rows["metric"], rows["k"], strict=True)]
        x = np.arange(len(rows))
        bars, forest = axes[0][column], axes[1][column]
        bars.bar(x - 0.2, rows["MF"], width=0.4, label="MF-BPR")
        bars.bar(x + 0.2, rows["ConvNCF"], width=0.4, label="ConvNCF")
        bars.set_xticks(x, labels, rotation=60, fontsize=8)
        bars.set(title=f"test, {protocol} ranking")
        bars.legend()
        difference = rows["ConvNCF - MF"].to_numpy()
        errors = np.vstack([difference - rows["ci_low"].to_numpy(), rows["ci_high"].to_numpy() - difference])
        colours = [verdict_colour(v) for v in rows["verdict"]]
        for i in range(len(rows)):
            forest.errorbar(difference[i], i, xerr=errors[:, i:i + 1], fmt="o", color=colours[i], capsize=3)
        forest.axvline(0, color="black", linewidth=0.8)
        forest.set_yticks(x, labels, fontsize=8)
        forest.invert_yaxis()
        forest.set(xlabel="ConvNCF − MF (paired bootstrap interval)", title="difference: green gain, red loss, grey neither")
    fig.tight_layout()
    return fig


def plot_models(model_table: pd.DataFrame, metric: str = "ndcg@10") -> plt.Figure:
    """Which model? Per protocol, every model's test ``metric`` with its interval, best first; the model best on
    validation (the recommendation's candidate) in black, the others coloured by their verdict against the best
    baseline on validation (green ahead, red behind, grey neither)."""
    protocols = list(dict.fromkeys(model_table["protocol"]))
    valid_column = next(c for c in model_table.columns if c.startswith("valid_"))
    fig, axes = plt.subplots(1, len(protocols), figsize=(6 * len(protocols), 4.5), squeeze=False)
    for ax, protocol in zip(axes[0], protocols, strict=True):
        rows = model_table[(model_table["protocol"] == protocol) & (model_table["metric"] == metric)]
        rows = rows.sort_values("mean", ascending=False).reset_index(drop=True)
        chosen = rows.loc[rows[valid_column].idxmax(), "model"] if rows[valid_column].notna().any() else None
        for i, row in rows.iterrows():
            colour = "black" if row["model"] == chosen else verdict_colour(row.get("verdict"))
            ax.errorbar(row["mean"], i, xerr=[[row["mean"] - row["ci_low"]], [row["ci_high"] - row["mean"]]], fmt="o",
                        color=colour, capsize=3)
        ax.set_yticks(range(len(rows)), [f"{m} (best on validation)" if m == chosen else m for m in rows["model"]],
                      fontsize=8)
        ax.invert_yaxis()
        ax.set(xlabel=f"test {metric}, {protocol} ranking (95 % interval over users)",
               title=f"every model, {protocol} ranking")
    fig.tight_layout()
    return fig


def write_study_report(
    table: pd.DataFrame, members: list[dict], recommended: str, dataset_name: str, dataset_statistics: dict,
    s: StudyParams,
) -> tuple[str, dict]:
    """The answer in words (Markdown) and in numbers (JSON): does any ConvNCF variant beat MF here?"""
    seeds = sorted({member["seed"] for member in members})
    lines = [
        f"# Does ConvNCF beat MF on {dataset_name}?",
        "",
        f"{len(seeds)} seeds ({', '.join(map(str, seeds))}); every variant starts from its seed's MF-BPR (best "
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
            if row.variant == MF or pd.isna(row.vs_mf):
                continue
            verdicts.append(f"{row.variant} vs MF on {metric} ({protocol}): {row.vs_mf_verdict}"
                            f" ({row.vs_mf:+.4f}, {row.vs_mf_low:+.4f} to {row.vs_mf_high:+.4f})")
    kept_start = kept_starts(members)
    verdicts += [f"{variant} kept its start (best epoch 0: no epoch improved validation) for {count} of "
                 f"{len(seeds)} seeds" for variant, count in kept_start.items()]
    lines += ["## Verdicts", "", *[f"- {line}" for line in verdicts], "", "## Members", "",
              markdown_table(pd.DataFrame(members)), "", recommended, ""]
    summary = {"dataset": dataset_name, "seeds": seeds, "extra_epochs": s.extra_epochs,
               "schedule": {"validate_every": s.validate_every, "patience": s.patience, "min_epochs": s.min_epochs},
               "statistics": dataset_statistics, "table": table.to_dict(orient="records"), "members": members,
               "kept_start": kept_start, "recommendation": recommended}
    return "\n".join(lines), summary


_BASELINES = ((MF, -0.2, "o"), (MF_LONGER, 0.0, "s"), (BEST_BASELINE, 0.2, "D"))  # compared with: row offset, marker


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
                colour = verdict_colour(verdict)
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
