"""Baselines: each simple model of ``baselines.models`` tuned on validation and saved with its chosen parameters."""

from __future__ import annotations

import time

import pandas as pd
import scipy.sparse as sp

from convncf_kedro.errors import ParameterError
from convncf_kedro.interactions.lineage import check_same_run
from convncf_kedro.models.baselines import ease_bytes
from convncf_kedro.params import BaselinesParams, parse_params
from convncf_kedro.ranking.sampled import candidate_matrix
from convncf_kedro.tracking import MetricHistory, metric_key
from convncf_kedro.training import tuning


def tune_baselines(
    train_matrix: sp.csr_matrix, valid: pd.DataFrame, valid_negatives: pd.DataFrame, ingestion_manifest: dict,
    params: dict,
) -> tuple[dict[str, dict], pd.DataFrame, MetricHistory]:
    """Per baseline: the model with the best validation metric over the trials (one file each), every trial, and
    the trials' validation curve for MLflow. The test split is not an input."""
    p = parse_params(BaselinesParams, params, "baselines")
    data = check_same_run(ingestion_manifest, "baselines", train_matrix=train_matrix, valid=valid,
                          valid_negatives=valid_negatives)
    budget = int(p.memory_budget_gib * 2**30)
    if "ease" in p.models and ease_bytes(train_matrix.shape[1]) > budget:
        raise ParameterError("baselines.memory_budget_gib", f"EASE^R on {train_matrix.shape[1]:,} items needs "
                             f"{ease_bytes(train_matrix.shape[1]) / 2**30:.1f} GiB, over the budget of "
                             f"{p.memory_budget_gib:g} GiB: raise it, or take ease out of baselines.models")
    users, items = candidate_matrix(valid, valid_negatives)
    models, trials, tracked = {}, [], {}
    for name in p.models:
        space = {parameter: spec.model_dump() for parameter, spec in p.search.get(name, {}).items()}
        started = time.perf_counter()
        model, metrics, table = tuning.tune(
            name, train_matrix, users, items, space, p.trials, p.selection_metric, p.seed,
            lambda point, name=name: tuning.fit(name, train_matrix, point, seed=p.seed, threads=p.threads,
                                                memory_budget_bytes=budget))
        models[name] = model.saved(valid_metrics=metrics, selection_metric=p.selection_metric, trials=len(table),
                                   tuning_seconds=round(time.perf_counter() - started, 1), data_fingerprint=data)
        trials.append(table)
        tracked[metric_key("baselines", name, "trial", f"valid_{p.selection_metric}")] = [
            {"value": float(v), "step": int(t)} for t, v in zip(table["trial"], table[f"valid_{p.selection_metric}"],
                                                                 strict=True)]
    return models, pd.concat(trials, ignore_index=True) if trials else pd.DataFrame(), tracked
