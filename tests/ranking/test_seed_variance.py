"""Verdicts with users and seeds as the units: a simulated study of two variants of equal quality, whose seeds differ,
rarely gets a gain/loss verdict; a real difference is still found; a user with many test items counts once."""

import numpy as np
import pytest

from convncf_kedro.ranking.metrics import by_user, seed_aware_difference

USERS, SEEDS = 943, 3


def simulated_members(rng: np.random.Generator, true_difference: float, seed_sd: float = 0.01):
    """(users, seeds) NDCG-like values of a reference and a candidate: each user has a quality of their own, each
    seed of the candidate shifts it by N(0, seed_sd), and every (user, seed) is noisy."""
    quality = rng.uniform(0.2, 0.8, size=(USERS, 1))
    reference = quality + rng.normal(0, 0.1, size=(USERS, SEEDS))
    candidate = quality + true_difference + rng.normal(0, seed_sd, size=(1, SEEDS)) + rng.normal(0, 0.1, (USERS, SEEDS))
    return candidate, reference


def verdict_rate(true_difference: float, repetitions: int = 300) -> float:
    rng = np.random.default_rng(20261203)
    verdicts = [seed_aware_difference(*simulated_members(rng, true_difference), 0.95)["verdict"]
                for _ in range(repetitions)]
    return float(np.mean([v in ("gain", "loss") for v in verdicts]))


def users_only_verdict_rate(repetitions: int = 300) -> float:
    """What the study did before: seeds averaged per user, users alone resampled (normal approximation)."""
    rng = np.random.default_rng(20261203)
    found = 0
    for _ in range(repetitions):
        candidate, reference = simulated_members(rng, 0.0)
        per_user = (candidate - reference).mean(axis=1)
        found += abs(per_user.mean()) > 1.96 * per_user.std(ddof=1) / np.sqrt(USERS)
    return found / repetitions


def test_equal_variants_with_seed_noise_rarely_get_a_verdict():
    assert verdict_rate(0.0) <= 0.07
    assert users_only_verdict_rate() > 0.3  # seeds ignored: "loss" or "gain" for variants of equal quality


def test_a_true_difference_is_still_found():
    assert verdict_rate(0.04) >= 0.8


def test_each_seed_is_reported_and_one_seed_gives_no_verdict():
    candidate = np.array([[0.5, 0.6, 0.7], [0.5, 0.6, 0.7]])
    compared = seed_aware_difference(candidate, np.full((2, 1), 0.5), 0.95)  # a deterministic baseline: one column
    assert compared["by_seed"] == pytest.approx([0.0, 0.1, 0.2])
    assert compared["difference"] == pytest.approx(0.1)
    assert seed_aware_difference(candidate[:, :1] + 0.1, candidate[:, :1], 0.95)["verdict"] == "one seed: no verdict"


def test_a_user_with_nine_test_items_counts_once():
    users = np.array([7] * 9 + [3])
    hits = np.array([1.0] * 9 + [0.0])
    unique, per_user = by_user(users, {"hr@10": hits})
    assert unique.tolist() == [3, 7] and per_user["hr@10"].tolist() == [0.0, 1.0]
    assert per_user["hr@10"].mean() == 0.5  # over rows it would be 0.9
