"""The BPR training loop shared by MF pretraining and ConvNCF: epochs, validation, early stopping.

:func:`fit` is a generator: after every epoch it yields a checkpoint (model, optimiser, history,
best weights so far), which the Kedro node saves through the catalog. A run resumed from such a
checkpoint continues exactly where the saved one stopped: each epoch's negatives and dropout masks
are seeded by (seed, epoch), not by what ran before.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from convncf_kedro.models.scoring import autocast, pair_scorer
from convncf_kedro.ranking.sampled import evaluate_sampled

from .sampler import sample_triples

logger = logging.getLogger(__name__)


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is left as it was."""


@dataclass(frozen=True)
class TrainSettings:
    name: str  # "mf" or "convncf", for log lines
    epochs: int
    batch_size: int
    optimizer: str  # "adagrad" or "adam"
    lr_embedding: float
    lr_tower: float
    warmup_steps: int
    patience: int
    selection_metric: str  # e.g. "ndcg@10"
    eval_ks: tuple[int, ...]
    eval_batch_pairs: int
    seed: int
    precision: str  # "fp32" or "bf16"
    log_every_seconds: float


def _build_optimizers(model: nn.Module, settings: TrainSettings) -> list[torch.optim.Optimizer]:
    """Embeddings get sparse gradients (a batch touches few rows); the tower dense ones, its own lr."""
    embeddings = [model.user_embedding.weight, model.item_embedding.weight]
    model.user_embedding.sparse = model.item_embedding.sparse = True
    tower = [p for p in model.parameters() if all(p is not e for e in embeddings)]
    if settings.optimizer == "adagrad":
        groups = [{"params": embeddings, "lr": settings.lr_embedding}]
        if tower:
            groups.append({"params": tower, "lr": settings.lr_tower})
        return [torch.optim.Adagrad(groups)]
    if settings.optimizer == "adam":
        optimizers: list[torch.optim.Optimizer] = [torch.optim.SparseAdam(embeddings, lr=settings.lr_embedding)]
        if tower:
            optimizers.append(torch.optim.Adam(tower, lr=settings.lr_tower))
        return optimizers
    raise ValueError(f"unknown optimizer '{settings.optimizer}' (use 'adagrad' or 'adam')")


