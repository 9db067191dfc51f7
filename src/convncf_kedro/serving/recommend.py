"""Top-K recommendations of known users from the exported ConvNCF graph, with raw ids: the library behind
`kedro run --pipeline score` and the plain CLI (:mod:`convncf_kedro.serving.onnx_scoring`). ONNX Runtime only."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pandas as pd
import scipy.sparse as sp

from convncf_kedro.ranking.full import clamp_shortlist

from .engine import RankSettings, rank_users
from .session import check_id_maps, check_same_weights, check_seen, create_session

logger = logging.getLogger(__name__)


def recommend(
    graph: bytes,
    user_map: pd.DataFrame,
    item_map: pd.DataFrame,
    seen: sp.csr_matrix,
    settings: RankSettings,
    raw_user_ids: list[str] | None = None,
    unknown_users: str = "skip",
    cluster: str | None = None,
    partition_users: int = 256,
    retrieval: bytes | None = None,
) -> tuple[dict[str, pd.DataFrame], dict]:
    """Top-K unseen items per user as ``user_id, rank, item_id, score`` (raw ids, rank from 1), one frame per
    partition of users (``part-00000``, …, and ``unknown`` for the popular fallback), and a report.

    ``raw_user_ids``: the users to score (None: all). Ids the model does not know are reported in the
    returned dict and either skipped or given the most popular unseen items (``unknown_users:
    popular``, score NaN). ``seen`` (users × items CSR) holds what each user already interacted with.
    ``cluster``: where the partitions run (see :mod:`convncf_kedro.serving.engine`). With ``settings.shortlist``,
    the ``retrieval`` graph (exported from the same weights) shortlists the items the model re-ranks.
    """
    check_id_maps(create_session(graph, "cpu", 1), user_map, item_map)
    if settings.shortlist:
        if retrieval is None:
            raise ValueError("a shortlist was asked for, but no retrieval graph was given")
        check_same_weights(graph, retrieval)
        settings = replace(settings, shortlist=clamp_shortlist(settings.shortlist, len(item_map)))
    check_seen(seen, user_map, item_map, "seen")
    if unknown_users not in ("skip", "popular"):
        raise ValueError(f"unknown_users must be 'skip' or 'popular', not '{unknown_users}'")
    if settings.k < 1:
        raise ValueError(f"k must be at least 1, not {settings.k}")
    index_of = pd.Series(user_map["index"].to_numpy(), index=user_map["raw_id"].astype(str))
    requested = pd.Series(list(map(str, raw_user_ids)) if raw_user_ids is not None else index_of.index)
    if requested.empty:
        raise ValueError("the list of users to score is empty")
    known = requested.isin(index_of.index).to_numpy()
    unknown = requested[~known].drop_duplicates().tolist()
    if not known.any() and unknown_users == "skip":
        raise ValueError(f"none of the {len(unknown)} users to score is known to the model (first: {unknown[0]!r}); "
                         "check the ids, or give them the most popular items with unknown users 'popular'")
    users = np.unique(index_of.loc[requested[known]].to_numpy()).astype(np.int64)
    raw_item = item_map.sort_values("index")["raw_id"].astype(str).to_numpy()
    raw_user = user_map.sort_values("index")["raw_id"].astype(str).to_numpy()
    partitions, providers = {}, set()
    for ranked in rank_users(graph, seen, users, settings, partition_users, cluster, label="scoring",
                             retrieval=retrieval):
        found = ranked.top_items >= 0
        partitions[f"part-{ranked.index:05d}"] = pd.DataFrame({
            "user_id": np.repeat(raw_user[ranked.users], settings.k)[found.ravel()],
            "rank": np.tile(np.arange(1, settings.k + 1), len(ranked.users))[found.ravel()],
            "item_id": raw_item[ranked.top_items[found]],
            "score": ranked.top_scores[found].astype(np.float32),
        })
        providers.add(ranked.provider)
    if unknown and unknown_users == "popular":
        popular = np.argsort(-np.asarray(seen.sum(axis=0)).ravel(), kind="stable")[:settings.k]
        partitions["unknown"] = pd.DataFrame({
            "user_id": np.repeat(unknown, len(popular)),
            "rank": np.tile(np.arange(1, len(popular) + 1), len(unknown)),
            "item_id": np.tile(raw_item[popular], len(unknown)),
            "score": np.float32(np.nan),
        })
    report = {"requested": len(requested), "scored": len(users), "unknown_count": len(unknown),
              "unknown_user_ids": unknown, "unknown_policy": unknown_users, "partitions": len(partitions),
              "cluster": cluster, "provider": ", ".join(sorted(providers)) or None}
    return dict(sorted(partitions.items())), report
