"""ConvNCF BPR training by the chosen recipe, starting from the pretrained MF embeddings."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import scipy.sparse as sp

from convncf_kedro.interactions.lineage import check_same_run
from convncf_kedro.models import ConvNCF, ConvNCFConfig, load_model
from convncf_kedro.params import ConvNCFParams, parse_params
from convncf_kedro.tracking import MetricHistory, history_metrics
from convncf_kedro.training.stage import check_trained_on, seed_everything, train_stage


def train_convncf(
    train_matrix: sp.csr_matrix,
    valid: pd.DataFrame,
    valid_negatives: pd.DataFrame,
    mf_model: dict,
    resume_checkpoint: dict | None,
    ingestion_manifest: dict,
    params: dict,
) -> Iterator[tuple[dict, dict, pd.DataFrame]]:
    """Train ConvNCF with BPR; after every epoch yield (checkpoint, best model so far, history)."""
    p = parse_params(ConvNCFParams, params, "convncf")
    recipe = p.chosen
    data = check_same_run(ingestion_manifest, "convncf", train_matrix=train_matrix, valid=valid,
                          valid_negatives=valid_negatives)
    check_trained_on(mf_model, data, "convncf")
    mf = load_model(mf_model)
    seed_everything(p.training.seed)
    n_users, n_items = train_matrix.shape
    model = ConvNCF(ConvNCFConfig(
        n_users, n_items, mf.config.embedding_size, p.channels, tuple(p.kernel_sizes or ()) or None, recipe.dropout,
        recipe.reg_embedding, recipe.reg_conv, recipe.reg_out, recipe.residual,
    ))
    model.start_from(mf, recipe.tower_init)
    yield from train_stage(
        f"convncf ({p.recipe})", model, train_matrix, valid, valid_negatives, resume_checkpoint, recipe.batch_size,
        recipe.phases, p.training, data, recipe=p.recipe,
    )


def track_convncf_training(convncf_history: pd.DataFrame) -> MetricHistory:
    """ConvNCF's loss and validation metrics by epoch, for the MLflow run of whichever pipeline trained it."""
    return history_metrics("convncf", convncf_history)
