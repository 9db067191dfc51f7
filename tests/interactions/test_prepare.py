"""Cleaning, id indexing, the leave-one-out split and negative sampling, on handwritten logs."""

import numpy as np
import pandas as pd
import pytest

from convncf_kedro.errors import ParameterError
from convncf_kedro.interactions.prepare import (
    clean_log,
    index_ids,
    positives_matrix,
    sample_negatives,
    sample_users,
    split_leave_one_out,
)


def log_of(rows, split="all"):
    """rows: (user, item, rating, timestamp)."""
    frame = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"]).astype({"rating": float, "timestamp": float})
    return frame.astype({"user": str, "item": str}).assign(split=split)


def test_duplicates_keep_the_latest_interaction():
    log = log_of([("a", "x", 1, 10), ("a", "x", 5, 30), ("a", "y", 3, 20)])
    cleaned, dropped = clean_log(log, rating_threshold=None, k_core=0)
    assert dropped["duplicate_pairs"] == 1
    assert cleaned.set_index("item").loc["x", "rating"] == 5


def test_rating_threshold_keeps_ratings_at_or_above_it():
    log = log_of([("a", "x", 1, 1), ("a", "y", 4, 2), ("a", "z", 5, 3)])
    cleaned, dropped = clean_log(log, rating_threshold=4, k_core=0)
    assert sorted(cleaned["item"]) == ["y", "z"]
    assert dropped["below_rating_threshold"] == 1


def test_rating_threshold_without_ratings_names_the_parameter():
    log = log_of([("a", "x", np.nan, 1)])
    with pytest.raises(ParameterError, match="ingestion.rating_threshold"):
        clean_log(log, rating_threshold=4, k_core=0)


def test_k_core_repeats_until_stable():
    # c-z is dropped (z seen once), which leaves c with one interaction: c goes too.
    rows = [("a", "x", 1, 1), ("a", "y", 1, 2), ("b", "x", 1, 3), ("b", "y", 1, 4), ("c", "x", 1, 5), ("c", "z", 1, 6)]
    cleaned, dropped = clean_log(log_of(rows), rating_threshold=None, k_core=2)
    assert sorted(cleaned["user"].unique()) == ["a", "b"]
    assert dropped["k_core"] == 2


def test_numeric_ids_map_in_numeric_order_and_strings_in_sorted_order():
    log = log_of([("10", "b", 1, 1), ("2", "a", 1, 2), ("0", "c", 1, 3)])
    cleaned, _ = clean_log(log, None, 0)
    indexed, _, user_map, item_map, _ = index_ids(cleaned, pd.DataFrame({"user": [], "item": []}, dtype=str))
    assert user_map["raw_id"].tolist() == ["0", "2", "10"]
    assert item_map["raw_id"].tolist() == ["a", "b", "c"]
    assert indexed.sort_values("timestamp")["user"].tolist() == [2, 1, 0]


def test_items_seen_only_as_given_negatives_get_an_index():
    log = log_of([("0", "1", 1, 1)])
    cleaned, _ = clean_log(log, None, 0)
    given = pd.DataFrame({"user": ["0", "9"], "item": ["5", "6"]})
    _, negatives, _, item_map, dropped = index_ids(cleaned, given)
    assert item_map["raw_id"].tolist() == ["1", "5", "6"]
    assert negatives.values.tolist() == [[0, 1]]  # user 9 does not exist
    assert dropped == 1


def test_numeric_ids_of_any_length_are_indexed_by_value():
    log = log_of([("12345678901234567890", "10", 1, 1), ("9", "9", 1, 2), ("100", "0010", 1, 3)])
    cleaned, _ = clean_log(log, None, 0)
    _, _, user_map, item_map, _ = index_ids(cleaned, pd.DataFrame({"user": [], "item": []}, dtype=str))
    assert user_map["raw_id"].tolist() == ["9", "100", "12345678901234567890"]
    assert item_map["raw_id"].tolist() == ["9", "0010", "10"]  # a delimited log's ids are strings: both kept


def prepared(rows, split="all"):
    cleaned, _ = clean_log(log_of(rows, split), None, 0)
    indexed, *_ = index_ids(cleaned, pd.DataFrame({"user": [], "item": []}, dtype=str))
    return indexed


def test_latest_is_test_and_second_latest_is_validation():
    log = prepared([("0", "0", 1, 5), ("0", "1", 1, 9), ("0", "2", 1, 1), ("0", "3", 1, 7)])
    train, valid, test, report = split_leave_one_out(log, 3, "random", 0, n_items=100)
    assert test["item"].tolist() == [1]
    assert valid["item"].tolist() == [3]
    assert sorted(train["item"]) == [0, 2]
    assert report["users_train_only"] == 0


def test_ties_in_time_are_broken_by_file_order():
    rows = [("0", "0", 1, 1), ("0", "2", 1, 5), ("0", "1", 1, 5)]  # items 2 and 1 share a timestamp
    for _ in range(2):
        _, valid, test, _ = split_leave_one_out(prepared(rows), 3, "random", 0, n_items=100)
        assert (valid["item"].tolist(), test["item"].tolist()) == ([2], [1])


def test_users_with_too_few_interactions_stay_in_train_and_are_counted():
    log = prepared([("0", "0", 1, 1), ("0", "1", 1, 2), ("0", "2", 1, 3), ("1", "0", 1, 1), ("1", "1", 1, 2)])
    train, valid, test, report = split_leave_one_out(log, 3, "random", 0, n_items=100)
    assert test["user"].tolist() == [0]
    assert train[train["user"] == 1]["item"].tolist() == [0, 1]
    assert report["users_train_only"] == 1


