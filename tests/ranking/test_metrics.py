"""Metric definitions against hand-computed cases."""

import math

import numpy as np
import pandas as pd
import pytest

from convncf_kedro.ranking.metrics import (
    full_ranking_metrics,
    paired_difference,
    rank_among_negatives,
    sampled_metrics,
)
from convncf_kedro.ranking.sampled import candidate_matrix, evaluate_sampled


def test_ties_count_against_the_held_out_item():
    positive = np.array([0.5, 0.5, 0.9])
    negatives = np.array([[0.1, 0.5, 0.2], [0.6, 0.7, 0.8], [0.1, 0.2, 0.3]])
    assert rank_among_negatives(positive, negatives).tolist() == [1, 3, 0]


def test_a_constant_model_scores_zero_not_a_lucky_hit():
    ranks = rank_among_negatives(np.zeros(4), np.zeros((4, 99)))
    assert sampled_metrics(ranks, 99, [10])["hr@10"] == 0.0


def test_sampled_metrics_by_hand():
    ranks = np.array([0, 2, 12])  # first place, third place, outside the top 10
    m = sampled_metrics(ranks, 99, [1, 10])
    assert m["hr@1"] == pytest.approx(1 / 3)
    assert m["hr@10"] == pytest.approx(2 / 3)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / math.log2(4)) / 3)
    assert m["mrr@10"] == pytest.approx((1 + 1 / 3) / 3)
    assert m["recall@10"] == m["hr@10"]
    assert m["precision@10"] == pytest.approx(2 / 3 / 10)
    assert m["auc"] == pytest.approx(((1 - 0 / 99) + (1 - 2 / 99) + (1 - 12 / 99)) / 3)


def test_k_larger_than_the_candidate_list_counts_every_item():
    m = sampled_metrics(np.array([4]), 4, [10])  # last of 5 candidates
    assert m["hr@10"] == 1.0
    assert m["ndcg@10"] == pytest.approx(1 / math.log2(6))


def test_full_ranking_metrics_with_several_test_items():
    # user 0: test items at ranks 1 and 3 of 4; user 1: one test item, ranked first
    hits = np.array([[False, True, False, True], [True, False, False, False]])
    m = full_ranking_metrics(hits, np.array([2, 1]), [2, 4])
    idcg_two = 1 + 1 / math.log2(3)
    assert m["hr@2"] == 1.0
    assert m["recall@2"] == pytest.approx((1 / 2 + 1) / 2)
    assert m["precision@2"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert m["ndcg@2"] == pytest.approx(((1 / math.log2(3)) / idcg_two + 1) / 2)
    assert m["ndcg@4"] == pytest.approx(((1 / math.log2(3) + 1 / math.log2(5)) / idcg_two + 1) / 2)
    assert m["mrr@4"] == pytest.approx((1 / 2 + 1) / 2)
    assert m["recall@4"] == 1.0


def test_full_ranking_with_one_test_item_matches_sampled_definitions():
    ranks = np.array([0, 3, 7])
    hits = np.arange(10)[None, :] == ranks[:, None]
    full = full_ranking_metrics(hits, np.ones(3), [5, 10])
    sampled = sampled_metrics(ranks, 99, [5, 10])
    for key, value in full.items():
        assert value == pytest.approx(sampled[key]), key


def test_full_ranking_refuses_k_beyond_the_kept_list():
    with pytest.raises(ValueError, match="K=20 is larger than the 10"):
        full_ranking_metrics(np.zeros((1, 10), dtype=bool), np.ones(1), [20])


def test_users_with_fewer_given_negatives_are_ranked_among_theirs_only():
    held_out = pd.DataFrame({"user": [0, 1], "item": [10, 20]})
    negatives = pd.DataFrame({"user": [0, 0, 0, 1, 1], "item": [11, 12, 13, 21, 22]})  # user 1 had one dropped
    users, items = candidate_matrix(held_out, negatives)
    assert items.tolist() == [[10, 11, 12, 13], [20, 21, 22, -1]]
    scores = {10: 0.5, 11: 0.9, 12: 0.1, 13: 0.2, 20: 0.5, 21: 0.1, 22: 0.2}
    scored = []
    metrics = evaluate_sampled(lambda u, i: scored.append(i) or np.array([scores[x] for x in i]), users, items, [1])
    assert -1 not in np.concatenate(scored)  # padding is never scored
    assert metrics["hr@1"] == 0.5  # user 0 ranks 2nd, user 1 first
    assert metrics["auc"] == pytest.approx(((1 - 1 / 3) + 1.0) / 2)  # per-user negative counts: 3 and 2


def test_paired_bootstrap_recovers_a_known_difference_and_calls_it_only_when_the_interval_excludes_zero():
    rng = np.random.default_rng(0)
    baseline = rng.uniform(0, 1, 4000)
    shifted = paired_difference(baseline + 0.02 + rng.normal(0, 0.05, 4000), baseline, 0.95, 2000, 1)
    # the mean of the added noise is ~N(0.02, 0.05/√4000 ≈ 0.0008): the interval is about ±0.0016 around 0.02
    assert shifted["difference"] == pytest.approx(0.02, abs=0.003)
    assert shifted["ci_low"] < shifted["difference"] < shifted["ci_high"]
    assert shifted["ci_high"] - shifted["ci_low"] == pytest.approx(2 * 1.96 * 0.05 / math.sqrt(4000), rel=0.15)
    assert shifted["verdict"] == "gain"
    assert paired_difference(baseline - 0.02, baseline, 0.95, 2000, 1)["verdict"] == "loss"
    noise = paired_difference(baseline + rng.normal(0, 0.05, 4000), baseline, 0.95, 2000, 1)
    assert noise["ci_low"] < 0 < noise["ci_high"] and noise["verdict"] == "no significant difference"
    assert paired_difference(baseline, baseline, 0.95, 2000, 1)["verdict"] == "no significant difference"


def test_ties_broken_at_random_give_the_expected_metric_over_the_tied_places():
    from convncf_kedro.ranking.metrics import sampled_metrics_per_user, sampled_metrics_random_ties

    ranks, ties = np.array([3, 0, 9]), np.array([3, 0, 0])  # the first row: 3 negatives tie, places 0..3 equally likely
    expected = sampled_metrics_random_ties(ranks, ties, 99, [1, 10])
    assert expected["hr@1"].tolist() == [0.25, 1.0, 0.0]
    places = sampled_metrics_per_user(np.arange(4), 99, [10])["ndcg@10"]
    assert expected["ndcg@10"][0] == pytest.approx(places.mean())
    assert expected["ndcg@10"][2] == sampled_metrics_per_user(np.array([9]), 99, [10])["ndcg@10"][0]
