"""Which model to deploy: every model paired with the best baseline on validation, and the sentence that says so."""

import numpy as np
import pandas as pd
import pytest

from convncf_kedro.evaluation.comparison import model_table, recommendation

USERS = np.arange(400)


def results(valid_ndcg: float, test_ndcg: np.ndarray) -> tuple[dict, pd.DataFrame]:
    metrics = {"valid": {"ndcg@10": valid_ndcg}, "sampled": {"ndcg@10": float(test_ndcg.mean()), "tied_held_out": 3}}
    return metrics, pd.DataFrame({"protocol": "sampled", "user": USERS, "ndcg@10": test_ndcg, "hr@10": test_ndcg > 0.5})


def models(ease_lead: float) -> tuple[dict, dict]:
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 1, len(USERS))
    made = {"MF": results(0.41, base), "ConvNCF": results(0.40, base - 0.005),
            "itemknn": results(0.39, base - 0.02), "ease": results(0.43, base + ease_lead)}
    return {n: m for n, (m, _) in made.items()}, {n: f for n, (_, f) in made.items()}


def test_every_model_is_paired_with_the_best_baseline_on_validation():
    metrics, per_user = models(ease_lead=0.03)
    table = model_table(metrics, per_user, ["itemknn", "ease"], "ndcg@10", [10], 0.95, 500, 0)
    assert table.attrs["best_baseline"] == "ease"  # chosen on validation: 0.43 > 0.39
    ndcg = table[table["metric"] == "ndcg@10"].set_index("model")
    assert np.isnan(ndcg.loc["ease", "vs_best_baseline"])
    assert ndcg.loc["MF", "vs_best_baseline"] == pytest.approx(-0.03) and ndcg.loc["MF", "verdict"] == "loss"
    assert ndcg.loc["ConvNCF", "vs_best_baseline"] == pytest.approx(-0.035)
    assert (ndcg["ci_low"] <= ndcg["mean"]).all() and (ndcg["mean"] <= ndcg["ci_high"]).all()
    assert ndcg.loc["itemknn", "tied_held_out"] == 3


@pytest.mark.parametrize(("lead", "says"), [(0.03, "a significant advantage: deploy it"),
                                             (0.0, "not a significant difference"),
                                             (-0.03, "significantly behind on test")])
def test_the_recommendation_names_the_best_on_validation_and_whether_its_lead_holds_on_test(lead, says):
    metrics, per_user = models(ease_lead=lead)
    sentence = recommendation(metrics, per_user, "ndcg@10", "sampled", 0.95, 500, 0)
    assert sentence.startswith("**Recommendation:** ease ranked best on validation ndcg@10 (0.4300, runner-up MF 0.4100)")
    ahead = f"trails MF by {-lead:.4f}" if lead < 0 else f"leads MF by {lead:.4f}"
    assert says in sentence and ahead in sentence and f"(difference {lead:+.4f}, interval" in sentence


def test_the_recommendation_says_when_sampled_and_full_ranking_order_the_top_models_differently():
    metrics, per_user = models(ease_lead=0.03)
    for name, frame in per_user.items():  # full ranking: MF ahead of ease (sampled: ease ahead of MF)
        shift = {"MF": 0.02, "ease": -0.05}.get(name, 0.0)
        full = frame.assign(protocol="full", **{"ndcg@10": frame["ndcg@10"] + shift})
        per_user[name] = pd.concat([frame, full], ignore_index=True)
        metrics[name]["full"] = {"ndcg@10": float(full["ndcg@10"].mean())}
    sentence = recommendation(metrics, per_user, "ndcg@10", "full", 0.95, 500, 0)
    assert "on test (full ndcg@10) it trails MF" in sentence
    assert ("On test, full ranking puts MF ahead of ConvNCF but sampled ranking puts ease ahead of MF: the advice "
            "follows full ranking.") in sentence


def test_the_recommendation_says_whether_its_order_depends_on_the_tie_rule():
    metrics, per_user = models(ease_lead=0.03)
    metrics["ease"]["sampled"] |= {"rows": 400, "tied_held_out": 200, "random_ties": {"ndcg@10": 0.40}}
    metrics["MF"]["sampled"] |= {"rows": 400, "tied_held_out": 0, "random_ties": {"ndcg@10": metrics["MF"]["sampled"]["ndcg@10"]}}
    sentence = recommendation(metrics, per_user, "ndcg@10", "sampled", 0.95, 500, 0)
    assert "Ties decided many test rows (ease 50%, MF 0%)" in sentence
    assert sentence.rstrip().endswith("the order depends on the tie rule.") == (0.40 < metrics["MF"]["sampled"]["ndcg@10"])


def test_the_plot_shows_every_model_with_the_best_on_validation_marked():
    from convncf_kedro.evaluation.reporting import plot_models

    metrics, per_user = models(ease_lead=0.03)
    table = model_table(metrics, per_user, ["itemknn", "ease"], "ndcg@10", [10], 0.95, 500, 0)
    (ax,) = plot_models(table).axes
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["ease (best on validation)", "MF", "ConvNCF", "itemknn"]  # best test mean first


def test_a_baseline_left_out_over_its_memory_budget_is_named_not_lost():
    from convncf_kedro.pipelines.evaluation.nodes import compare_models

    metrics, per_user = models(ease_lead=0.03)
    reason = "EASE^R on 50,000 items needs 9.31 GiB, over baselines.memory_budget_gib=8: left out"
    baseline_metrics = {"itemknn": lambda: metrics["itemknn"], "ease": lambda: {"model": "ease", "left_out": reason}}
    evaluation = {"ks": [10], "protocols": ["sampled"], "chunk_users": 1, "chunk_items": 1, "batch_pairs": 1,
                  "bootstrap_resamples": 500, "seed": 0}
    baselines = {"models": ["itemknn", "ease"], "trials": 1, "memory_budget_gib": 8, "cooccurrence_budget": 1e9,
                 "search": {}}
    table, sentence = compare_models(metrics["MF"], metrics["ConvNCF"], per_user["MF"], per_user["ConvNCF"],
                                     baseline_metrics, {"itemknn": lambda: per_user["itemknn"]}, evaluation, baselines)
    assert set(table["model"]) == {"MF", "ConvNCF", "itemknn"}
    assert sentence.startswith("**Recommendation:** MF") and sentence.endswith(f"Not compared: {reason}.")
