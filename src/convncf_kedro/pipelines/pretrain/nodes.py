"""MF-BPR pretraining: the embeddings ConvNCF starts from."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import scipy.sparse as sp

from convncf_kedro.config.params import PretrainParams, parse_params
from convncf_kedro.tracking import MetricHistory, history_metrics
from convncf_kedro.training import stage


def train_mf(
    train_matrix: sp.csr_matrix, valid: pd.DataFrame, valid_negatives: pd.DataFrame, resume_checkpoint: dict | None,
    ingestion_manifest: dict, params: dict,
) -> Iterator[tuple[dict, dict, pd.DataFrame]]:
    """Train MF with BPR; after every epoch yield (checkpoint, best model so far, history)."""
    yield from stage.mf_training(train_matrix, valid, valid_negatives, resume_checkpoint, ingestion_manifest,
                              parse_params(PretrainParams, params, "pretrain"))


def track_mf_training(mf_history: pd.DataFrame) -> MetricHistory:
    """MF's loss and validation metrics by epoch, for the MLflow run of whichever pipeline trained it."""
    return history_metrics("mf", mf_history)
