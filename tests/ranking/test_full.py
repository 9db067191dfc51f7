"""Chunked full ranking equals a dense brute-force ranking; seen items never appear."""

import numpy as np
import pandas as pd
import pytest

from convncf_kedro.interactions.prepare import positives_matrix
from convncf_kedro.ranking.full import hits_against, top_k_unseen
from convncf_kedro.ranking.metrics import NonFiniteScoresError, full_ranking_metrics
from convncf_kedro.ranking.sampled import candidate_matrix, evaluate_sampled


@pytest.fixture(scope="module")
def real_slice(shared_datasets):
    """The first 60 users × all 1,682 items of ml-100k, with random but fixed item scores."""
    raw = pd.read_csv(shared_datasets / "ml-100k/u.data", sep="\t", names=["user", "item", "rating", "ts"])
    raw = raw[raw["user"] <= 60]
    seen = positives_matrix([pd.DataFrame({"user": raw["user"] - 1, "item": raw["item"] - 1})], 60, 1682)
    scores = np.random.default_rng(0).standard_normal((60, 1682)).astype(np.float32)
    scores[:, 100:110] = 5.0  # a block of ties, to check the tie rule too
    return seen, scores


def dense_top_k(scores, seen, k):
    masked = np.where(seen.toarray() > 0, -np.inf, scores)
    items = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    order = np.lexsort((items, -masked), axis=1)[:, :k]
    return order, np.take_along_axis(masked, order, axis=1)


@pytest.mark.parametrize("chunk_users, chunk_items", [(7, 100), (60, 1682), (1, 37)])
def test_chunked_top_k_equals_dense_ranking(real_slice, chunk_users, chunk_items):
    seen, scores = real_slice
    users = np.arange(60)
    items, top = top_k_unseen(lambda u, i: scores[np.ix_(u, i)], users, seen, 20, chunk_users, chunk_items)
    expected_items, expected_scores = dense_top_k(scores, seen, 20)
    np.testing.assert_array_equal(items, expected_items)
    np.testing.assert_array_equal(top, expected_scores)


def test_seen_items_are_never_ranked(real_slice):
    seen, scores = real_slice
    boosted = scores + 100 * seen.toarray()  # seen items score highest of all
    items, _ = top_k_unseen(lambda u, i: boosted[np.ix_(u, i)], np.arange(60), seen, 50, 16, 256)
    assert not hits_against(items, np.arange(60), seen).any()


def test_users_with_fewer_unseen_items_than_k_get_empty_places():
    seen = positives_matrix([pd.DataFrame({"user": [0, 0, 0], "item": [0, 1, 2]})], 1, 5)
    items, scores = top_k_unseen(lambda u, i: np.ones((len(u), len(i))), np.array([0]), seen, 4, 1, 2)
    assert items.tolist() == [[3, 4, -1, -1]]
    assert np.isinf(scores[0, 2:]).all()


def test_held_out_items_lose_ties_in_full_ranking_as_in_the_sampled_protocol(real_slice):
    """A constant model: every item ties. Both protocols must give it 0, not a hit for low item indices."""
    seen, _ = real_slice
    users = np.arange(60)
    held_out = pd.DataFrame({"user": users, "item": np.full(60, 0)})  # item 0: the lowest index, first on ties
    held_out = held_out[seen[:, 0].toarray().ravel() == 0]
    relevant = positives_matrix([held_out], 60, 1682)
    constant = lambda u, i: np.zeros((len(u), len(i)), dtype=np.float32)  # noqa: E731
    top, _ = top_k_unseen(constant, held_out["user"].to_numpy(), seen, 10, 16, 512, ties_last=relevant)
    full = full_ranking_metrics(hits_against(top, held_out["user"].to_numpy(), relevant), np.ones(len(top)), [10])
    negatives = pd.DataFrame({"user": np.repeat(held_out["user"], 99), "item": np.tile(np.arange(1, 100), len(held_out))})
    rows, items = candidate_matrix(held_out, negatives)
    sampled = evaluate_sampled(lambda u, i: np.zeros(len(u), dtype=np.float32), rows, items, [10])
    assert full["hr@10"] == sampled["hr@10"] == 0.0 and full["ndcg@10"] == sampled["ndcg@10"] == 0.0
    untied, _ = top_k_unseen(constant, held_out["user"].to_numpy(), seen, 10, 16, 512)  # serving: lower index first
    assert (untied[:, 0] == 0).all()


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_scores_stop_both_protocols_naming_the_model(real_slice, bad):
    seen, scores = real_slice
    broken = scores.copy()
    broken[3, 700] = bad
    with pytest.raises(NonFiniteScoresError, match="MF \\(epoch 7\\) full ranking: 1 of"):
        top_k_unseen(lambda u, i: broken[np.ix_(u, i)], np.arange(60), seen, 10, 16, 512, label="MF (epoch 7) full ranking")
    nan_model = lambda u, i: np.full(len(u), bad, dtype=np.float32)  # noqa: E731
    with pytest.raises(NonFiniteScoresError, match="ConvNCF at epoch 3"):
        evaluate_sampled(nan_model, np.arange(2), np.arange(20).reshape(2, 10), [5], label="ConvNCF at epoch 3")


def test_a_shortlist_longer_than_the_catalog_is_every_item_and_said_once(caplog):
    from convncf_kedro.ranking.full import clamp_shortlist

    with caplog.at_level("INFO"):
        assert clamp_shortlist(5000, 1682) == 1682
    assert [r.getMessage() for r in caplog.records] == [
        "shortlist of 5000 is more than the 1682 items: every item is a candidate"]
    assert clamp_shortlist(50, 1682) == 50 and clamp_shortlist(None, 1682) is None
