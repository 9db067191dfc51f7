"""Ranking metrics, defined once for validation, evaluation and reports.

``rank`` is 0-based: the number of items ranked above the held-out item. In the sampled protocol
ties count against the held-out item (a negative scoring exactly as high is ranked above it), as in
the authors' code, so a constant model scores HR = 0, never a lucky 1.

For one held-out item per user, at cut-off K:
    HR@K        = 1 if rank < K                    (= Recall@K)
    NDCG@K      = 1 / log2(rank + 2) if rank < K   (the ideal DCG is 1)
    MRR@K       = 1 / (rank + 1) if rank < K
    Precision@K = HR@K / K
    AUC         = fraction of negatives scored strictly below the held-out item
Each is averaged over users.
"""

from __future__ import annotations

import numpy as np

METRICS = ("hr", "ndcg", "mrr", "recall", "precision")


def rank_among_negatives(positive_scores: np.ndarray, negative_scores: np.ndarray) -> np.ndarray:
    """(U,) held-out scores and (U, N) negatives' scores → (U,) 0-based ranks, ties against the positive."""
    return (negative_scores >= positive_scores[:, None]).sum(axis=1)


def sampled_metrics(ranks: np.ndarray, n_negatives: int, ks: list[int]) -> dict[str, float]:
    """Metrics@K of 0-based ranks of one held-out item per user among ``n_negatives`` negatives."""
    ranks = np.asarray(ranks)
    out: dict[str, float] = {}
    for k in ks:
        hit = ranks < k
        out[f"hr@{k}"] = float(hit.mean())
        out[f"ndcg@{k}"] = float(np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0).mean())
        out[f"mrr@{k}"] = float(np.where(hit, 1.0 / (ranks + 1.0), 0.0).mean())
        out[f"recall@{k}"] = out[f"hr@{k}"]
        out[f"precision@{k}"] = out[f"hr@{k}"] / k
    out["auc"] = float((1.0 - ranks / n_negatives).mean())
    return out
