"""Each baseline against a direct dense computation of its definition, on MovieLens 100K's first 120 users."""

import re

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from convncf_kedro.baselines import models as baselines
from convncf_kedro.interactions.prepare import positives_matrix


@pytest.fixture(scope="module")
def x(shared_datasets) -> sp.csr_matrix:
    raw = pd.read_csv(shared_datasets / "ml-100k/u.data", sep="\t", names=["user", "item", "rating", "ts"])
    raw = raw[raw["user"] <= 120]
    return positives_matrix([pd.DataFrame({"user": raw["user"] - 1, "item": raw["item"] - 1})], 120, 1682)


def all_scores(model: baselines.LinearScorer) -> np.ndarray:
    n_users, n_items = model.shape
    return model.score_block(np.arange(n_users), np.arange(n_items))


def cosine(rows: np.ndarray, shrink: float) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1)
    similarity = rows @ rows.T / (np.outer(norms, norms) + shrink + 1e-12)
    np.fill_diagonal(similarity, 0)
    return similarity


def keep_top_k_per_column(matrix: np.ndarray, k: int) -> np.ndarray:
    """Zero all but each column's k largest positive entries (ties: any k of them; the tests compare multisets)."""
    kept = np.zeros_like(matrix)
    order = np.argsort(-matrix, axis=0, kind="stable")[:k]
    np.put_along_axis(kept, order, np.take_along_axis(matrix, order, axis=0), axis=0)
    return np.where(kept > 0, kept, 0)


def assert_same_pruning(actual: sp.spmatrix, expected: np.ndarray) -> None:
    """Column by column, the kept similarities are the same values (which of several tied items is free)."""
    actual = actual.toarray()
    for column in range(expected.shape[1]):
        np.testing.assert_allclose(np.sort(actual[:, column]), np.sort(expected[:, column]), rtol=1e-5, atol=1e-7)


def test_toppop_scores_are_training_popularity(x):
    scores = all_scores(baselines.toppop(x))
    np.testing.assert_array_equal(scores, np.tile(np.asarray(x.sum(axis=0)), (x.shape[0], 1)))


def test_itemknn_is_cosine_with_shrink_over_items_top_k_per_item(x):
    dense = x.toarray().astype(np.float64)
    model = baselines.itemknn(x, top_k=50, shrink=10)
    expected_similarity = keep_top_k_per_column(cosine(dense.T, 10), 50)
    assert_same_pruning(model.item_side, expected_similarity)
    np.testing.assert_allclose(all_scores(model), dense @ model.item_side.toarray(), rtol=1e-5)
    unpruned = baselines.itemknn(x, top_k=x.shape[1], shrink=10)
    np.testing.assert_allclose(all_scores(unpruned), dense @ cosine(dense.T, 10), rtol=1e-4, atol=1e-6)


def test_itemknn_without_shrink_ranks_like_implicits_cosine_recommender(x):
    from implicit.nearest_neighbours import CosineRecommender

    reference = CosineRecommender(K=x.shape[1])
    reference.fit(x, show_progress=False)
    theirs = (x @ reference.similarity).toarray()
    ours = all_scores(baselines.itemknn(x, top_k=x.shape[1], shrink=0))
    unseen = x.toarray() == 0  # implicit keeps self-similarity, which only seen items collect
    np.testing.assert_allclose(ours[unseen], theirs[unseen], rtol=1e-4, atol=1e-5)


def test_userknn_is_cosine_with_shrink_over_users_top_k_per_user(x):
    dense = x.toarray().astype(np.float64)
    model = baselines.userknn(x, top_k=20, shrink=5)
    expected_similarity = keep_top_k_per_column(cosine(dense, 5), 20)  # column u: u's 20 nearest users
    assert_same_pruning(model.user_side.T, expected_similarity)
    np.testing.assert_allclose(all_scores(model), model.user_side.toarray() @ dense, rtol=1e-5)


@pytest.mark.parametrize("weighting", ["tfidf", "bm25"])
def test_weightings_change_the_neighbours(x, weighting):
    plain, reweighted = (all_scores(baselines.itemknn(x, 50, 0, w)) for w in ("none", weighting))
    assert not np.allclose(plain, reweighted)


def test_rp3beta_is_the_popularity_penalised_random_walk_top_k_per_source_item(x):
    dense = x.toarray().astype(np.float64)
    alpha, beta = 0.7, 0.3
    p_ui = (dense / np.maximum(dense.sum(1, keepdims=True), 1)) ** alpha
    p_iu = (dense.T / np.maximum(dense.sum(0)[:, None], 1)) ** alpha
    walk = p_iu @ p_ui / np.maximum(dense.sum(0), 1) ** beta
    np.fill_diagonal(walk, 0)
    model = baselines.rp3beta(x, alpha, beta, top_k=40)
    assert_same_pruning(model.item_side.T, keep_top_k_per_column(walk.T, 40))
    np.testing.assert_allclose(all_scores(model), dense @ model.item_side.toarray(), rtol=1e-5, atol=1e-9)


