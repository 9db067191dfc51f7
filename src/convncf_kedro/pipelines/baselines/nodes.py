"""Baselines: each simple model of ``baselines.models`` tuned on validation and saved with its chosen parameters
(library: :mod:`convncf_kedro.baselines`)."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import scipy.sparse as sp

from convncf_kedro.baselines import registry, tuning
from convncf_kedro.config.params import BaselinesParams, parse_params
from convncf_kedro.interactions.lineage import check_same_run
from convncf_kedro.ranking.sampled import candidate_matrix
from convncf_kedro.tracking import MetricHistory, metric_key


def tune_baselines(
    train_matrix: sp.csr_matrix, valid: pd.DataFrame, valid_negatives: pd.DataFrame, ingestion_manifest: dict,
    previous_models: dict[str, Callable[[], dict]], params: dict,
) -> tuple[dict[str, dict], pd.DataFrame, MetricHistory]:
    """Per baseline: the model with the best validation metric over the trials (one file each), every trial, and
    the trials' validation curve for MLflow; one the previous run tuned on the same data with the same settings is
    kept. The test split is not an input."""
    p = parse_params(BaselinesParams, params, "baselines")
    registry.check_settings(p)
    data = check_same_run(ingestion_manifest, "baselines", train_matrix=train_matrix, valid=valid,
                          valid_negatives=valid_negatives)
    users, items = candidate_matrix(valid, valid_negatives)
    models, trials, curves = tuning.tune_all(train_matrix, users, items, p, data, previous_models)
    tracked = {metric_key("baselines", name, "trial", f"valid_{p.selection_metric}"): curve
               for name, curve in curves.items()}
    return models, trials, tracked
