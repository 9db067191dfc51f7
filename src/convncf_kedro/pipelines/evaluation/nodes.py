"""Evaluation: test-split ranking quality of MF and ConvNCF, and the report that compares them."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import onnx  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import torch  # noqa: E402

from convncf_kedro import comparison  # noqa: E402
from convncf_kedro.errors import (
    ParameterError,  # noqa: E402
    StaleModelError,  # noqa: E402
)
from convncf_kedro.interactions.lineage import check_same_run  # noqa: E402
from convncf_kedro.interactions.prepare import positives_matrix  # noqa: E402
from convncf_kedro.models import BPRRecommender, load_model, saved_info  # noqa: E402
from convncf_kedro.models.baselines import load_baseline  # noqa: E402
from convncf_kedro.models.scoring import block_scorer, pair_scorer  # noqa: E402
from convncf_kedro.params import BaselinesParams, EvaluationParams, parse_params  # noqa: E402
from convncf_kedro.ranking.full import ScorePairs, hits_against, top_k_unseen  # noqa: E402
from convncf_kedro.ranking.metrics import (  # noqa: E402
    full_ranking_metrics_per_user,
    mean_metrics,
    paired_difference,
    sampled_metrics_per_user,
)
from convncf_kedro.ranking.sampled import candidate_matrix, evaluate_sampled, rank_sampled  # noqa: E402
from convncf_kedro.serving.engine import RankSettings, rank_users, session_for  # noqa: E402
from convncf_kedro.serving.onnx_export import check_exported_from  # noqa: E402
from convncf_kedro.serving.session import onnx_pair_scorer  # noqa: E402
from convncf_kedro.tracking import MetricHistory, value_metrics  # noqa: E402
from convncf_kedro.training import runtime  # noqa: E402
from convncf_kedro.training.stage import check_trained_on  # noqa: E402

logger = logging.getLogger(__name__)


def evaluate_model(
    saved_model: dict,
    train_matrix: sp.csr_matrix,
    valid: pd.DataFrame,
    valid_negatives: pd.DataFrame,
    test: pd.DataFrame,
    test_negatives: pd.DataFrame,
    ingestion_manifest: dict,
    params: dict,
) -> tuple[dict, pd.DataFrame]:
    """Test metrics of one trained model, scored by PyTorch (MF, and every member of the study), by the sampled
    protocol and by full ranking, in one precision: their means, and each user's (for paired comparisons)."""
    p = parse_params(EvaluationParams, params, "evaluation")
    data = check_same_run(ingestion_manifest, "evaluation", train_matrix=train_matrix, valid=valid,
                          valid_negatives=valid_negatives, test=test, test_negatives=test_negatives)
    check_trained_on(saved_model, data, "evaluation")
    device = runtime.resolve_device(p.device)
    runtime.configure(p.threads, device)
    runtime.check_precision(p.precision, device)
    model = load_model(saved_model).to(device)
    info = saved_info(saved_model)
    name = f"{info['model_class']} (epoch {info['epoch']})"
    precision, precision_check = _checked_precision(model, device, p, valid, valid_negatives, name)

    def rank_full(users: np.ndarray, seen: sp.csr_matrix, relevant: sp.csr_matrix) -> np.ndarray:
        top_items, _ = top_k_unseen(
            block_scorer(model, device, precision, p.batch_pairs), users, seen, max(p.ks), p.chunk_users,
            p.chunk_items, p.log_every_seconds, label=f"{name} full ranking", ties_last=relevant,
        )
        return top_items

    scored_by = {"precision": precision, "precision_check": precision_check, "engine": "pytorch"}
    return _evaluate(info, name, pair_scorer(model, device, precision, p.batch_pairs), rank_full, scored_by, p,
                     train_matrix, valid, test, test_negatives)


