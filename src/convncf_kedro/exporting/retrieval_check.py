"""The two-stage check export makes, like its INT8 check: does ranking a shortlist retrieved by the model's own
embeddings rank validation like ranking every unseen item?"""

from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np
import pandas as pd
import scipy.sparse as sp

from convncf_kedro.interactions.prepare import positives_matrix
from convncf_kedro.ranking.full import (
    hits_against,
    shortlist_unseen,
    top_k_of_shortlist,
    top_k_unseen,
)
from convncf_kedro.ranking.metrics import full_ranking_metrics_per_user, paired_difference
from convncf_kedro.serving.engine import RankSettings, session_for
from convncf_kedro.serving.session import create_session, onnx_block_scorer

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ShortlistCheck:
    """Which shortlist sizes are tried on how many validation users, what counts as ranking alike, and how the engine
    ranks (export.retrieval_check, and evaluation's engine and interval settings)."""

    users: int  # a seeded sample of validation users (all of them when fewer)
    shortlists: list[int]  # sizes tried
    min_recall: float  # share of the exhaustive top-10 the shortlist must hold
    seed: int  # of the user sample
    engine: RankSettings
    confidence: float
    resamples: int
    interval_seed: int


def ranks_like_every_item(row: dict, min_recall: float) -> bool:
    """Export's acceptance of one shortlist size: it holds ≥ ``min_recall`` of the exhaustive top-10 and its NDCG@10
    difference from every item has an interval that includes 0."""
    return row["recall@10_of_exhaustive"] >= min_recall and row["ci_low"] <= 0 <= row["ci_high"]


def accepted_shortlists(check: dict) -> list[int]:
    """The shortlist sizes the check found to rank validation like every item does."""
    return [row["shortlist"] for row in check.get("shortlists", []) if ranks_like_every_item(row, check["min_recall"])]


def check_shortlists(
    graph: bytes, retrieval: bytes, train_matrix: sp.csr_matrix, valid: pd.DataFrame, check: ShortlistCheck,
) -> dict:
    """For a seeded sample of validation users and each shortlist size: the share of the exhaustive top-10 the
    shortlist holds, and the paired difference of validation NDCG@10 (two stages − every item) with its interval;
    ``chosen``: the smallest size with recall ≥ ``min_recall`` whose interval includes 0 (what
    ``candidates: {retrieve: auto}`` uses), None when none qualifies."""
    started = time.perf_counter()
    users = np.unique(valid["user"].to_numpy())
    if len(users) > check.users:
        users = np.sort(np.random.default_rng(check.seed).choice(users, size=check.users, replace=False))
    relevant = positives_matrix([valid], *train_matrix.shape)
    retriever = create_session(retrieval, "cpu", role="retrieval")

    # both graphs score the sampled users' every item once ((U, items) fp32 each: 120 MB at 300 users × 100k items);
    # the exhaustive ranking, each shortlist and its re-ranking read those scores (the engine's functions, tie rule)
    retrieved = retriever.run(["scores"], {"user": users.astype(np.int64)})[0]
    session = session_for(graph, check.engine.device, check.engine.threads)
    scores = onnx_block_scorer(session, check.engine.batch_pairs)(users, np.arange(train_matrix.shape[1]))

    def retrieve(block_users: np.ndarray) -> np.ndarray:
        return retrieved[np.searchsorted(users, block_users)]

    def scored_block(block_users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return scores[np.searchsorted(users, block_users)][:, items]

    def scored_pairs(pair_users: np.ndarray, pair_items: np.ndarray) -> np.ndarray:
        return scores[np.searchsorted(users, pair_users), pair_items]

    def ndcg(top: np.ndarray) -> np.ndarray:
        return full_ranking_metrics_per_user(hits_against(top, users, relevant), np.ones(len(users)), [10])["ndcg@10"]

    exhaustive, _ = top_k_unseen(scored_block, users, train_matrix, check.engine.k, check.engine.chunk_users,
                                 check.engine.chunk_items, label="two-stage check", ties_last=relevant)
    rows, chosen = [], None
    for size in sorted(check.shortlists):
        held = shortlist_unseen(retrieve, users, train_matrix, size)
        found = [(len(set(top[top >= 0]) & set(short[short >= 0])), int((top >= 0).sum()))
                 for top, short in zip(exhaustive, held, strict=True)]
        recall = float(np.mean([hit / total for hit, total in found if total]))
        two_stages, _ = top_k_of_shortlist(scored_pairs, retrieve, users, train_matrix, check.engine.k, size,
                                           check.engine.chunk_users, label="two-stage check", ties_last=relevant)
        compared = paired_difference(ndcg(two_stages), ndcg(exhaustive), check.confidence, check.resamples,
                                     check.interval_seed)
        rows.append({"shortlist": size, "recall@10_of_exhaustive": round(recall, 4), **compared})
        if chosen is None and ranks_like_every_item(rows[-1], check.min_recall):
            chosen = size
    logger.info("two-stage check on %d validation users: %s", len(users), "; ".join(
        f"N={r['shortlist']}: recall {r['recall@10_of_exhaustive']:.3f}, NDCG@10 {r['difference']:+.4f}" for r in rows))
    return {"users": len(users), "shortlists": rows, "chosen": chosen, "min_recall": check.min_recall,
            "seconds": round(time.perf_counter() - started, 1)}
