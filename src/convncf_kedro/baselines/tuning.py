"""Tune the baselines on validation only: Optuna's seeded TPE sampler, the same number of trials for each model.

A search space comes from ``parameters_baselines.yml``: per hyperparameter ``{low, high[, log]}`` (integers when
both bounds are integers), ``{choices: [...]}`` or ``{value: v}`` (fixed). Each trial fits the model on the training
matrix and scores the validation split's sampled candidates; the test split is never read here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import optuna
import pandas as pd
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from convncf_kedro.config.params import BaselinesParams
from convncf_kedro.ranking.sampled import evaluate_sampled

from . import models as baselines
from .models import LinearScorer
from .registry import REGISTRY, Fitting, over_budget

logger = logging.getLogger(__name__)


def fit(name: str, x: sp.csr_matrix, point: dict[str, Any], fitting: Fitting) -> LinearScorer:
    """One baseline fitted on ``x`` at ``point``; users with no training interaction get TopPop's scores."""
    with threadpool_limits(fitting.threads):
        model = REGISTRY[name].fit(x, point, fitting)
    return baselines.with_floor(model, x)


def suggest(trial: optuna.Trial, space: dict[str, dict]) -> dict[str, Any]:
    """One point of a search space (see the module docstring for its form)."""
    point: dict[str, Any] = {}
    for name, spec in space.items():
        if spec.get("value") is not None:
            point[name] = spec["value"]
        elif spec.get("choices") is not None:
            point[name] = trial.suggest_categorical(name, spec["choices"])
        elif isinstance(spec["low"], int) and isinstance(spec["high"], int):
            point[name] = trial.suggest_int(name, spec["low"], spec["high"], log=spec.get("log", False))
        else:
            point[name] = trial.suggest_float(name, spec["low"], spec["high"], log=spec.get("log", False))
    return point


def model_seed(seed: int, name: str) -> int:
    """The tuning seed of one model: ItemKNN and UserKNN share a search space, and one seed would make both propose
    the same first points."""
    return int(np.random.SeedSequence([seed, zlib.crc32(name.encode())]).generate_state(1)[0])


def tunable(space: dict[str, dict]) -> bool:
    return any(spec.get("value") is None for spec in space.values())


def tune(
    name: str, x: sp.csr_matrix, valid_users: np.ndarray, valid_items: np.ndarray, space: dict[str, dict],
    trials: int, metric: str, seed: int, fit_model: Callable[[dict[str, Any]], LinearScorer],
    budget_seconds: float | None = None,
) -> tuple[LinearScorer, dict[str, float], pd.DataFrame]:
    """The best model on validation ``metric`` after ``trials`` TPE trials (one when nothing is tunable; fewer where
    ``budget_seconds`` runs out: no trial starts past it), its validation metrics, and every trial (parameters,
    metric, seconds). The first trial's time gives the projected time of all of them, logged before they run."""
    k = int(metric.split("@")[1])
    rows: list[dict[str, Any]] = []
    best: dict[str, Any] = {"value": -np.inf}

    def objective(trial: optuna.Trial) -> float:
        started = time.perf_counter()
        point = suggest(trial, space)
        model = fit_model(point)
        metrics = evaluate_sampled(model.score_pairs, valid_users, valid_items, [k], label=f"{name} trial {trial.number}")
        rows.append({"model": name, "trial": trial.number, **{f"param.{p}": v for p, v in point.items()},
                     f"valid_{metric}": metrics[metric], "seconds": round(time.perf_counter() - started, 2)})
        if metrics[metric] > best["value"]:
            best.update(value=metrics[metric], model=model, metrics=metrics)
        logger.info("%s trial %d/%d: %s, valid %s %.4f (best %.4f), %.1f s", name, trial.number + 1, n_trials,
                    point, metric, metrics[metric], best["value"], rows[-1]["seconds"])
        if trial.number == 0 and n_trials > 1:
            projected = rows[0]["seconds"] * n_trials
            logger.info("%s: %d trials projected at about %.0f s%s", name, n_trials, projected,
                        "" if budget_seconds is None else f" (its share of the time budget: {budget_seconds:.0f} s)")
        return metrics[metric]

    n_trials = trials if tunable(space) else 1
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=model_seed(seed, name))  # its own stream: models never share points
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=n_trials, timeout=budget_seconds)
    return best["model"], best["metrics"], pd.DataFrame(rows)


