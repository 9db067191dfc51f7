"""MF-BPR pretraining: the embeddings ConvNCF starts from."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import scipy.sparse as sp

from convncf_kedro.models import MF, MFConfig
from convncf_kedro.params import PretrainParams, parse_params
from convncf_kedro.training.stage import seed_everything, train_stage


def train_mf(
    train_matrix: sp.csr_matrix,
    valid: pd.DataFrame,
    valid_negatives: pd.DataFrame,
    resume_checkpoint: dict | None,
    params: dict,
) -> Iterator[tuple[dict, dict, pd.DataFrame]]:
    """Train MF with BPR; after every epoch yield (checkpoint, best model so far, history)."""
    p = parse_params(PretrainParams, params, "pretrain")
    seed_everything(p.training.seed)
    n_users, n_items = train_matrix.shape
    model = MF(MFConfig(n_users, n_items, p.embedding_size, p.reg_embedding, p.init_std))
    yield from train_stage(
        "pretrain", model, train_matrix, valid, valid_negatives, resume_checkpoint, p.batch_size, p.phases, p.training,
    )
