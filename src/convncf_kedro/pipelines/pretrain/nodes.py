"""MF-BPR pretraining: the embeddings ConvNCF starts from."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import scipy.sparse as sp

from convncf_kedro.interactions.lineage import check_same_run
from convncf_kedro.models import MF, MFConfig
from convncf_kedro.params import PretrainParams, parse_params
from convncf_kedro.tracking import MetricHistory, history_metrics
from convncf_kedro.training.stage import seed_everything, train_stage


def train_mf(
    train_matrix: sp.csr_matrix,
    valid: pd.DataFrame,
    valid_negatives: pd.DataFrame,
    resume_checkpoint: dict | None,
    ingestion_manifest: dict,
    params: dict,
) -> Iterator[tuple[dict, dict, pd.DataFrame]]:
    """Train MF with BPR; after every epoch yield (checkpoint, best model so far, history)."""
    p = parse_params(PretrainParams, params, "pretrain")
    data = check_same_run(ingestion_manifest, "pretrain", train_matrix=train_matrix, valid=valid,
                          valid_negatives=valid_negatives)
    seed_everything(p.training.seed)
    n_users, n_items = train_matrix.shape
    model = MF(MFConfig(n_users, n_items, p.embedding_size, p.reg_embedding, p.init_std))
    yield from train_stage(
        "pretrain", model, train_matrix, valid, valid_negatives, resume_checkpoint, p.batch_size, p.phases, p.training,
        data,
    )


def track_mf_training(mf_history: pd.DataFrame) -> MetricHistory:
    """MF's loss and validation metrics by epoch, for the MLflow run of whichever pipeline trained it."""
    return history_metrics("mf", mf_history)
