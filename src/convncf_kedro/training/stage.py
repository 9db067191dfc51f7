"""One training stage as the Kedro nodes run it: resume check, the epoch loop, what gets saved."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd
import scipy.sparse as sp
import torch

from convncf_kedro.config.params import (
    ConvNCFParams,
    PhaseParams,
    PretrainParams,
    TrainingParams,
)
from convncf_kedro.interactions.lineage import check_same_run, check_trained_on
from convncf_kedro.models import (
    MF,
    BPRRecommender,
    ConvNCF,
    ConvNCFConfig,
    MFConfig,
    Phase,
    load_model,
    saved_info,
)
from convncf_kedro.ranking.sampled import candidate_matrix

from . import runtime
from .loop import LoopPhase, LoopSettings, fit, resume_refusal

logger = logging.getLogger(__name__)

# Changing these does not change what each epoch does, so a checkpoint made with other values still
# resumes (raising `epochs`, `patience` or `min_epochs` continues a finished run) unless it went past what this
# run would train (loop.resume_refusal: a lower cap starts over).
_RUN_ONLY = {"resume", "device", "threads", "log_every_seconds", "eval_batch_pairs", "chunk_triples", "epochs", "patience",
             "min_epochs", "time_budget_minutes"}


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
    (e.g. the recipe's name). Each epoch's two dicts are emptied when the next epoch is asked for (read them
    before): Kedro has saved them by then, and its generator nodes split the yielded tuples with
    ``itertools.tee``, which keeps every item of a block of 57 alive until the block is passed. Three model-sized
    copies an epoch stayed in memory (2.6 GiB after 8 epochs of MF on a 1 M-row log, measured with memray).
    """
    device = runtime.resolve_device(training.device)
    runtime.configure(training.threads, device)
    stamp = fingerprint(model, batch_size, phases, training, data_fingerprint)
    settings = dataclasses.replace(loop_settings(training),
                                   precision=runtime.training_precision(training.precision, device))
    resume_from = resume_checkpoint if training.resume else None
    if resume_from is not None and resume_from.get("fingerprint") != stamp:
        logger.warning(
            "%s: the last checkpoint was trained with other parameters, data or starting weights; starting over",
            name,
        )
        resume_from = None
    if resume_from is not None and (refusal := resume_refusal(resume_from, settings)):
        logger.warning("%s: not resuming the last checkpoint: %s; starting over", name, refusal)
        resume_from = None
    valid_users, valid_items = candidate_matrix(valid, valid_negatives)
    for checkpoint in fit(model, train_matrix, valid_users, valid_items, batch_size, loop_phases(phases),
                          settings, device, name, resume_from):
        best_model = {**checkpoint["best"]["model"], "data_fingerprint": data_fingerprint, "stopped": checkpoint["stopped"],
                      **described}
        saved = {**checkpoint, "fingerprint": stamp}
        yield saved, best_model, pd.DataFrame(checkpoint["history"])
        for epoch_output in (saved, best_model, checkpoint):
            epoch_output.clear()


def loop_phases(phases: Sequence[PhaseParams]) -> list[LoopPhase]:
    """The loop's phases from the parameters' ``phases``."""
    return [LoopPhase(Phase(lr_embedding=phase.lr_embedding, lr_tower=phase.lr_tower, optimizer=phase.optimizer,
                            adagrad_initial_accumulator=phase.adagrad_initial_accumulator),
                      epochs=phase.epochs, warmup_steps=phase.warmup_steps, regularised=phase.regularised)
            for phase in phases]


def loop_settings(training: TrainingParams) -> LoopSettings:
    """The loop's settings from the parameters' ``training`` group (device and threads stay here)."""
    return LoopSettings(**training.model_dump(include={field.name for field in dataclasses.fields(LoopSettings)}))


def seed_everything(seed: int) -> None:
    """Model initialisation draws from torch's global generator: seed it so runs repeat."""
    torch.manual_seed(seed)


def mf_training(
    train_matrix: sp.csr_matrix,
    valid: pd.DataFrame,
    valid_negatives: pd.DataFrame,
    resume_checkpoint: dict | None,
    ingestion_manifest: dict,
    p: PretrainParams,
) -> Iterator[tuple[dict, dict, pd.DataFrame]]:
    """Train MF with BPR; after every epoch yield (checkpoint, best model so far, history)."""
    data = check_same_run(ingestion_manifest, "pretrain", train_matrix=train_matrix, valid=valid,
                          valid_negatives=valid_negatives)
    seed_everything(p.training.seed)
    n_users, n_items = train_matrix.shape
    model = MF(MFConfig(n_users=n_users, n_items=n_items, embedding_size=p.embedding_size,
                        reg_embedding=p.reg_embedding, init_std=p.init_std))
    yield from train_stage(
        "pretrain", model, train_matrix, valid, valid_negatives, resume_checkpoint, p.batch_size, p.phases, p.training,
        data,
    )


def convncf_training(
    train_matrix: sp.csr_matrix,
    valid: pd.DataFrame,
    valid_negatives: pd.DataFrame,
    mf_model: dict,
    resume_checkpoint: dict | None,
    ingestion_manifest: dict,
    p: ConvNCFParams,
) -> Iterator[tuple[dict, dict, pd.DataFrame]]:
    """Train ConvNCF with BPR by ``p.recipe``; after every epoch yield (checkpoint, best model so far, history)."""
    recipe = p.chosen
    data = check_same_run(ingestion_manifest, "convncf", train_matrix=train_matrix, valid=valid,
                          valid_negatives=valid_negatives)
    check_trained_on(saved_info(mf_model), data, "convncf")
    mf = load_model(mf_model)
    seed_everything(p.training.seed)
    n_users, n_items = train_matrix.shape
    model = ConvNCF(ConvNCFConfig(
        n_users=n_users, n_items=n_items, embedding_size=mf.config.embedding_size, channels=p.channels,
        kernel_sizes=tuple(p.kernel_sizes) if p.kernel_sizes else None, dropout=recipe.dropout,
        reg_embedding=recipe.reg_embedding, reg_conv=recipe.reg_conv, reg_out=recipe.reg_out, residual=recipe.residual,
    ))
    model.start_from(mf, recipe.tower_init)
    yield from train_stage(
        f"convncf ({p.recipe})", model, train_matrix, valid, valid_negatives, resume_checkpoint, recipe.batch_size,
        recipe.phases, p.training, data, recipe=p.recipe,
    )