def _format_seconds(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def fit(
    model: nn.Module,
    train_matrix: sp.csr_matrix,
    valid_users: np.ndarray,
    valid_items: np.ndarray,
    settings: TrainSettings,
    device: torch.device,
    resume_from: dict[str, Any] | None = None,
) -> Iterator[dict[str, Any]]:
    """Train ``model`` with BPR; yield a checkpoint dict after every epoch (see module docstring).

    ``valid_users`` (R,) and ``valid_items`` (R, 1 + N) hold each validation item and its negatives;
    the best epoch by ``settings.selection_metric`` is kept, and training stops after ``patience``
    epochs without improvement. Epoch 0 (before any step) is evaluated and logged, never selected.
    """
    model.to(device)
    optimizers = _build_optimizers(model, settings)
    warmup = max(settings.warmup_steps, 1)
    schedulers = [torch.optim.lr_scheduler.LambdaLR(o, lambda step: min(1.0, (step + 1) / warmup)) for o in optimizers]
    score = pair_scorer(model, device, settings.precision, settings.eval_batch_pairs)
    validate = lambda: evaluate_sampled(score, valid_users, valid_items, list(settings.eval_ks))  # noqa: E731

    if resume_from is not None:
        model.load_state_dict(resume_from["state_dict"])
        for optimizer, state in zip(optimizers, resume_from["optimizer_states"], strict=True):
            optimizer.load_state_dict(state)
        for scheduler, state in zip(schedulers, resume_from["scheduler_states"], strict=True):
            scheduler.load_state_dict(state)
        state = {k: resume_from[k] for k in ("epoch", "history", "best", "bad_epochs")}
        state["finished"] = state["epoch"] >= settings.epochs or state["bad_epochs"] >= settings.patience
        logger.info("%s: resuming after epoch %d", settings.name, state["epoch"])
    else:
        metrics = validate()
        state = {
            "epoch": 0,
            "history": [{"epoch": 0, "loss": math.nan, "seconds": 0.0, "triples_per_second": math.nan, **metrics}],
            "best": {"epoch": 0, "metric": -math.inf, "state_dict": None, "valid_metrics": metrics},
            "bad_epochs": 0,
            "finished": False,
        }
        logger.info("%s epoch 0 (untrained): valid %s", settings.name, _metric_text(metrics, settings))

    def checkpoint() -> dict[str, Any]:  # a snapshot: later steps must not change what was yielded
        return copy.deepcopy({
            "state_dict": model.state_dict(),
            "optimizer_states": [o.state_dict() for o in optimizers],
            "scheduler_states": [s.state_dict() for s in schedulers],
            **state,
        })

    if state["finished"]:
        yield checkpoint()
        return
    n_triples = train_matrix.nnz
    epoch_seconds: list[float] = []
    for epoch in range(state["epoch"] + 1, settings.epochs + 1):
        torch.manual_seed(settings.seed * 1_000_003 + epoch)  # dropout masks
        users, positives, negatives = sample_triples(train_matrix, np.random.default_rng([settings.seed, epoch]))
        model.train()
        started = last_log = time.perf_counter()
        loss_sum = 0.0
        for step, start in enumerate(range(0, n_triples, settings.batch_size)):
            end = start + settings.batch_size
            batch = {
                "user": torch.from_numpy(users[start:end]).to(device),
                "item": torch.from_numpy(positives[start:end]).to(device),
                "neg_item": torch.from_numpy(negatives[start:end]).to(device),
            }
            with autocast(device, settings.precision):
                loss = model.calculate_loss(batch)
            loss_value = float(loss)
            if not math.isfinite(loss_value):
                raise TrainingDivergedError(
                    f"{settings.name}: loss is {loss_value} at epoch {epoch}, step {step}; the last good "
                    f"checkpoint (epoch {state['epoch']}) is kept. Lower the learning rate or raise the L2 weights."
                )
            for optimizer in optimizers:
                optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for optimizer, scheduler in zip(optimizers, schedulers, strict=True):
                optimizer.step()
                scheduler.step()
            loss_sum += loss_value
            now = time.perf_counter()
            if now - last_log >= settings.log_every_seconds:
                done = min(end, n_triples)
                rate = done / (now - started)
                logger.info(
                    "%s epoch %d: %d%% (%s/%s triples), %s triples/s, epoch ETA %s", settings.name, epoch,
                    100 * done // n_triples, f"{done:,}", f"{n_triples:,}", f"{rate:,.0f}",
                    _format_seconds((n_triples - done) / rate),
                )
                last_log = now
        train_seconds = time.perf_counter() - started
        metrics = validate()
        seconds = time.perf_counter() - started
        epoch_seconds.append(seconds)
        state["epoch"] = epoch
        state["history"].append({
            "epoch": epoch, "loss": loss_sum / n_triples, "seconds": seconds,
            "triples_per_second": n_triples / train_seconds, **metrics,
        })
        if metrics[settings.selection_metric] > state["best"]["metric"]:
            state["best"] = {
                "epoch": epoch, "metric": metrics[settings.selection_metric],
                "state_dict": {k: v.clone() for k, v in model.state_dict().items()}, "valid_metrics": metrics,
            }
            state["bad_epochs"] = 0
        else:
            state["bad_epochs"] += 1
        stop = state["bad_epochs"] >= settings.patience or epoch == settings.epochs
        state["finished"] = stop
        logger.info(
            "%s epoch %d/%d: loss %.4f, valid %s (best %.4f at epoch %d), %s triples/s, %.1f s, ETA %s",
            settings.name, epoch, settings.epochs, loss_sum / n_triples, _metric_text(metrics, settings),
            state["best"]["metric"], state["best"]["epoch"], f"{n_triples / train_seconds:,.0f}", seconds,
            "done" if stop else _format_seconds(np.mean(epoch_seconds) * (settings.epochs - epoch)),
        )
        yield checkpoint()
        if stop:
            if state["bad_epochs"] >= settings.patience:
                logger.info("%s: no improvement for %d epochs, stopped early", settings.name, settings.patience)
            return


def _metric_text(metrics: dict[str, float], settings: TrainSettings) -> str:
    """The selection metric and its HR twin, e.g. 'ndcg@10 0.5123, hr@10 0.8321'."""
    names = dict.fromkeys([settings.selection_metric, settings.selection_metric.replace("ndcg", "hr")])
    return ", ".join(f"{name} {metrics[name]:.4f}" for name in names if name in metrics)
