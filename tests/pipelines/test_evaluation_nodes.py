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
