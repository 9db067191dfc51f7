"""BPR triples: every training pair once per epoch, negatives never a positive, seeded."""

import numpy as np
import pandas as pd
import pytest

from convncf_kedro.interactions.prepare import positives_matrix
from convncf_kedro.training.sampler import sample_triples


@pytest.fixture(scope="module")
def ml100k_matrix(shared_datasets):
    raw = pd.read_csv(shared_datasets / "ml-100k/u.data", sep="\t", names=["user", "item", "rating", "ts"])
    return positives_matrix([pd.DataFrame({"user": raw["user"] - 1, "item": raw["item"] - 1})], 943, 1682)


def test_every_training_pair_appears_once_with_a_true_negative(ml100k_matrix):
    users, positives, negatives = sample_triples(ml100k_matrix, np.random.default_rng(0))
    assert len(users) == ml100k_matrix.nnz
    seen = set(zip(users.tolist(), positives.tolist(), strict=True))
    assert len(seen) == ml100k_matrix.nnz
    assert np.all(np.asarray(ml100k_matrix[users, positives]).ravel() == 1)
    assert np.all(np.asarray(ml100k_matrix[users, negatives]).ravel() == 0)


def test_same_seed_same_triples_and_epochs_differ(ml100k_matrix):
    first = sample_triples(ml100k_matrix, np.random.default_rng([7, 1]))
    again = sample_triples(ml100k_matrix, np.random.default_rng([7, 1]))
    other_epoch = sample_triples(ml100k_matrix, np.random.default_rng([7, 2]))
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[2], other_epoch[2])


def test_negatives_are_uniform_over_non_positives(ml100k_matrix):
    negatives = np.concatenate([sample_triples(ml100k_matrix, np.random.default_rng(s))[2] for s in range(3)])
    counts = np.bincount(negatives, minlength=1682)
    popularity = np.asarray(ml100k_matrix.sum(axis=0)).ravel()
    # an item is drawn in proportion to the users who never had it
    expected = len(negatives) * (943 - popularity) / (943 * 1682 - ml100k_matrix.nnz)
    rare = popularity < 50
    assert np.abs(counts[rare] - expected[rare]).mean() < 0.1 * expected[rare].mean()
    assert counts[popularity.argmax()] < 0.5 * counts.mean()


def test_a_user_with_every_item_gives_no_triple_instead_of_hanging():
    train = pd.DataFrame({"user": [0, 0, 0, 1, 2], "item": [0, 1, 2, 0, 2]})  # user 0 has all 3 items
    users, positives, negatives = sample_triples(positives_matrix([train], 3, 3), np.random.default_rng(0))
    assert sorted(users.tolist()) == [1, 2]
    assert all(n != p for n, p in zip(negatives, positives, strict=True))