def test_users_with_every_item_stay_in_train_and_are_counted():
    """Nothing is left to rank such a user's held-out item against, so they are not evaluated."""
    rows = [("0", str(i), 1, i) for i in range(4)] + [("1", "0", 1, 1), ("1", "1", 1, 2), ("1", "2", 1, 3)]
    train, valid, test, report = split_leave_one_out(prepared(rows), 3, "random", 0, n_items=4)
    assert test["user"].tolist() == valid["user"].tolist() == [1]
    assert sorted(train[train["user"] == 0]["item"]) == [0, 1, 2, 3]
    assert report == {"users_train_only": 1, "users_with_every_item": 1, "users_validated": 1}


def test_validation_users_samples_who_is_validated_and_the_others_item_trains():
    """On a large dataset each validation check scores a seeded sample of users; nothing is dropped."""
    rows = [(str(u), str(i), 1, i) for u in range(50) for i in range(5)]
    everyone = split_leave_one_out(prepared(rows), 3, "random", 0, n_items=100)
    train, valid, test, report = split_leave_one_out(prepared(rows), 3, "random", 0, n_items=100, validation_users=10)
    again = split_leave_one_out(prepared(rows), 3, "random", 0, n_items=100, validation_users=10)[1]
    assert valid["user"].nunique() == report["users_validated"] == 10
    assert valid.equals(again)
    assert test.equals(everyone[2])
    assert len(train) + len(valid) == len(everyone[0]) + len(everyone[1])
    unvalidated = everyone[1][~everyone[1]["user"].isin(valid["user"])]
    assert unvalidated.merge(train, on=["user", "item"]).shape[0] == len(unvalidated) == 40


def test_sample_users_is_seeded_keeps_each_users_rows_and_every_item():
    rows = [(str(u), str(i), 1, i) for u in range(50) for i in range(u % 7 + 1)]
    log = prepared(rows)
    user_map = pd.DataFrame({"index": range(50), "raw_id": [str(u) for u in range(50)]})
    negatives = pd.DataFrame({"user": [3, 40], "item": [9, 9]})
    sampled, kept_negatives, users = sample_users(log, negatives, user_map, 10, seed=1)
    assert sample_users(log, negatives, user_map, 10, seed=1)[2].equals(users)
    assert not sample_users(log, negatives, user_map, 10, seed=2)[2].equals(users)
    assert users["index"].tolist() == list(range(10)) and users["raw_id"].astype(int).is_monotonic_increasing
    original = users["raw_id"].astype(int).to_numpy()
    for new, old in enumerate(original):
        assert sorted(sampled.loc[sampled["user"] == new, "item"]) == sorted(log.loc[log["user"] == old, "item"])
    assert set(original[kept_negatives["user"]]) <= {3, 40}
    assert sample_users(log, negatives, user_map, 50, seed=1)[0] is log  # not more than there are: unchanged


def test_no_user_long_enough_to_split_names_the_parameter():
    log = prepared([("0", "0", 1, 1), ("0", "1", 1, 2)])
    with pytest.raises(ParameterError, match="ingestion.min_interactions.*needs"):
        split_leave_one_out(log, 3, "random", 0, n_items=100)


def test_pre_split_logs_keep_test_and_carve_validation_from_train():
    train_rows = log_of([("0", "0", 1, np.nan), ("0", "1", 1, np.nan), ("0", "2", 1, np.nan)], "train")
    test_rows = log_of([("0", "3", 1, np.nan)], "test")
    cleaned, _ = clean_log(pd.concat([train_rows, test_rows], ignore_index=True), None, 0)
    indexed, *_ = index_ids(cleaned, pd.DataFrame({"user": [], "item": []}, dtype=str))
    train, valid, test, _ = split_leave_one_out(indexed, 3, "last", 0, n_items=100)
    assert test["item"].tolist() == [3]
    assert valid["item"].tolist() == [2]  # last in file order
    assert train["item"].tolist() == [0, 1]


def test_random_holdout_without_timestamps_is_seeded():
    rows = [("0", str(i), 1, np.nan) for i in range(20)]
    picks = [split_leave_one_out(prepared(rows), 3, "random", seed, n_items=100)[2]["item"].item() for seed in (1, 1, 2, 3, 4)]
    assert picks[0] == picks[1]
    assert len(set(picks)) > 1


def test_negatives_are_distinct_non_positives_and_seeded():
    positives = positives_matrix([pd.DataFrame({"user": [0, 0, 1], "item": [0, 1, 2]})], n_users=2, n_items=12)
    first = sample_negatives(np.array([0, 1]), positives, 10, np.random.default_rng(7))
    again = sample_negatives(np.array([0, 1]), positives, 10, np.random.default_rng(7))
    pd.testing.assert_frame_equal(first, again)
    assert sorted(first[first["user"] == 0]["item"]) == list(range(2, 12))  # every non-positive, once
    assert first.groupby("user").size().tolist() == [10, 10]
    assert not first.query("user == 1 and item == 2").size


def test_asking_more_negatives_than_non_positives_names_the_parameter():
    positives = positives_matrix([pd.DataFrame({"user": [0, 0], "item": [0, 1]})], n_users=1, n_items=5)
    with pytest.raises(ParameterError, match="ingestion.n_negatives.*has only 3"):
        sample_negatives(np.array([0]), positives, 4, np.random.default_rng(0))
