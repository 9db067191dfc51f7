"""The LightGCN list format flows through training into full ranking (Gowalla, a few users, a tiny model)."""

import pytest

pytestmark = pytest.mark.e2e


def test_gowalla_full_ranking_for_a_subset_of_users(kedro_project):
    project = kedro_project("gowalla")
    tiny = {
        "pretrain": {"embedding_size": 8, "batch_size": 8192, "training": {"epochs": 1, "eval_batch_pairs": 65536}},
        "convncf": {"channels": 4, "recipes": {"mf_identity": {"batch_size": 8192}},
                    "training": {"epochs": 1, "eval_batch_pairs": 65536,
                             "chunk_triples": None}},  # chunks fit d=64, C=32 in cache; a tiny tower wants whole batches
        "evaluation": {"max_users": 40, "chunk_users": 8, "chunk_items": 8192, "batch_pairs": 65536},
        "baselines": {"models": ["toppop"]},  # the floor, at Gowalla's size (EASE^R's 41k² would exceed the budget)
    }
    project.run("train", params=tiny)
    metrics = project.load("test_metrics_convncf")
    assert metrics["full"]["users"] == 40
    assert metrics["sampled"]["rows"] > 40  # Gowalla users hold several test items, one row each
    sampled = project.load("per_user_metrics_convncf").query("protocol == 'sampled'")
    assert metrics["sampled"]["users"] == 40 and len(sampled) == 40 and sampled["user"].is_unique  # the user is the unit
    assert sampled["ndcg@10"].mean() == pytest.approx(metrics["sampled"]["ndcg@10"])
    full = metrics["full"]
    for key in ("hr@20", "ndcg@20", "recall@20", "precision@20", "mrr@20"):
        assert 0 <= full[key] <= 1
    # several test items per user: a hit list's share of them never exceeds "any hit", nor does precision
    assert full["recall@20"] <= full["hr@20"] and full["precision@20"] <= full["hr@20"]
    assert full["hr@5"] <= full["hr@10"] <= full["hr@20"]
    toppop = project.load("baseline_test_metrics")["toppop"]()
    assert toppop["full"]["users"] == 40 and 0 <= toppop["full"]["recall@20"] <= 1
