"""Evaluation nodes: every model on the test split (library: :mod:`convncf_kedro.evaluation.protocols`), compared
(:mod:`~convncf_kedro.evaluation.comparison`) and reported (:mod:`~convncf_kedro.evaluation.reporting`); each node
parses its parameter groups and hands the library typed settings."""

from __future__ import annotations

from collections.abc import Callable

import onnx
import pandas as pd
import scipy.sparse as sp

from convncf_kedro.config.params import BaselinesParams, EvaluationParams, parse_params
from convncf_kedro.evaluation import comparison, protocols
from convncf_kedro.evaluation.reporting import (
    plot_metrics_at_k,
    plot_models,
    plot_training_curves,
    write_report,
)
from convncf_kedro.tracking import MetricHistory, value_metrics

__all__ = ["compare_models", "evaluate_baselines", "evaluate_exported", "evaluate_model", "metrics_table",
           "plot_metrics_at_k", "plot_models", "plot_training_curves", "tracked_metrics", "write_report"]


def evaluate_model(
    saved_model: dict, train_matrix: sp.csr_matrix, valid: pd.DataFrame, valid_negatives: pd.DataFrame,
    test: pd.DataFrame, test_negatives: pd.DataFrame, ingestion_manifest: dict, evaluation: dict,
) -> tuple[dict, pd.DataFrame]:
    """MF (PyTorch) on the test split by every protocol of ``evaluation.protocols``."""
    return protocols.evaluate_model(saved_model, train_matrix, valid, valid_negatives, test, test_negatives,
                                    ingestion_manifest, parse_params(EvaluationParams, evaluation, "evaluation"))


def evaluate_exported(
    graph: onnx.ModelProto, saved_model: dict, train_matrix: sp.csr_matrix, valid: pd.DataFrame,
    valid_negatives: pd.DataFrame, test: pd.DataFrame, test_negatives: pd.DataFrame, ingestion_manifest: dict,
    retrieval_graph: onnx.ModelProto, retrieval_check: dict, evaluation: dict,
) -> tuple[dict, pd.DataFrame]:
    """ConvNCF through the very graph users score with."""
    return protocols.evaluate_exported(graph, saved_model, train_matrix, valid, valid_negatives, test, test_negatives,
                                       ingestion_manifest, retrieval_graph, retrieval_check,
                                       parse_params(EvaluationParams, evaluation, "evaluation"))


def evaluate_baselines(
    baseline_models: dict[str, Callable[[], dict]], train_matrix: sp.csr_matrix, valid: pd.DataFrame,
    valid_negatives: pd.DataFrame, test: pd.DataFrame, test_negatives: pd.DataFrame, ingestion_manifest: dict,
    evaluation: dict, baselines: dict,
) -> tuple[dict[str, dict], dict[str, pd.DataFrame]]:
    """Every baseline of ``baselines.models`` on the test split; one missing or unreadable stops the run."""
    b = parse_params(BaselinesParams, baselines, "baselines")
    return protocols.evaluate_baselines(baseline_models, train_matrix, valid, valid_negatives, test, test_negatives,
                                        ingestion_manifest, parse_params(EvaluationParams, evaluation, "evaluation"),
                                        b.models)


def metrics_table(mf_metrics: dict, convncf_metrics: dict, mf_per_user: pd.DataFrame, convncf_per_user: pd.DataFrame,
                  evaluation: dict) -> pd.DataFrame:
    """ConvNCF − MF per protocol, metric and K, with paired intervals."""
    return protocols.metrics_table(mf_metrics, convncf_metrics, mf_per_user, convncf_per_user,
                                   parse_params(EvaluationParams, evaluation, "evaluation"))


def compare_models(
    mf_metrics: dict, convncf_metrics: dict, mf_per_user: pd.DataFrame, convncf_per_user: pd.DataFrame,
    baseline_metrics: dict[str, Callable[[], dict]], baseline_per_user: dict[str, Callable[[], pd.DataFrame]],
    evaluation: dict, baselines: dict,
) -> tuple[pd.DataFrame, str]:
    """Every model with its interval and its paired difference from the best baseline on validation, and the
    sentence that says which to deploy."""
    p = parse_params(EvaluationParams, evaluation, "evaluation")
    b = parse_params(BaselinesParams, baselines, "baselines")
    loaded = {n: baseline_metrics[n]() for n in b.models}  # evaluate_baselines refused a run missing any of them
    fitted, left_out = comparison.split_left_out(loaded)
    names = list(fitted)
    test_metrics = {"MF": mf_metrics, "ConvNCF": convncf_metrics, **fitted}
    per_user = {"MF": mf_per_user, "ConvNCF": convncf_per_user, **{n: baseline_per_user[n]() for n in names}}
    table = comparison.model_table(test_metrics, per_user, names, b.selection_metric, p.ks, p.confidence,
                                   p.bootstrap_resamples, p.seed)
    protocol = "full" if "full" in p.protocols else "sampled"  # the advice from full ranking wherever it was run
    sentence = comparison.recommendation(test_metrics, per_user, b.selection_metric, protocol, p.confidence,
                                         p.bootstrap_resamples, p.seed)
    return table, sentence + comparison.left_out_note(left_out)


def tracked_metrics(mf_metrics: dict, convncf_metrics: dict) -> MetricHistory:
    """What the MLflow run records as test metrics (the training stages record their curves)."""
    return (value_metrics("mf/test", {p: mf_metrics[p] for p in ("sampled", "full") if p in mf_metrics})
            | value_metrics("convncf/test", {p: convncf_metrics[p] for p in ("sampled", "full") if p in convncf_metrics}))
