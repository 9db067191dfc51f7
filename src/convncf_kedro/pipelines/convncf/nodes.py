"""ConvNCF BPR training by the chosen recipe, starting from the pretrained MF embeddings."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import scipy.sparse as sp

from convncf_kedro.config.params import ConvNCFParams, parse_params
from convncf_kedro.tracking import MetricHistory, history_metrics
from convncf_kedro.training import stage


def train_convncf(
    train_matrix: sp.csr_matrix, valid: pd.DataFrame, valid_negatives: pd.DataFrame, mf_model: dict,
    resume_checkpoint: dict | None, ingestion_manifest: dict, params: dict,
) -> Iterator[tuple[dict, dict, pd.DataFrame]]:
    """Train ConvNCF with BPR by the chosen recipe; after every epoch yield (checkpoint, best model, history)."""
    yield from stage.convncf_training(train_matrix, valid, valid_negatives, mf_model, resume_checkpoint,
                                   ingestion_manifest, parse_params(ConvNCFParams, params, "convncf"))


def track_convncf_training(convncf_history: pd.DataFrame) -> MetricHistory:
    """ConvNCF's loss and validation metrics by epoch, for the MLflow run of whichever pipeline trained it."""
    return history_metrics("convncf", convncf_history)