def test_ease_is_the_closed_form(x):
    dense = x.toarray().astype(np.float64)
    inverse = np.linalg.inv(dense.T @ dense + 250.0 * np.eye(dense.shape[1]))
    weights = -inverse / np.diag(inverse)
    np.fill_diagonal(weights, 0)
    np.testing.assert_allclose(all_scores(baselines.ease(x, 250.0, 2**30)), dense @ weights, rtol=2e-3, atol=2e-5)


def test_ease_refuses_before_allocating_when_over_the_budget(x):
    with pytest.raises(baselines.TooLargeError, match=r"EASE\^R on 1,682 items needs 0.0 GiB, over the budget"):
        baselines.ease(x, 100.0, memory_budget_bytes=1_000_000)


def test_ials_scores_are_its_factors_and_repeat_with_the_seed(x):
    first, again = (baselines.ials(x, factors=16, regularization=1e-3, alpha=5.0, iterations=5, seed=7, threads=1)
                    for _ in range(2))
    np.testing.assert_allclose(all_scores(first), first.user_side @ first.item_side, rtol=1e-6)
    np.testing.assert_array_equal(all_scores(first), all_scores(again))


@pytest.mark.parametrize("name", ["itemknn", "userknn", "ials", "ease with its floor"])
def test_pair_scores_are_the_block_scores(x, name):
    cold = sp.csr_matrix(sp.diags((np.arange(x.shape[0]) >= 3).astype(np.float32)) @ x)  # users 0-2: no training
    cold.eliminate_zeros()                                                                # rows, the floor scores them
    fitted = {"itemknn": lambda: baselines.itemknn(x, 30, 2), "userknn": lambda: baselines.userknn(x, 30, 2),
              "ials": lambda: baselines.ials(x, 8, 1e-3, 2.0, 3, 0, 1),
              "ease with its floor": lambda: baselines.with_floor(baselines.ease(cold, 100.0, 2**30), cold)}[name]()
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 120, 500), rng.integers(0, 1682, 500)
    np.testing.assert_allclose(fitted.score_pairs(users, items, batch_pairs=64),
                               all_scores(fitted)[users, items], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["itemknn", "ials"])
def test_a_user_without_training_interactions_gets_the_floors_ranking(x, name):
    cold = x.tolil()
    cold[3] = 0  # user 3 lost every training interaction
    cold = cold.tocsr()
    fitted = {"itemknn": lambda: baselines.itemknn(cold, 30, 2), "ials": lambda: baselines.ials(cold, 8, 1e-3, 2.0, 3, 0, 1)}
    model = baselines.with_floor(fitted[name](), cold)
    assert model.floor_users == 1
    scores = all_scores(model)
    np.testing.assert_allclose(scores[3], np.asarray(cold.sum(axis=0)).ravel(), atol=1e-5)
    np.testing.assert_allclose(scores[4], all_scores(fitted[name]())[4], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("alpha", [0.0, 4.0])
def test_ials_weighs_an_observed_item_one_plus_alpha_and_a_missing_one_one(alpha):
    """Hu et al.'s confidence 1 + α·x: each item's factors solve (Uᵀ C_i U + λI) v_i = Uᵀ C_i x_i (fitted items last)."""
    rng = np.random.default_rng(0)
    dense = (rng.random((60, 40)) < 0.15).astype(np.float32)
    model = baselines.ials(sp.csr_matrix(dense), factors=8, regularization=0.1, alpha=alpha, iterations=30, seed=0,
                           threads=1)
    users, items = model.user_side, model.item_side.T
    confidence = 1.0 + alpha * dense
    for i in range(dense.shape[1]):
        weighted = users.T * confidence[:, i]
        solved = np.linalg.solve(weighted @ users + 0.1 * np.eye(8), weighted @ dense[:, i])
        np.testing.assert_allclose(items[i], solved, atol=5e-3)


def test_tuning_announces_its_cost_and_stops_at_its_share_of_the_time_budget(caplog):
    import logging
    import time

    from convncf_kedro.baselines import tuning

    x = sp.random(60, 40, density=0.2, format="csr", random_state=np.random.default_rng(0), dtype=np.float32)
    x.data[:] = 1
    users = np.arange(60)
    items = np.random.default_rng(1).integers(0, 40, size=(60, 6))

    def slow_toppop(point):
        time.sleep(0.3)
        return baselines.toppop(x)

    space = {"top_k": {"low": 1, "high": 10}}
    with caplog.at_level(logging.INFO, logger="convncf_kedro.baselines.tuning"):
        model, _, table = tuning.tune("itemknn", x, users, items, space, 20, "ndcg@10", 0, slow_toppop,
                                      budget_seconds=1.0)
    assert 1 <= len(table) < 20 and model is not None  # the trials started within the budget, the best kept
    projected = [r.getMessage() for r in caplog.records if "trials projected" in r.getMessage()]
    assert len(projected) == 1 and re.fullmatch(r"itemknn: 20 trials projected at about ([6-9]|\d\d) s \(its share of "
                                                r"the time budget: 1 s\)", projected[0])
