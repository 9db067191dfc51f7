"""ConvNCF BPR training, starting from the pretrained MF embeddings."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import scipy.sparse as sp

from convncf_kedro.models import ConvNCF
from convncf_kedro.params import ConvNCFParams, parse_params
from convncf_kedro.training.stage import seed_everything, train_stage


def train_convncf(
    train_matrix: sp.csr_matrix,
    valid: pd.DataFrame,
    valid_negatives: pd.DataFrame,
    mf_model: dict,
    resume_checkpoint: dict | None,
    params: dict,
) -> Iterator[tuple[dict, dict, pd.DataFrame]]:
    """Train ConvNCF with BPR; after every epoch yield (checkpoint, best model so far, history)."""
    p = parse_params(ConvNCFParams, params, "convncf")
    seed_everything(p.training.seed)
    n_users, n_items = train_matrix.shape
    model = ConvNCF(
        n_users, n_items, mf_model["hyperparameters"]["embedding_size"], p.channels, p.kernel_sizes,
        p.dropout, p.reg_embedding, p.reg_conv, p.reg_out, p.reg_anchor,
    )
    model.init_from_mf(
        mf_model["state_dict"]["user_embedding.weight"], mf_model["state_dict"]["item_embedding.weight"], p.tower_init
    )
    yield from train_stage("convncf", model, train_matrix, valid, valid_negatives, resume_checkpoint, p.training)

