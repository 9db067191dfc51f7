"""One training stage as the Kedro nodes run it: resume check, the epoch loop, what gets saved."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torch import nn

from convncf_kedro.params import TrainingParams
from convncf_kedro.ranking.sampled import candidate_matrix

from . import runtime
from .loop import TrainSettings, fit

logger = logging.getLogger(__name__)

# Changing these does not change what each epoch does, so a checkpoint made with other values still
# resumes (raising `epochs` or `patience` continues a finished run).
_RUN_ONLY = {"resume", "device", "threads", "log_every_seconds", "eval_batch_pairs", "epochs", "patience"}


def fingerprint(
    model: nn.Module, training: TrainingParams, train_matrix: sp.csr_matrix, valid: pd.DataFrame,
    valid_negatives: pd.DataFrame,
) -> str:
    """What a checkpoint must share with this run to be resumed: the model, its starting weights (so a
    retrained MF invalidates ConvNCF's checkpoint), the training settings, and the data's content."""
    digest = hashlib.sha256()
    described = {
        "model": type(model).__name__,
        "hyperparameters": model.hyperparameters(),
        "training": training.model_dump(exclude=_RUN_ONLY),
    }
    digest.update(json.dumps(described, sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    for array in (train_matrix.indptr, train_matrix.indices, valid[["user", "item"]].to_numpy(),
                  valid_negatives[["user", "item"]].to_numpy()):
        digest.update(np.ascontiguousarray(array, dtype=np.int64).tobytes())
    return digest.hexdigest()[:16]


def train_stage(
    name: str,
    model: nn.Module,
    train_matrix: sp.csr_matrix,
    valid: pd.DataFrame,
    valid_negatives: pd.DataFrame,
    resume_checkpoint: dict | None,
    training: TrainingParams,
) -> Iterator[tuple[dict[str, Any], dict[str, Any], pd.DataFrame]]:
    """Yield ``(checkpoint, best_model, history)`` after every epoch, for Kedro to save each time."""
    device = runtime.resolve_device(training.device)
    runtime.configure(training.threads, device)
    stamp = fingerprint(model, training, train_matrix, valid, valid_negatives)
    resume_from = resume_checkpoint if training.resume else None
    if resume_from is not None and resume_from.get("fingerprint") != stamp:
        logger.warning(
            "%s: the last checkpoint was trained with other parameters, data or starting weights; starting over",
            name,
        )
        resume_from = None
    settings = TrainSettings(
        name=name, epochs=training.epochs, batch_size=training.batch_size, optimizer=training.optimizer,
        lr_embedding=training.lr_embedding, lr_tower=training.lr_tower or training.lr_embedding,
        warmup_steps=training.warmup_steps, patience=training.patience,
        selection_metric=training.selection_metric,
        eval_ks=(int(training.selection_metric.split("@")[1]),),
        eval_batch_pairs=training.eval_batch_pairs, seed=training.seed, precision=training.precision,
        log_every_seconds=training.log_every_seconds,
    )
    valid_users, valid_items = candidate_matrix(valid, valid_negatives)
    for checkpoint in fit(model, train_matrix, valid_users, valid_items, settings, device, resume_from):
        best = checkpoint["best"]
        best_model = {
            "model_class": type(model).__name__,
            "hyperparameters": model.hyperparameters(),
            "state_dict": best["state_dict"],
            "epoch": best["epoch"],
            "valid_metrics": best["valid_metrics"],
            "training": training.model_dump(),
        }
        yield {**checkpoint, "fingerprint": stamp}, best_model, pd.DataFrame(checkpoint["history"])


def seed_everything(seed: int) -> None:
    """Model initialisation draws from torch's global generator: seed it so runs repeat."""
    torch.manual_seed(seed)
