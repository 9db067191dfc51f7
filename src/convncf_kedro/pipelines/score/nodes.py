"""Batch scoring: top-K unseen items per user from the exported graph, with ONNX Runtime."""

from __future__ import annotations

import onnx
import pandas as pd
import scipy.sparse as sp

from convncf_kedro.errors import ParameterError
from convncf_kedro.interactions.prepare import positives_matrix
from convncf_kedro.params import ScoreParams, parse_params
from convncf_kedro.serving.engine import RankSettings
from convncf_kedro.serving.onnx_scoring import recommend


def score_users(
    convncf_onnx: onnx.ModelProto,
    user_map: pd.DataFrame,
    item_map: pd.DataFrame,
    train_matrix: sp.csr_matrix,
    valid: pd.DataFrame,
    test: pd.DataFrame,
    users_to_score: list[str] | None,
    params: dict,
) -> tuple[dict[str, pd.DataFrame], dict]:
    """Recommendations (raw ids) for every user or a given list, one parquet part per partition of users; no
    item the user ever interacted with. ``score.cluster`` says where the partitions are ranked."""
    p = parse_params(ScoreParams, params, "score")
    if p.users == "list" and users_to_score is None:
        raise ParameterError("score.users", "is 'list', but the catalog's users_to_score file does not exist")
    n_users, n_items = train_matrix.shape
    seen = (train_matrix + positives_matrix([valid, test], n_users, n_items)).tocsr()
    seen.data[:] = 1
    settings = RankSettings(p.k, p.batch_pairs, p.chunk_users, p.chunk_items, p.device, p.threads, p.log_every_seconds)
    return recommend(
        convncf_onnx.SerializeToString(), user_map, item_map, seen, settings,
        users_to_score if p.users == "list" else None, p.unknown_users, p.cluster, p.partition_users,
    )
