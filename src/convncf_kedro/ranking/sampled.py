"""The paper's protocol: rank each held-out item among the user's sampled negatives."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from .metrics import check_finite, rank_among_negatives, sampled_metrics

ScorePairs = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (users (P,), items (P,)) → scores (P,)


def candidate_matrix(held_out: pd.DataFrame, negatives: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """One row per held-out (user, item): users (R,) and items (R, 1 + N), the held-out item first.

    Users with several held-out items (Gowalla's test split) get a row for each, ranked against the
    same negatives. Every user must have the same number of negatives.
    """
    negatives = negatives.sort_values(["user", "item"], kind="stable")
    per_user = negatives.groupby("user").size()
    if per_user.nunique() > 1:
        raise ValueError(f"users have between {per_user.min()} and {per_user.max()} negatives; expected one count")
    n = int(per_user.iloc[0])
    negative_items = negatives["item"].to_numpy().reshape(-1, n)
    row_of_user = pd.Series(np.arange(len(per_user)), index=per_user.index)
    held_out = held_out[held_out["user"].isin(per_user.index)]
    users = held_out["user"].to_numpy()
    items = np.column_stack([held_out["item"].to_numpy(), negative_items[row_of_user.loc[users].to_numpy()]])
    return users, items


def evaluate_sampled(
    score_pairs: ScorePairs, users: np.ndarray, items: np.ndarray, ks: list[int], label: str = "model"
) -> dict[str, float]:
    """Score every (user, candidate) pair, rank the held-out item (column 0), average the metrics.

    A NaN or infinite score stops with :class:`NonFiniteScoresError` naming ``label``: NaN compares
    False with everything, so it would otherwise rank the held-out item first and earn perfect metrics.
    """
    n_rows, n_candidates = items.shape
    scores = score_pairs(np.repeat(users, n_candidates), items.reshape(-1)).reshape(n_rows, n_candidates)
    check_finite(scores, label)
    ranks = rank_among_negatives(scores[:, 0], scores[:, 1:])
    return sampled_metrics(ranks, n_candidates - 1, ks)