def tuning_stamp(name: str, space: dict[str, dict], p: BaselinesParams, share_seconds: float | None,
                 data_fingerprint: str) -> str:
    """What a baseline's tuning result depends on: a saved model with the same stamp is that result."""
    settings = {"model": name, "space": space, "trials": p.trials, "seed": p.seed, "metric": p.selection_metric,
                "share_seconds": share_seconds, "data": data_fingerprint}
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _kept(previous: dict[str, Callable[[], dict]], name: str, stamp: str) -> dict | None:
    """The previous run's saved ``name`` if it was tuned with the same stamp (a rerun after an interruption)."""
    if name not in previous:
        return None
    saved = previous[name]()
    return saved if baselines.saved_description(saved).get("tuning_stamp") == stamp else None


def tune_all(train_matrix: sp.csr_matrix, valid_users: np.ndarray, valid_items: np.ndarray, p: BaselinesParams,
             data_fingerprint: str, previous: dict[str, Callable[[], dict]] | None = None,
             ) -> tuple[dict[str, dict], pd.DataFrame, dict[str, list[dict]]]:
    """Every baseline of ``p.models`` tuned on validation: each best model's saved form (with what chose it), every
    trial, and the trials' validation curve for MLflow. A model over the memory or co-occurrence budget is saved as
    left out, with why, before any fitting. A model in ``previous`` (the last run's saved models, loaded on demand)
    tuned on the same data with the same settings is kept, not tuned again: a study or run that was interrupted
    after the baselines does not pay for them twice."""
    fitting = Fitting(seed=p.seed, threads=p.threads, memory_budget_bytes=int(p.memory_budget_gib * 2**30))
    skipped = over_budget(p, train_matrix)
    for name, reason in skipped.items():
        logger.warning("baselines: %s", reason)
    models = {name: baselines.left_out(name, reason, data_fingerprint=data_fingerprint)
              for name, reason in skipped.items()}
    trials, curves = [], {}
    fitted = [name for name in p.models if name not in skipped]
    spaces = {name: {parameter: spec.model_dump() for parameter, spec in p.search.get(name, {}).items()}
              for name in fitted}
    tunable_models = [name for name in fitted if tunable(spaces[name])]
    share = None if p.time_budget_minutes is None else p.time_budget_minutes * 60 / max(1, len(tunable_models))
    for name in fitted:
        model_share = share if name in tunable_models else None
        stamp = tuning_stamp(name, spaces[name], p, model_share, data_fingerprint)
        kept = _kept(previous or {}, name, stamp)
        if kept is not None:
            logger.info("%s: kept from the previous run (tuned on the same data with the same settings)", name)
            models[name] = kept
            table = pd.DataFrame(baselines.saved_description(kept)["trial_rows"])
        else:
            models[name], table = _tune_one(name, train_matrix, valid_users, valid_items, spaces[name], p, fitting,
                                            model_share, stamp, data_fingerprint)
        trials.append(table)
        curves[name] = [{"value": float(v), "step": int(t)}
                        for t, v in zip(table["trial"], table[f"valid_{p.selection_metric}"], strict=True)]
    return models, pd.concat(trials, ignore_index=True) if trials else pd.DataFrame(), curves


def _tune_one(name: str, train_matrix: sp.csr_matrix, valid_users: np.ndarray, valid_items: np.ndarray,
              space: dict[str, dict], p: BaselinesParams, fitting: Fitting, share: float | None, stamp: str,
              data_fingerprint: str) -> tuple[dict, pd.DataFrame]:
    """One baseline tuned and saved with what chose it (its trials too, so a later run that keeps it has them)."""
    started = time.perf_counter()
    model, metrics, table = tune(name, train_matrix, valid_users, valid_items, space, p.trials, p.selection_metric,
                                 p.seed, lambda point: fit(name, train_matrix, point, fitting), share)
    stopped = (f"stopped at its share of baselines.time_budget_minutes ({share:.0f} s) after {len(table)} of "
               f"{p.trials} trials, the best of them kept" if share is not None and len(table) < p.trials else None)
    if stopped:
        logger.warning("%s: %s", name, stopped)
    saved = model.saved(valid_metrics=metrics, selection_metric=p.selection_metric, trials=len(table),
                        tuning_seconds=round(time.perf_counter() - started, 1), tuning_stopped=stopped,
                        data_fingerprint=data_fingerprint, tuning_stamp=stamp,
                        trial_rows=table.to_dict(orient="records"))
    return saved, table
