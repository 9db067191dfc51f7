"""What a run records in MLflow as metrics: per-epoch training curves and test results.

kedro-mlflow logs the dictionaries these build through the catalog's ``MlflowMetricsHistoryDataset``
(``{key: [{"value": v, "step": epoch}, ...]}``); parameters and artifacts are logged by kedro-mlflow itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

MetricHistory = dict[str, list[dict[str, float]]]


def metric_key(*parts: str) -> str:
    """An MLflow metric name: ``/``-joined, with ``@`` (not allowed by MLflow) spelled ``_at_``."""
    return "/".join(parts).replace("@", "_at_")


def history_metrics(prefix: str, history: pd.DataFrame) -> MetricHistory:
    """Each numeric column of a training history (loss, rate, validation metrics) stepped by epoch."""
    out: MetricHistory = {}
    for column in history.columns.drop(["epoch", "phase"], errors="ignore"):
        steps = [{"value": float(value), "step": int(epoch)}
                 for epoch, value in zip(history["epoch"], history[column], strict=True)
                 if isinstance(value, int | float) and math.isfinite(value)]
        if steps:
            out[metric_key(prefix, "train" if column in ("loss", "seconds", "triples_per_second") else "valid",
                           column)] = steps
    return out


def value_metrics(prefix: str, values: Mapping) -> MetricHistory:
    """Every finite number of a (nested) result dictionary, as a single-step metric."""
    out: MetricHistory = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            out |= value_metrics(metric_key(prefix, str(key)), value)
        elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            out[metric_key(prefix, str(key))] = [{"value": float(value), "step": 0}]
    return out
