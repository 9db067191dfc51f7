"""The comparison table pairs the two models user by user, and refuses unpaired inputs."""

import numpy as np
import pandas as pd
import pytest

from convncf_kedro.pipelines.evaluation.nodes import metrics_table, write_report

PARAMS = {"ks": [10], "protocols": ["sampled"], "chunk_users": 1, "chunk_items": 1, "batch_pairs": 1}


def per_user(users, ndcg):
    return pd.DataFrame({"protocol": "sampled", "user": users, "ndcg@10": ndcg})


def test_the_interval_is_paired_over_the_same_users():
    rng = np.random.default_rng(0)
    users = np.arange(500)
    mf = rng.uniform(0, 1, 500)
    convncf = mf + 0.01  # the same users, each 0.01 better: tiny but consistent, so a gain
    table = metrics_table({"sampled": {"ndcg@10": mf.mean()}}, {"sampled": {"ndcg@10": convncf.mean()}},
                          per_user(users, mf), per_user(users, convncf), PARAMS)
    row = table.iloc[0]
    assert row["ConvNCF - MF"] == pytest.approx(0.01) and row["verdict"] == "gain"
    assert row["ci_low"] == pytest.approx(0.01) and row["ci_high"] == pytest.approx(0.01)


def test_models_evaluated_on_different_users_are_not_compared():
    with pytest.raises(ValueError, match="evaluated on different users"):
        metrics_table({"sampled": {"ndcg@10": 0.5}}, {"sampled": {"ndcg@10": 0.5}},
                      per_user([1, 2], [0.5, 0.5]), per_user([2, 1], [0.5, 0.5]), PARAMS)


@pytest.mark.parametrize("convncf_epoch", [0, 3])
def test_the_report_says_when_convncf_kept_its_start(convncf_epoch):
    table = metrics_table({"sampled": {"ndcg@10": 0.5}}, {"sampled": {"ndcg@10": 0.5}},
                          per_user([1, 2], [0.5, 0.5]), per_user([1, 2], [0.5, 0.5]), PARAMS).assign(k=10)
    mf = {"selection_metric": "ndcg@10", "valid": {"ndcg@10": 0.41}, "best_epoch": 122, "valid_precision": "fp32",
          "precision": "fp32"}
    convncf = {**mf, "best_epoch": convncf_epoch, "recipe": "mf_identity"}
    statistics = {"users": 2, "items": 3, "interactions": {"train": 4}, "density": 0.5}
    report = write_report(table, mf, convncf, statistics, pd.DataFrame(), "**Recommendation:** …")
    assert ("no training epoch improved on it on validation" in report) == (convncf_epoch == 0)


def test_users_with_no_training_interaction_are_scored_by_popularity_for_every_model():
    import scipy.sparse as sp

    from convncf_kedro.config.params import EvaluationParams, parse_params
    from convncf_kedro.evaluation.protocols import popularity_floor

    train = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]], dtype=np.float32))  # user 2: none
    untrained = lambda users, items: np.full(len(users), np.nan, dtype=np.float32)  # noqa: E731 (what it must never use)
    p = parse_params(EvaluationParams, {**PARAMS, "ks": [2]}, "evaluation")
    pairs, full, cold = popularity_floor(untrained, lambda users, seen, relevant: np.zeros((len(users), 2)), train, p)
    assert cold.tolist() == [2]
    assert pairs(np.array([2, 2]), np.array([1, 3])).tolist() == [2.0, 0.0]  # item 1 is the most popular
    top = full(np.array([0, 2]), train, sp.csr_matrix((3, 4)))
    assert top[0].tolist() == [0, 0] and top[1].tolist() == [1, 0]  # user 0 by the model, user 2 by popularity
