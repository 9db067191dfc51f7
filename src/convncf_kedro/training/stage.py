"""One training stage as the Kedro nodes run it: resume check, the epoch loop, what gets saved."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd
import scipy.sparse as sp
import torch

from convncf_kedro.errors import StaleModelError
from convncf_kedro.models import BPRRecommender, saved_info
from convncf_kedro.params import PhaseParams, TrainingParams
from convncf_kedro.ranking.sampled import candidate_matrix

from . import runtime
from .loop import fit

logger = logging.getLogger(__name__)

# Changing these does not change what each epoch does, so a checkpoint made with other values still
# resumes (raising `epochs`, `patience` or `min_epochs` continues a finished run).
_RUN_ONLY = {"resume", "device", "threads", "log_every_seconds", "eval_batch_pairs", "chunk_triples", "epochs", "patience",
             "min_epochs"}


def fingerprint(
    model: BPRRecommender, batch_size: int, phases: Sequence[PhaseParams], training: TrainingParams,
    data: str,
) -> str:
    """What a checkpoint must share with this run to be resumed: the model and its starting weights (so
    a retrained MF invalidates ConvNCF's checkpoint), the schedule, the training settings, the data
    (``data``: the fingerprint of the ingestion run, see :mod:`~convncf_kedro.interactions.lineage`)."""
    digest = hashlib.sha256(model.fingerprint_bytes())
    described = {
        "batch_size": batch_size,
        "phases": [phase.model_dump() for phase in phases],
        "training": training.model_dump(exclude=_RUN_ONLY),
        "data": data,
    }
    digest.update(json.dumps(described, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def train_stage(
    name: str,
    model: BPRRecommender,
    train_matrix: sp.csr_matrix,
    valid: pd.DataFrame,
    valid_negatives: pd.DataFrame,
    resume_checkpoint: dict | None,
    batch_size: int,
    phases: Sequence[PhaseParams],
    training: TrainingParams,
    data_fingerprint: str,
    **described: Any,
) -> Iterator[tuple[dict[str, Any], dict[str, Any], pd.DataFrame]]:
    """Yield ``(checkpoint, best_model, history)`` after every epoch, for Kedro to save each time.

    The best model carries ``data_fingerprint`` (the ingestion run it was trained on) and ``described``
    (e.g. the recipe's name).
    """
    device = runtime.resolve_device(training.device)
    runtime.configure(training.threads, device)
    runtime.check_precision(training.precision, device)
    stamp = fingerprint(model, batch_size, phases, training, data_fingerprint)
    resume_from = resume_checkpoint if training.resume else None
    if resume_from is not None and resume_from.get("fingerprint") != stamp:
        logger.warning(
            "%s: the last checkpoint was trained with other parameters, data or starting weights; starting over",
            name,
        )
        resume_from = None
    valid_users, valid_items = candidate_matrix(valid, valid_negatives)
    for checkpoint in fit(model, train_matrix, valid_users, valid_items, batch_size, phases, training, device, name,
                          resume_from):
        best_model = {**checkpoint["best"]["model"], "data_fingerprint": data_fingerprint, "stopped": checkpoint["stopped"],
                      **described}
        yield {**checkpoint, "fingerprint": stamp}, best_model, pd.DataFrame(checkpoint["history"])


def check_trained_on(saved_model: dict, data_fingerprint: str, stage: str) -> None:
    """Stop when a saved model was trained on other data than the ingestion run this run reads."""
    info = saved_info(saved_model)
    expected = info.get("data_fingerprint")
    if expected != data_fingerprint:
        raise StaleModelError(
            f"{stage}: the saved {info.get('model_class')} model was trained on other data (data fingerprint "
            f"{expected}, this run's data is {data_fingerprint}): the ingestion parameters or the raw data changed since. "
            f"Re-run the training stages (kedro run --pipeline train) before {stage}."
        )


def seed_everything(seed: int) -> None:
    """Model initialisation draws from torch's global generator: seed it so runs repeat."""
    torch.manual_seed(seed)