def evaluate_exported(
    graph: onnx.ModelProto,
    saved_model: dict,
    train_matrix: sp.csr_matrix,
    valid: pd.DataFrame,
    valid_negatives: pd.DataFrame,
    test: pd.DataFrame,
    test_negatives: pd.DataFrame,
    ingestion_manifest: dict,
    params: dict,
) -> tuple[dict, pd.DataFrame]:
    """:func:`evaluate_model` for the exported ConvNCF: ranked by the scoring engine with the very graph users
    score with (ONNX Runtime, fp32), on ``evaluation.cluster`` like `score`."""
    p = parse_params(EvaluationParams, params, "evaluation")
    data = check_same_run(ingestion_manifest, "evaluation", train_matrix=train_matrix, valid=valid,
                          valid_negatives=valid_negatives, test=test, test_negatives=test_negatives)
    check_trained_on(saved_model, data, "evaluation")
    check_exported_from(graph, saved_model)
    info = saved_info(saved_model)
    name = f"{info['model_class']} (epoch {info['epoch']}, ONNX)"
    serialized = graph.SerializeToString()
    device = p.device.split(":")[0]  # ONNX Runtime picks its GPU itself
    settings = RankSettings(max(p.ks), p.batch_pairs, p.chunk_users, p.chunk_items, device, p.threads,
                            p.log_every_seconds)

    def rank_full(users: np.ndarray, seen: sp.csr_matrix, relevant: sp.csr_matrix) -> np.ndarray:
        parts = sorted(rank_users(serialized, seen, users, settings, p.partition_users, p.cluster, relevant,
                                  label=f"{name} full ranking"), key=lambda part: part.index)
        return np.concatenate([part.top_items for part in parts]) if parts else np.empty((0, settings.k), np.int64)

    session = session_for(serialized, device, p.threads)
    scored_by = {"precision": "fp32", "precision_check": None, "engine": f"onnxruntime ({session.get_providers()[0]})",
                 "cluster": p.cluster}
    return _evaluate(info, name, onnx_pair_scorer(session, p.batch_pairs), rank_full, scored_by, p, train_matrix,
                     valid, test, test_negatives)


def evaluate_baselines(
    baseline_models: dict[str, Callable[[], dict]],
    train_matrix: sp.csr_matrix,
    valid: pd.DataFrame,
    valid_negatives: pd.DataFrame,
    test: pd.DataFrame,
    test_negatives: pd.DataFrame,
    ingestion_manifest: dict,
    params: dict,
) -> tuple[dict[str, dict], dict[str, pd.DataFrame]]:
    """:func:`evaluate_model` for every tuned baseline (one partition each): the same protocols, users, candidates,
    tie rule and metrics; their chosen parameters and the users scored by the popularity floor ride along."""
    p = parse_params(EvaluationParams, params, "evaluation")
    data = check_same_run(ingestion_manifest, "evaluation", train_matrix=train_matrix, valid=valid,
                          valid_negatives=valid_negatives, test=test, test_negatives=test_negatives)
    metrics, per_user = {}, {}
    for name, load in baseline_models.items():
        saved = load()
        if saved.get("data_fingerprint") != data:
            raise StaleModelError(f"evaluation: the saved baseline {name} was trained on other data (data fingerprint "
                                  f"{saved.get('data_fingerprint')}, this run's data is {data}). Re-run the training "
                                  "stages (kedro run --pipeline train) before evaluation.")
        model = load_baseline(saved)
        info = {"model_class": name, "epoch": None, "selection_metric": saved["selection_metric"],
                "valid_metrics": saved["valid_metrics"], "validated_in": "fp32", "trained_in": "fp32"}

        def rank_full(users: np.ndarray, seen: sp.csr_matrix, relevant: sp.csr_matrix, model=model, name=name) -> np.ndarray:
            top_items, _ = top_k_unseen(model.score_block, users, seen, max(p.ks), p.chunk_users, p.chunk_items,
                                        p.log_every_seconds, label=f"{name} full ranking", ties_last=relevant)
            return top_items

        scored_by = {"precision": "fp32", "precision_check": None, "engine": "numpy/scipy", "params": model.params,
                     "floor_users": model.floor_users, "trials": saved["trials"], "tuning_seconds": saved["tuning_seconds"]}
        metrics[name], per_user[name] = _evaluate(info, name, model.score_pairs, rank_full, scored_by, p, train_matrix,
                                                  valid, test, test_negatives)
    return metrics, per_user


