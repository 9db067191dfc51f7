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

from .metrics import check_finite

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
    ties_last: sp.csr_matrix | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(U, k) best unseen items per user and their scores, best first.

    Ties go to the lower item index, except that items in ``ties_last`` (evaluation passes the test
    items) lose every tie, as the held-out item does in the sampled protocol: a constant model then
    scores 0, never a lucky hit. Users with fewer than k unseen items get item -1 and score -inf in
    the empty places. NaN or infinite scores stop the ranking (:class:`NonFiniteScoresError`).
    """
    n_items = seen.shape[1]
    top_items = np.full((len(users), k), -1, dtype=np.int64)
    top_scores = np.full((len(users), k), -np.inf, dtype=np.float32)
    top_last = np.zeros((len(users), k), dtype=bool)
    started = last_log = time.perf_counter()
    total_pairs, done_pairs = len(users) * n_items, 0
    for u0 in range(0, len(users), chunk_users):
        block_users = users[u0:u0 + chunk_users]
        block_seen = seen[block_users]
        block_last = ties_last[block_users] if ties_last is not None else None
        best = [a[u0:u0 + chunk_users] for a in (top_items, top_scores, top_last)]
        for i0 in range(0, n_items, chunk_items):
            items = np.arange(i0, min(i0 + chunk_items, n_items))
            scores = np.asarray(score_block(block_users, items), dtype=np.float32)  # (U_c, I_c)
            check_finite(scores, label)
            mask = block_seen[:, i0:i0 + len(items)].tocoo()
            scores[mask.row, mask.col] = -np.inf
            last = np.zeros(scores.shape, dtype=bool)
            if block_last is not None:
                flagged = block_last[:, i0:i0 + len(items)].tocoo()
                last[flagged.row, flagged.col] = True
            merged = [np.concatenate([b, new], axis=1) for b, new in
                      zip(best, (np.broadcast_to(items, scores.shape), scores, last), strict=True)]
            # order by score desc, then the ties_last items after the others, then item asc; keep k
            order = np.lexsort((merged[0], merged[2], -merged[1]), axis=1)[:, :k]
            for b, m in zip(best, merged, strict=True):
                b[:] = np.take_along_axis(m, order, axis=1)
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


RetrieveBlock = Callable[[np.ndarray], np.ndarray]  # users (U,) → cheap first-stage scores (U, n_items)


def clamp_shortlist(size: int | None, n_items: int) -> int | None:
    """A shortlist as long as the catalog or longer is every item: said once, where the run starts."""
    if size is not None and size > n_items:
        logger.info("shortlist of %d is more than the %d items: every item is a candidate", size, n_items)
        return n_items
    return size


def shortlist_unseen(retrieve: RetrieveBlock, users: np.ndarray, seen: sp.csr_matrix, size: int) -> np.ndarray:
    """(U, size) each user's ``size`` best unseen items by the first-stage scores, ascending item order (-1 where a
    user has fewer unseen items)."""
    scores = np.asarray(retrieve(users), dtype=np.float32)  # (U, n_items)
    mask = seen[users].tocoo()
    scores[mask.row, mask.col] = -np.inf
    size = min(size, scores.shape[1])
    chosen = np.argpartition(-scores, size - 1, axis=1)[:, :size]
    chosen = np.where(np.isfinite(np.take_along_axis(scores, chosen, axis=1)), chosen, -1)
    return np.sort(chosen, axis=1)


def top_k_of_shortlist(
    score_pairs: ScorePairs, retrieve: RetrieveBlock, users: np.ndarray, seen: sp.csr_matrix, k: int, size: int,
    chunk_users: int, label: str = "two-stage ranking", ties_last: sp.csr_matrix | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`top_k_unseen` through two stages: ``retrieve`` shortlists ``size`` unseen items per user, the model
    re-ranks only those (same tie rule, same output: (U, k) items and scores, -1 / -inf where fewer)."""
    top_items = np.full((len(users), k), -1, dtype=np.int64)
    top_scores = np.full((len(users), k), -np.inf, dtype=np.float32)
    for u0 in range(0, len(users), chunk_users):
        block_users = users[u0:u0 + chunk_users]
        candidates = shortlist_unseen(retrieve, block_users, seen, size)  # (U_c, S)
        real = candidates >= 0
        scores = np.full(candidates.shape, -np.inf, dtype=np.float32)
        scored = score_pairs(np.repeat(block_users, candidates.shape[1])[real.ravel()], candidates[real])
        check_finite(scored, label)
        scores[real] = scored
        last = np.zeros(candidates.shape, dtype=bool)
        if ties_last is not None:
            rows = np.broadcast_to(np.arange(len(block_users))[:, None], candidates.shape)
            last[real] = np.asarray(ties_last[block_users][rows[real], candidates[real]]).ravel() > 0
        order = np.lexsort((candidates, last, -scores), axis=1)[:, :k]  # score desc, ties_last after, item asc
        width = order.shape[1]
        top_items[u0:u0 + len(block_users), :width] = np.take_along_axis(candidates, order, axis=1)
        top_scores[u0:u0 + len(block_users), :width] = np.take_along_axis(scores, order, axis=1)
    top_items[~np.isfinite(top_scores)] = -1
    return top_items, top_scores
