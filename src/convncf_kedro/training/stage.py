"""One training stage as the Kedro nodes run it: resume check, the epoch loop, what gets saved."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pandas as pd
import scipy.sparse as sp
import torch
from torch import nn

from convncf_kedro.errors import ParameterError
from convncf_kedro.params import TrainingParams
from convncf_kedro.ranking.sampled import candidate_matrix

from . import runtime
from .loop import TrainSettings, fit

# Changing these does not change what each epoch does, so a checkpoint made with other values still
# resumes (raising `epochs` or `patience` continues a finished run).
_RUN_ONLY = {"resume", "device", "threads", "log_every_seconds", "eval_batch_pairs", "epochs", "patience"}


def fingerprint(model: nn.Module, training: TrainingParams, train_matrix: sp.csr_matrix) -> str:
    described = {
        "model": type(model).__name__,
        "hyperparameters": model.hyperparameters(),
        "training": training.model_dump(exclude=_RUN_ONLY),
        "train_matrix": [*train_matrix.shape, int(train_matrix.nnz)],
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]


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
    stamp = fingerprint(model, training, train_matrix)
    if resume_checkpoint is not None and training.resume and resume_checkpoint.get("fingerprint") != stamp:
        raise ParameterError(
            f"{name}.training.resume",
            "the last checkpoint was trained with other parameters or data; set it to false to start over",
        )
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
    resume_from = resume_checkpoint if training.resume else None
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