def compare_models(
    mf_metrics: dict, convncf_metrics: dict, mf_per_user: pd.DataFrame, convncf_per_user: pd.DataFrame,
    baseline_metrics: dict[str, Callable[[], dict]], baseline_per_user: dict[str, Callable[[], pd.DataFrame]],
    evaluation: dict, baselines: dict,
) -> tuple[pd.DataFrame, str]:
    """Every model with its interval and its paired difference from the best baseline on validation, and the
    sentence that says which to deploy."""
    p = parse_params(EvaluationParams, evaluation, "evaluation")
    b = parse_params(BaselinesParams, baselines, "baselines")
    names = [name for name in b.models if name in baseline_metrics]
    test_metrics = {"MF": mf_metrics, "ConvNCF": convncf_metrics, **{n: baseline_metrics[n]() for n in names}}
    per_user = {"MF": mf_per_user, "ConvNCF": convncf_per_user, **{n: baseline_per_user[n]() for n in names}}
    table = comparison.model_table(test_metrics, per_user, names, b.selection_metric, p.ks, p.confidence,
                                   p.bootstrap_resamples, p.seed)
    protocol = "sampled" if "sampled" in p.protocols else "full"
    sentence = comparison.recommendation(test_metrics, per_user, b.selection_metric, protocol, p.confidence,
                                         p.bootstrap_resamples, p.seed)
    return table, sentence


def _evaluate(
    info: dict, name: str, score_pairs: ScorePairs, rank_full: Callable, scored_by: dict, p: EvaluationParams,
    train_matrix: sp.csr_matrix, valid: pd.DataFrame, test: pd.DataFrame, test_negatives: pd.DataFrame,
) -> tuple[dict, pd.DataFrame]:
    test = _subset_users(test, p.max_users, p.seed)
    result: dict = {
        "model": info["model_class"], "recipe": info.get("recipe"), "best_epoch": info["epoch"],
        "stopped": info.get("stopped"),
        "selection_metric": info["selection_metric"], "valid": info["valid_metrics"],
        "valid_precision": info["validated_in"], "trained_in": info["trained_in"], **scored_by,
    }
    per_user: list[pd.DataFrame] = []

    if "sampled" in p.protocols:
        users, items = candidate_matrix(test, test_negatives)
        if max(p.ks) > items.shape[1]:
            raise ParameterError("evaluation.ks", f"K={max(p.ks)} exceeds the {items.shape[1]} sampled candidates")
        started = time.perf_counter()
        ranked = rank_sampled(score_pairs, users, items, label=f"{name} on the test split")
        rows = sampled_metrics_per_user(ranked.ranks, ranked.n_negatives, p.ks)
        per_user.append(pd.DataFrame({"protocol": "sampled", "user": users, **rows}))
        result["sampled"] = {**mean_metrics(rows), "rows": len(users), "tied_held_out": int(ranked.tied.sum()),
                             "seconds": round(time.perf_counter() - started, 2),
                             "candidates": _fingerprint(users, items)}

    if "full" in p.protocols:
        n_users, n_items = train_matrix.shape
        users = np.unique(test["user"].to_numpy())
        seen = (train_matrix + positives_matrix([valid], n_users, n_items)).tocsr()
        relevant = positives_matrix([test], n_users, n_items)
        started = time.perf_counter()
        top_items = rank_full(users, seen, relevant)
        seconds = time.perf_counter() - started
        hits = hits_against(top_items, users, relevant)
        rows = full_ranking_metrics_per_user(hits, np.diff(relevant.indptr)[users], p.ks)
        per_user.append(pd.DataFrame({"protocol": "full", "user": users, **rows}))
        pairs = len(users) * n_items
        result["full"] = {**mean_metrics(rows), "users": len(users), "seconds": round(seconds, 2),
                          "pairs_per_second": round(pairs / seconds), "candidates": _fingerprint(users, seen.indptr, seen.indices)}
    return result, pd.concat(per_user, ignore_index=True)


