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

In full ranking a user may hold several test items T (Gowalla), ranked among every item they did not
interact with in training (and validation); with hits h_r = 1 when the item at rank r is in T:
    HR@K        = 1 if any h_r, r < K
    Recall@K    = Σ_{r<K} h_r / |T|
    Precision@K = Σ_{r<K} h_r / K
    NDCG@K      = Σ_{r<K} h_r / log2(r + 2)  ÷  Σ_{r<min(|T|, K)} 1 / log2(r + 2)
    MRR@K       = 1 / (r₁ + 1) for the first hit r₁ < K, else 0
With one test item these equal the sampled definitions above.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

METRICS = ("hr", "ndcg", "mrr", "recall", "precision")


class NonFiniteScoresError(ValueError):
    """A model produced NaN or infinite scores; its metrics would be meaningless."""


def check_finite(scores: np.ndarray, label: str) -> None:
    """Stop on NaN/inf scores, naming the model (and epoch) in ``label``."""
    bad = ~np.isfinite(scores)
    if bad.any():
        raise NonFiniteScoresError(
            f"{label}: {int(bad.sum()):,} of {scores.size:,} scores are NaN or infinite, so it cannot be ranked: "
            "its weights diverged in training (lower the learning rate or raise the L2 weights), or the model file "
            "was corrupted after it was saved (re-run the stage that wrote it)"
        )


def rank_among_negatives(positive_scores: np.ndarray, negative_scores: np.ndarray) -> np.ndarray:
    """(U,) held-out scores and (U, N) negatives' scores → (U,) 0-based ranks, ties against the positive."""
    return (negative_scores >= positive_scores[:, None]).sum(axis=1)


def sampled_metrics_per_user(ranks: np.ndarray, n_negatives: int | np.ndarray, ks: list[int]) -> dict[str, np.ndarray]:
    """Each held-out row's metrics@K from its 0-based rank among ``n_negatives`` negatives (per row or all)."""
    ranks = np.asarray(ranks)
    out: dict[str, np.ndarray] = {}
    for k in ks:
        hit = ranks < k
        out[f"hr@{k}"] = hit.astype(float)
        out[f"ndcg@{k}"] = np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0)
        out[f"mrr@{k}"] = np.where(hit, 1.0 / (ranks + 1.0), 0.0)
        out[f"recall@{k}"] = out[f"hr@{k}"]
        out[f"precision@{k}"] = out[f"hr@{k}"] / k
    out["auc"] = 1.0 - ranks / n_negatives
    return out


def sampled_metrics_random_ties(ranks: np.ndarray, ties: np.ndarray, n_negatives: int | np.ndarray,
                                ks: list[int]) -> dict[str, np.ndarray]:
    """Each row's expected metrics@K when ties are broken at random instead of against the held-out item: its rank is
    equally likely to be any of ``ranks − ties … ranks`` (exact expectation, no draw)."""
    ranks, ties = np.asarray(ranks), np.asarray(ties)
    best = ranks - ties
    expected: dict[str, np.ndarray] = {}
    for offset in range(int(ties.max(initial=0)) + 1):
        weight = np.where(offset <= ties, 1.0 / (ties + 1.0), 0.0)
        for name, values in sampled_metrics_per_user(np.minimum(best + offset, ranks), n_negatives, ks).items():
            expected[name] = expected.get(name, 0.0) + weight * values
    return expected


def sampled_metrics(ranks: np.ndarray, n_negatives: int | np.ndarray, ks: list[int]) -> dict[str, float]:
    """Metrics@K averaged over held-out rows (see :func:`sampled_metrics_per_user`)."""
    return mean_metrics(sampled_metrics_per_user(ranks, n_negatives, ks))


def full_ranking_metrics_per_user(hits: np.ndarray, n_relevant: np.ndarray, ks: list[int]) -> dict[str, np.ndarray]:
    """Each user's metrics@K from (U, K_max) booleans ``hits`` (top-K_max list, best first) and (U,) test-set sizes."""
    hits = np.asarray(hits, dtype=bool)
    n_relevant = np.asarray(n_relevant, dtype=float)
    discount = 1.0 / np.log2(np.arange(hits.shape[1]) + 2.0)  # (K_max,)
    first_hit = np.where(hits.any(axis=1), hits.argmax(axis=1), hits.shape[1])
    out: dict[str, np.ndarray] = {}
    for k in ks:
        if k > hits.shape[1]:
            raise ValueError(f"K={k} is larger than the {hits.shape[1]} ranked items kept per user")
        top = hits[:, :k]
        n_hits = top.sum(axis=1)
        ideal = np.cumsum(discount)[np.minimum(n_relevant, k).astype(int) - 1]
        out[f"hr@{k}"] = (n_hits > 0).astype(float)
        out[f"ndcg@{k}"] = (top * discount[:k]).sum(axis=1) / ideal
        out[f"mrr@{k}"] = np.where(first_hit < k, 1.0 / (first_hit + 1.0), 0.0)
        out[f"recall@{k}"] = n_hits / n_relevant
        out[f"precision@{k}"] = n_hits / k
    return out


def full_ranking_metrics(hits: np.ndarray, n_relevant: np.ndarray, ks: list[int]) -> dict[str, float]:
    """Metrics@K averaged over users (see :func:`full_ranking_metrics_per_user`)."""
    return mean_metrics(full_ranking_metrics_per_user(hits, n_relevant, ks))


