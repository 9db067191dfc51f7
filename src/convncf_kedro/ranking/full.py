"""Full ranking: every item a user has not interacted with, scored in chunks, a running top-K kept.

Peak memory is one (users × items) score block plus the (users × K) running top-K, whatever the
number of items; seen items are masked from the CSR matrix, never scored into the result.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

logger = logging.getLogger(__name__)

ScoreBlock = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (users (U,), items (I,)) → scores (U, I)
ScorePairs = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (users (P,), items (P,)) → scores (P,)


def block_of_pairs(score_pairs: ScorePairs) -> ScoreBlock:
    """Score a users × items block through a pair scorer: every user repeated against every item."""

    def score(users: np.ndarray, items: np.ndarray) -> np.ndarray:
        pair_users = np.repeat(users.astype(np.int64), len(items))
        pair_items = np.tile(items.astype(np.int64), len(users))
        return score_pairs(pair_users, pair_items).reshape(len(users), len(items))

    return score


def top_k_unseen(
    score_block: ScoreBlock,
    users: np.ndarray,
    seen: sp.csr_matrix,
    k: int,
    chunk_users: int,
    chunk_items: int,
    log_every_seconds: float = 30.0,
    label: str = "full ranking",
) -> tuple[np.ndarray, np.ndarray]:
    """(U, k) best unseen items per user and their scores, best first (ties: lower item index first).

    Users with fewer than k unseen items get item -1 and score -inf in the empty places.
    """
    n_items = seen.shape[1]
    top_items = np.full((len(users), k), -1, dtype=np.int64)
    top_scores = np.full((len(users), k), -np.inf, dtype=np.float32)
    started = last_log = time.perf_counter()
    total_pairs, done_pairs = len(users) * n_items, 0
    for u0 in range(0, len(users), chunk_users):
        block_users = users[u0:u0 + chunk_users]
        block_seen = seen[block_users]
        best_items, best_scores = top_items[u0:u0 + chunk_users], top_scores[u0:u0 + chunk_users]
        for i0 in range(0, n_items, chunk_items):
            items = np.arange(i0, min(i0 + chunk_items, n_items))
            scores = np.asarray(score_block(block_users, items), dtype=np.float32)  # (U_c, I_c)
            mask = block_seen[:, i0:i0 + len(items)].tocoo()
            scores[mask.row, mask.col] = -np.inf
            merged_scores = np.concatenate([best_scores, scores], axis=1)
            merged_items = np.concatenate([best_items, np.broadcast_to(items, scores.shape)], axis=1)
            # order by score desc, then item asc; keep the first k
            order = np.lexsort((merged_items, -merged_scores), axis=1)[:, :k]
            best_scores[:] = np.take_along_axis(merged_scores, order, axis=1)
            best_items[:] = np.take_along_axis(merged_items, order, axis=1)
            done_pairs += scores.size
            now = time.perf_counter()
            if now - last_log >= log_every_seconds:
                rate = done_pairs / (now - started)
                logger.info("%s: %d%% of %s pairs, %s pairs/s, ETA %.0f s", label, 100 * done_pairs // total_pairs,
                            f"{total_pairs:,}", f"{rate:,.0f}", (total_pairs - done_pairs) / rate)
                last_log = now
    top_items[~np.isfinite(top_scores)] = -1  # places filled only by masked (seen) items
    return top_items, top_scores


def hits_against(top_items: np.ndarray, users: np.ndarray, relevant: sp.csr_matrix) -> np.ndarray:
    """(U, K) booleans: is top_items[u, r] one of user u's relevant (test) items?"""
    valid = top_items >= 0
    rows = np.broadcast_to(users[:, None], top_items.shape)
    hits = np.zeros(top_items.shape, dtype=bool)
    hits[valid] = np.asarray(relevant[rows[valid], top_items[valid]]).ravel() > 0
    return hits