def _fingerprint(*arrays: np.ndarray) -> str:
    """What two models' results must share to be compared pair by pair: the users and their candidates."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array, dtype=np.int64).tobytes())
    return digest.hexdigest()[:16]


def _checked_precision(
    model: BPRRecommender, device: torch.device, p: EvaluationParams, valid: pd.DataFrame,
    valid_negatives: pd.DataFrame, name: str,
) -> tuple[str, dict | None]:
    """bf16 only where it ranks like fp32: validation NDCG@10 equal to 3 decimals, else fp32 with a warning."""
    if p.precision == "fp32":
        return "fp32", None
    users, items = candidate_matrix(valid, valid_negatives)
    ndcg = {precision: evaluate_sampled(pair_scorer(model, device, precision, p.batch_pairs), users, items, [10],
                                        label=f"{name} on the validation split")["ndcg@10"]
            for precision in ("fp32", p.precision)}
    same = round(ndcg["fp32"], 3) == round(ndcg[p.precision], 3)
    if not same:
        logger.warning("%s: validation NDCG@10 is %.4f in %s but %.4f in fp32; evaluating in fp32", name,
                       ndcg[p.precision], p.precision, ndcg["fp32"])
    return (p.precision if same else "fp32"), {"asked": p.precision, "valid_ndcg@10": ndcg}


def _subset_users(test: pd.DataFrame, max_users: int | None, seed: int) -> pd.DataFrame:
    """All test users, or a seeded random ``max_users`` of them (quick looks at big datasets)."""
    users = np.unique(test["user"].to_numpy())
    if max_users is None or max_users >= len(users):
        return test
    chosen = np.random.default_rng(seed).choice(users, size=max_users, replace=False)
    return test[test["user"].isin(chosen)]


def metrics_table(
    mf_metrics: dict, convncf_metrics: dict, mf_per_user: pd.DataFrame, convncf_per_user: pd.DataFrame, params: dict
) -> pd.DataFrame:
    """Long table: protocol, metric, K, MF, ConvNCF, ConvNCF − MF with its paired bootstrap interval and verdict."""
    p = parse_params(EvaluationParams, params, "evaluation")
    rows = []
    for protocol in ("sampled", "full"):
        if protocol not in mf_metrics or protocol not in convncf_metrics:
            continue
        mf_rows = mf_per_user[mf_per_user["protocol"] == protocol]
        convncf_rows = convncf_per_user[convncf_per_user["protocol"] == protocol]
        if not np.array_equal(mf_rows["user"].to_numpy(), convncf_rows["user"].to_numpy()):
            raise ValueError(f"{protocol}: the two models were evaluated on different users; re-run evaluation")
        for key, mf_value in mf_metrics[protocol].items():
            if "@" not in key and key != "auc":
                continue
            metric, _, k = key.partition("@")
            compared = paired_difference(convncf_rows[key].to_numpy(), mf_rows[key].to_numpy(), p.confidence,
                                         p.bootstrap_resamples, p.seed)
            rows.append({"protocol": protocol, "metric": metric, "k": int(k) if k else None, "MF": mf_value,
                         "ConvNCF": convncf_metrics[protocol][key], "ConvNCF - MF": compared["difference"],
                         "ci_low": compared["ci_low"], "ci_high": compared["ci_high"], "verdict": compared["verdict"]})
    return pd.DataFrame(rows).astype({"k": "Int64"})


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
        "rule ranks it last among them: KNN scores are often exactly 0).",
        "",
        *_model_lines(models),
        "",
        "## Data",
        "",
        f"{dataset_statistics['users']:,} users × {dataset_statistics['items']:,} items; interactions: "
        + ", ".join(f"{k} {v:,}" for k, v in dataset_statistics["interactions"].items())
        + f"; density {dataset_statistics['density']:.4%}.",
        "",
        "Plots: `training_curves.png`, `metrics_at_k.png`; numbers: `test_metrics_*.json`, `metrics_table.csv`, "
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


def tracked_metrics(mf_metrics: dict, convncf_metrics: dict) -> MetricHistory:
    """What the MLflow run records as test metrics (the training stages record their curves)."""
    return (value_metrics("mf/test", {p: mf_metrics[p] for p in ("sampled", "full") if p in mf_metrics})
            | value_metrics("convncf/test", {p: convncf_metrics[p] for p in ("sampled", "full") if p in convncf_metrics}))


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
        colours = ["tab:green" if v == "gain" else "tab:red" if v == "loss" else "tab:grey" for v in rows["verdict"]]
        for i in range(len(rows)):
            forest.errorbar(difference[i], i, xerr=errors[:, i:i + 1], fmt="o", color=colours[i], capsize=3)
        forest.axvline(0, color="black", linewidth=0.8)
        forest.set_yticks(x, labels, fontsize=8)
        forest.invert_yaxis()
        forest.set(xlabel="ConvNCF − MF (paired bootstrap interval)", title="difference: green gain, red loss, grey neither")
    fig.tight_layout()
    return fig
