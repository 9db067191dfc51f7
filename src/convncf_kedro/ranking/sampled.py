"""The paper's protocol: rank each held-out item among the user's sampled negatives."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from .full import ScorePairs
from .metrics import check_finite, rank_among_negatives, sampled_metrics


class SampledRanks(NamedTuple):
    ranks: np.ndarray  # (R,) 0-based rank of each held-out item among its negatives, ties counted against it
    n_negatives: np.ndarray  # (R,) real negatives per row
    ties: np.ndarray  # (R,) negatives scored exactly as the held-out item (counted against it in ``ranks``)

    @property
    def tied(self) -> np.ndarray:
        """(R,) bool: the tie rule decided the row's rank."""
        return self.ties > 0


def candidate_matrix(held_out: pd.DataFrame, negatives: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """One row per held-out (user, item): users (R,) and items (R, 1 + N), the held-out item first.

    Users with several held-out items (Gowalla's test split) get a row for each, ranked against the
    same negatives. Users with fewer negatives than N (given negatives under ``drop``) have their row
    padded with -1, which is never scored and never ranked.
    """
    negatives = negatives.sort_values(["user", "item"], kind="stable")
    per_user = negatives.groupby("user").size()
    n = int(per_user.max())
    slot = negatives.groupby("user").cumcount().to_numpy()
    row_of_user = pd.Series(np.arange(len(per_user)), index=per_user.index)
    negative_items = np.full((len(per_user), n), -1, dtype=np.int64)
    negative_items[row_of_user.loc[negatives["user"]].to_numpy(), slot] = negatives["item"].to_numpy()
    held_out = held_out[held_out["user"].isin(per_user.index)]
    users = held_out["user"].to_numpy()
    items = np.column_stack([held_out["item"].to_numpy(), negative_items[row_of_user.loc[users].to_numpy()]])
    return users, items


def evaluate_sampled(
    score_pairs: ScorePairs, users: np.ndarray, items: np.ndarray, ks: list[int], label: str = "model"
) -> dict[str, float]:
    """Score every (user, candidate) pair, rank the held-out item (column 0), average the metrics."""
    ranked = rank_sampled(score_pairs, users, items, label)
    return sampled_metrics(ranked.ranks, ranked.n_negatives, ks)


def rank_sampled(
    score_pairs: ScorePairs, users: np.ndarray, items: np.ndarray, label: str = "model"
) -> SampledRanks:
    """0-based ranks of each held-out item (column 0) among its negatives, negatives per row, and which rows tied.

    A NaN or infinite score stops with :class:`NonFiniteScoresError` naming ``label``: NaN compares
    False with everything, so it would otherwise rank the held-out item first and earn perfect metrics.
    """
    n_candidates = items.shape[1]
    real = items >= 0  # padding (-1) is neither scored nor ranked
    scored = score_pairs(np.repeat(users, n_candidates)[real.ravel()], items[real])
    check_finite(scored, label)
    scores = np.full(items.shape, -np.inf, dtype=np.float32)
    scores[real] = scored
    return SampledRanks(rank_among_negatives(scores[:, 0], scores[:, 1:]), real[:, 1:].sum(axis=1),
                        (scores[:, 1:] == scores[:, :1]).sum(axis=1))