def by_user(users: np.ndarray, per_row: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Rows of (user, test item) → one value per user, each user's mean over their test items: the user is the unit
    of every mean and interval, so a user with nine test items weighs as much as one with one. Users sorted."""
    users = np.asarray(users)
    unique, inverse, counts = np.unique(users, return_inverse=True, return_counts=True)
    return unique, {name: np.bincount(inverse, weights=np.asarray(values, dtype=float)) / counts
                    for name, values in per_row.items()}


def mean_metrics(per_user: dict[str, np.ndarray]) -> dict[str, float]:
    return {name: float(np.mean(values)) for name, values in per_user.items()}


def mean_interval(values: np.ndarray, confidence: float, resamples: int, seed: int) -> tuple[float, float]:
    """Bootstrap percentile interval of the mean of per-user ``values`` (users resampled)."""
    values = np.asarray(values, dtype=float)
    if np.all(values == values[0]):  # a constant has no spread (and scipy refuses it)
        return float(values[0]), float(values[0])
    interval = stats.bootstrap(
        (values,), np.mean, confidence_level=confidence, n_resamples=resamples, vectorized=True,
        method="percentile", rng=np.random.default_rng(seed),
        batch=max(1, 20_000_000 // len(values)),  # ≤ 160 MB of resamples at a time, even on Gowalla
    ).confidence_interval
    return float(interval.low), float(interval.high)


def paired_difference(
    candidate: np.ndarray, baseline: np.ndarray, confidence: float, resamples: int, seed: int
) -> dict[str, float]:
    """Mean of ``candidate − baseline`` over the same users, with a paired bootstrap interval (users resampled).

    ``verdict`` is ``gain`` or ``loss`` only when the interval excludes 0.
    """
    difference = np.asarray(candidate, dtype=float) - np.asarray(baseline, dtype=float)
    low, high = mean_interval(difference, confidence, resamples, seed)
    verdict = "gain" if low > 0 else "loss" if high < 0 else "no significant difference"
    return {"difference": float(difference.mean()), "ci_low": low, "ci_high": high, "verdict": verdict}


def seed_aware_interval(values: np.ndarray, confidence: float) -> dict[str, float]:
    """Mean of (U users, S seeds) ``values`` — per-user differences of two variants, or one variant's metric — with an
    interval that treats both users and seeds as random.

    ``values[u, s] = mean + user effect + seed effect + noise``: the users' standard error comes from each user's mean
    over seeds (var/U), the seeds' from each seed's mean over users (var/S), and the interval is mean ± t·√(sum) with
    the smaller of the two parts' degrees of freedom (the conservative form of Welch's; Satterthwaite's was liberal
    at three seeds in the simulation of tests/ranking/test_seed_variance.py). The noise term is counted in both; with
    three seeds t has two degrees of freedom, so a verdict needs a difference well above the seeds' spread. With one seed
    the seeds' part is unknown: ``seeds_counted`` is False and no verdict is given.
    """
    values = np.asarray(values, dtype=float)
    n_users, n_seeds = values.shape
    user_var = values.mean(axis=1).var(ddof=1) / n_users if n_users > 1 else 0.0
    seed_var = values.mean(axis=0).var(ddof=1) / n_seeds if n_seeds > 1 else 0.0
    return users_and_seeds_interval(float(values.mean()), user_var, n_users, seed_var, n_seeds, confidence)


def users_and_seeds_interval(mean: float, user_var: float, n_users: int, seed_var: float, n_seeds: int,
                             confidence: float) -> dict[str, float]:
    """mean ± t·√(users' + seeds' squared standard errors), t at the smaller part's degrees of freedom (the rule of
    :func:`seed_aware_interval`, also for published tables that kept only those parts)."""
    total = user_var + seed_var
    if total == 0.0:
        return {"mean": mean, "ci_low": mean, "ci_high": mean, "df": float("inf"), "seeds_counted": n_seeds > 1}
    df = float(min(d for v, d in ((user_var, n_users - 1), (seed_var, n_seeds - 1)) if v > 0))
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * float(np.sqrt(total))
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half, "df": df, "seeds_counted": n_seeds > 1}


def seed_aware_difference(candidate: np.ndarray, reference: np.ndarray, confidence: float) -> dict:
    """``candidate − reference`` over the same (U, S) users and seeds (a one-column reference — a deterministic
    baseline — is compared with every seed), by :func:`seed_aware_interval`; each seed's mean difference beside it.
    ``verdict`` is ``gain`` or ``loss`` only when the interval excludes 0 with seeds counted."""
    differences = np.asarray(candidate, dtype=float) - np.asarray(reference, dtype=float)
    interval = seed_aware_interval(differences, confidence)
    return {"difference": interval["mean"], "ci_low": interval["ci_low"], "ci_high": interval["ci_high"],
            "verdict": seed_verdict(interval), "by_seed": [float(v) for v in differences.mean(axis=0)]}


def seed_verdict(interval: dict) -> str:
    """gain or loss only where the interval, seeds counted, excludes 0."""
    if not interval["seeds_counted"]:
        return "one seed: no verdict"
    return "gain" if interval["ci_low"] > 0 else "loss" if interval["ci_high"] < 0 else "no significant difference"


def ranks_alike(metrics: dict[str, float], reference: dict[str, float], names: tuple[str, ...] = ("ndcg@10",)) -> bool:
    """The project's acceptance rule for a cheaper way to score (bf16, INT8, …): the same validation metrics as the
    reference to 3 decimals."""
    return all(round(metrics[name], 3) == round(reference[name], 3) for name in names)
