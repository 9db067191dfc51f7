"""The study: variants × seeds from the same MF, paired over the same users, recorded in MLflow, resumable.

The end-to-end part runs on MovieLens 100K's first 30 users at the shipped sizes (d = 64, C = 32, fp32),
two seeds and one extra epoch per variant.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from kedro_project import slice_project
from scipy import stats

from convncf_kedro.config.params import BaselinesParams, EvaluationParams, StudyParams
from convncf_kedro.evaluation.comparison import compare_variants
from convncf_kedro.evaluation.reporting import plot_study
from convncf_kedro.ranking.metrics import mean_interval
from convncf_kedro.training import loop

MEMBERS = {"seeds": [7, 8], "recipes": ["authors", "residual", "mf_identity"]}  # conf/local/study.yml
STUDY = {"extra_epochs": 1}
NO_BASELINES = (BaselinesParams(models=[], trials=1, memory_budget_gib=1, cooccurrence_budget=1e9, search={}), {}, {})
EVALUATION = EvaluationParams(ks=[10], protocols=["sampled"], chunk_users=1, chunk_items=1, batch_pairs=1,
                              bootstrap_resamples=2000, confidence=0.95, seed=0)
STUDY_PARAMS = StudyParams.model_validate({"extra_epochs": 1, "protocols": ["sampled"], "metrics": ["ndcg@10"],
                                           "mf_longer": {"batch_size": 8, "phases": [{"lr_embedding": 0.001}]}})


def member_results(users: np.ndarray, ndcg: np.ndarray, candidates: str = "same") -> tuple[dict, pd.DataFrame]:
    metrics = {"best_epoch": 1, "valid": {"ndcg@10": 0.5}, "selection_metric": "ndcg@10",
               "sampled": {"ndcg@10": float(ndcg.mean()), "candidates": candidates}}
    return metrics, pd.DataFrame({"protocol": "sampled", "user": users, "ndcg@10": ndcg})


def study_of(differences_by_seed: dict[int, float], users: int = 2000, noise: float = 0.2, seed: int = 0):
    """Members of a study where `authors` − MF is the given difference on each seed, plus per-user noise."""
    rng = np.random.default_rng(seed)
    ids = np.arange(users)
    results = {}
    for member_seed, difference in differences_by_seed.items():
        mf = rng.uniform(0, 1, users)
        authors = mf + difference + rng.normal(0, noise, users)
        for variant, values in (("mf", mf), ("mf_longer", mf), ("authors", authors)):
            results[(member_seed, variant)] = member_results(ids, values)
    return results


def test_a_difference_that_varies_between_seeds_is_judged_with_the_seeds_spread():
    results = study_of({1: 0.05, 2: 0.10})
    table, member_rows, _ = compare_variants(results, STUDY_PARAMS, EVALUATION, *NO_BASELINES)
    authors = table.set_index("variant").loc["authors"]
    per_user = np.stack([results[(s, "authors")][1]["ndcg@10"] - results[(s, "mf")][1]["ndcg@10"] for s in (1, 2)], 1)
    assert authors["vs_mf"] == pytest.approx(per_user.mean()) and authors["vs_mf"] == pytest.approx(0.075, abs=0.01)
    by_seed = [float(d) for d in authors["vs_mf_by_seed"].split()]
    assert by_seed == pytest.approx([0.05, 0.10], abs=0.01)
    # users' part (each user's mean over seeds) and seeds' part (each seed's mean), t with one degree of freedom
    spread = np.sqrt(per_user.mean(axis=1).var(ddof=1) / 2000 + np.var(by_seed, ddof=1) / 2)
    assert authors["vs_mf_high"] - authors["vs_mf_low"] == pytest.approx(2 * stats.t.ppf(0.975, 1) * spread, rel=0.02)
    assert authors["vs_mf_verdict"] == "no significant difference"  # two seeds 0.05 apart cannot pin it down
    assert authors["seed_sd"] == pytest.approx(np.std([results[(s, "authors")][0]["sampled"]["ndcg@10"]
                                                      for s in (1, 2)], ddof=1))
    control = table.set_index("variant").loc["mf_longer"]
    assert control["vs_mf"] == 0 and control["vs_mf_verdict"] == "no significant difference"
    assert len(member_rows) == 6 and {row["variant"] for row in member_rows} == {"mf", "mf_longer", "authors"}


def test_a_difference_every_seed_agrees_on_is_a_gain_and_one_seed_gives_no_verdict():
    agreed = compare_variants(study_of({1: 0.05, 2: 0.052, 3: 0.048}), STUDY_PARAMS, EVALUATION, *NO_BASELINES)[0]
    assert agreed.set_index("variant").loc["authors", "vs_mf_verdict"] == "gain"
    alone = compare_variants(study_of({1: 0.05}), STUDY_PARAMS, EVALUATION, *NO_BASELINES)[0]
    assert alone.set_index("variant").loc["authors", "vs_mf_verdict"] == "one seed: no verdict"


def test_the_forest_plot_puts_each_comparison_on_its_own_variant_row():
    users = np.arange(300)
    results = {(1, variant): member_results(users, np.random.default_rng(n).uniform(0, 1, users.size))
               for n, variant in enumerate(("mf", "mf_longer", "authors", "residual"), start=1)}
    table, _, _ = compare_variants(results, STUDY_PARAMS, EVALUATION, *NO_BASELINES)
    (ax,) = plot_study(table).axes
    assert [t.get_text() for t in ax.get_yticklabels()] == ["mf_longer", "authors", "residual"]
    rows = {container.get_label(): [] for container in ax.containers}
    for container in ax.containers:
        rows[container.get_label()] += list(container.lines[0].get_ydata())
    # vs MF: mf_longer, authors, residual on rows 0-2; vs MF-longer: authors and residual on rows 1-2
    assert sorted(y for ys in rows.values() for y in ys) == pytest.approx([-0.2, 0.8, 1.0, 1.8, 2.0])


def test_baselines_get_their_own_rows_and_every_variant_its_difference_from_the_best_on_validation():
    rng = np.random.default_rng(3)
    users = np.arange(1000)
    mf = rng.uniform(0, 1, users.size)
    results = {(seed, variant): member_results(users, values + 0.001 * seed)  # three seeds, nearly alike
               for seed in (1, 2, 3) for variant, values in (("mf", mf), ("mf_longer", mf), ("authors", mf - 0.02))}
    baseline_frames = {"ease": mf + 0.05, "itemknn": mf - 0.1}  # ease ranks best on validation too (below)
    metrics = {name: (lambda name=name: {"valid": {"ndcg@10": {"ease": 0.6, "itemknn": 0.3}[name]},
                                         "sampled": {"candidates": "same"}}) for name in baseline_frames}
    per_user = {name: (lambda v=v: pd.DataFrame({"protocol": "sampled", "user": users, "ndcg@10": v}))
                for name, v in baseline_frames.items()}
    baselines = BaselinesParams.model_validate({
        "models": ["itemknn", "ease"], "trials": 1, "memory_budget_gib": 1, "cooccurrence_budget": 1e9,
        "search": {"itemknn": {"top_k": {"value": 5}, "shrink": {"value": 0}, "weighting": {"value": "none"}},
                   "ease": {"l2": {"value": 10.0}}}})
    table, _, sentence = compare_variants(results, STUDY_PARAMS, EVALUATION, baselines, metrics, per_user)
    rows = table.set_index("variant")
    assert list(rows.index) == ["mf", "mf_longer", "authors", "itemknn", "ease"]
    assert rows.loc["authors", "vs_best_baseline"] == pytest.approx(-0.07, abs=0.003) and rows.loc["authors", "vs_best_baseline_verdict"] == "loss"
    assert rows.loc["ease", "vs_mf"] == pytest.approx(0.05, abs=0.003) and np.isnan(rows.loc["ease", "vs_best_baseline"])
    assert rows.loc["itemknn", "seeds"] == 1 and np.isnan(rows.loc["itemknn", "vs_mf_longer"])
    assert sentence.startswith("**Recommendation:** ease ranked best on validation ndcg@10 (0.6000, runner-up mf")
    assert "a significant advantage: deploy it" in sentence


def test_a_noisy_difference_of_zero_is_no_significant_difference():
    rng = np.random.default_rng(1)
    users = np.arange(500)
    results = {(seed, variant): member_results(users, rng.uniform(0, 1, users.size))
               for seed in (1, 2, 3) for variant in ("mf", "mf_longer", "authors")}
    table, _, _ = compare_variants(results, STUDY_PARAMS, EVALUATION, *NO_BASELINES)
    authors = table.set_index("variant").loc["authors"]
    assert authors["vs_mf_low"] < 0 < authors["vs_mf_high"]
    assert authors["vs_mf_verdict"] == "no significant difference"


def test_mean_interval_covers_the_mean_of_real_spread_and_collapses_on_a_constant():
    values = np.random.default_rng(2).normal(0.4, 0.1, 4000)
    low, high = mean_interval(values, 0.95, 2000, 0)
    assert low < values.mean() < high and high - low == pytest.approx(2 * 1.96 * 0.1 / np.sqrt(4000), rel=0.15)
    assert mean_interval(np.full(10, 0.3), 0.95, 2000, 0) == (0.3, 0.3)


@pytest.mark.parametrize("other", ["users", "candidates"])
def test_members_ranked_on_other_users_or_candidates_are_not_compared(other):
    users = np.arange(50)
    results = {(1, "mf"): member_results(users, np.ones(50)), (1, "mf_longer"): member_results(users, np.ones(50)),
               (1, "authors"): member_results(users + 1, np.ones(50)) if other == "users"
               else member_results(users, np.ones(50), "other")}
    with pytest.raises(ValueError, match="authors \\(seed 1\\) was evaluated on other sampled users or candidates"):
        compare_variants(results, STUDY_PARAMS, EVALUATION, *NO_BASELINES)


@pytest.fixture(scope="module")
def studied(tmp_path_factory):
    project = slice_project(tmp_path_factory.mktemp("study"))
    project.write_conf("study.yml", MEMBERS)
    params = {"pretrain": {"training": {"epochs": 5}}, "study": STUDY, "baselines": {"trials": 2}}
    project.run("study", params=params)
    return project, params


@pytest.mark.e2e
def test_the_study_writes_a_report_with_intervals_for_every_variant_and_seed(studied):
    project, _ = studied
    reporting = project.root / "data/08_reporting"
    table = pd.read_csv(reporting / "study_table.csv")
    baselines = {"toppop", "itemknn", "userknn", "rp3beta", "ease", "ials"}
    assert set(table["variant"]) == {"mf", "mf_longer", "authors", "residual", "mf_identity"} | baselines
    assert set(table["metric"]) == {"ndcg@10", "hr@10"} and (table["seeds"] == 2).sum() == 10
    convncf = table[~table["variant"].isin(["mf", "mf_longer", *baselines])]
    assert convncf[["vs_mf_low", "vs_mf_high", "vs_mf_longer_low", "vs_mf_longer_high"]].notna().all().all()
    assert (table["ci_low"] <= table["mean"]).all() and (table["mean"] <= table["ci_high"]).all()
    report = (reporting / "study_report.md").read_text()
    assert "Does ConvNCF beat MF" in report and "## Verdicts" in report
    assert report.rstrip().splitlines()[-1].startswith("**Recommendation:** ")
    summary = json.loads((reporting / "study_summary.json").read_text())
    assert summary["seeds"] == [7, 8] and len(summary["members"]) == 10
    kept = [m for m in summary["members"] if m["variant"] != "mf" and m["best_epoch"] == 0]
    assert summary["kept_start"] == {v: sum(m["variant"] == v for m in kept) for v in {m["variant"] for m in kept}}
    mf = {m["seed"]: m for m in summary["members"] if m["variant"] == "mf"}
    for member in kept:  # a start no epoch improved on is kept; for these variants it is MF's own ranking
        if member["variant"] in ("mf_longer", "residual"):
            assert member["sampled.ndcg@10"] == pytest.approx(mf[member["seed"]]["sampled.ndcg@10"], abs=1e-9)

    # pairing: every member ranked the same users' same candidates, and each seed has its own MF
    per_user = [pd.read_parquet(path) for path in sorted((reporting / "study").glob("seed_*/per_user_metrics_*.parquet"))]
    assert len(per_user) == 10 and all(np.array_equal(f["user"], per_user[0]["user"]) for f in per_user)
    fingerprints = {json.loads(p.read_text())["sampled"]["candidates"]
                    for p in (reporting / "study").glob("seed_*/test_metrics_*.json")}
    assert len(fingerprints) == 1
    mf_7, mf_8 = (pd.read_csv(reporting / f"study/seed_{seed}/mf_history.csv") for seed in (7, 8))
    assert not np.allclose(mf_7["loss"].iloc[1:], mf_8["loss"].iloc[1:])


@pytest.mark.e2e
def test_the_study_run_is_recorded_in_mlflow(studied):
    project, _ = studied
    run = project.mlflow_runs()[0]
    assert run.info.run_name == "study" and run.info.status == "FINISHED"
    assert run.data.params["study.seeds"] == "[7, 8]" and run.data.params["convncf.channels"] == "32"
    client = project.mlflow_client()
    curve = client.get_metric_history(run.info.run_id, "study_tracked_metrics.authors/seed_7/valid/ndcg_at_10")
    assert [m.step for m in curve] == [0, 1]
    table = pd.read_csv(project.root / "data/08_reporting/study_table.csv").set_index(["variant", "metric"])
    recorded = run.data.metrics["study_tracked_metrics.study/authors/sampled/ndcg_at_10/vs_mf"]
    assert recorded == pytest.approx(table.loc[("authors", "ndcg@10"), "vs_mf"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"study_report.md", "study_table.csv", "study_summary.json", "study_forest.png"} <= artifacts


@pytest.mark.e2e
def test_a_finished_study_resumes_without_training_and_extends_with_a_new_seed(studied, monkeypatch):
    project, params = studied
    summary = (project.root / "data/08_reporting/study_summary.json").read_text()

    def no_training(*args, **kwargs):
        raise AssertionError("a finished member was trained again")

    monkeypatch.setattr(loop, "train_step", no_training)
    project.run("study", params=params)
    assert json.loads((project.root / "data/08_reporting/study_summary.json").read_text()) == json.loads(summary)

    monkeypatch.undo()
    trained = []
    monkeypatch.setattr(loop, "train_step", lambda *a, **k: trained.append(1) or 0.0)
    project.write_conf("study.yml", {**MEMBERS, "seeds": [7, 8, 9]})
    project.run("study", params=params)
    members = json.loads((project.root / "data/08_reporting/study_summary.json").read_text())["members"]
    assert sorted({m["seed"] for m in members}) == [7, 8, 9] and trained  # only seed 9 needed training


def described_members(project, env: dict) -> set[tuple[str, str]]:
    """(seed, trained variant) pairs that `kedro registry describe study` lists."""
    out = subprocess.run([sys.executable, "-m", "kedro", "registry", "describe", "study"], cwd=project.root, env=env,
                         capture_output=True, text=True, check=True, timeout=120).stdout
    return set(re.findall(r"study\.seed_(\d+)\.train_(mf_bpr|mf_longer|convncf_\w+) ", out))


def kedro_run(project, *args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kedro", "run", "--pipeline", "study", *args], cwd=project.root,
                          env=env, capture_output=True, text=True, timeout=900, check=False)


@pytest.mark.e2e
def test_every_command_sees_the_members_of_the_environment_and_a_run_that_would_see_others_stops(tmp_path):
    project = slice_project(tmp_path)
    wide_conf = project.root / "conf" / "wide"  # an environment in place of conf/local: the slice, other members
    shutil.copytree(project.root / "conf" / "local", wide_conf)
    (wide_conf / "study.yml").write_text("seeds: [3]\nrecipes: [authors]\n")
    quick = "pretrain.training.epochs=2,study.extra_epochs=1,baselines.models=[toppop]"
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "MLFLOW_TRACKING_URI": project.tracking_uri}
    env.pop("KEDRO_ENV", None)
    shipped = {(str(seed), name) for seed in (2018, 2019, 2020, 2021, 2022)
               for name in ("mf_bpr", "mf_longer", "convncf_authors", "convncf_residual", "convncf_mf_identity")}
    assert described_members(project, env) == shipped

    wide = {**env, "KEDRO_ENV": "wide"}
    assert described_members(project, wide) == {("3", "mf_bpr"), ("3", "mf_longer"), ("3", "convncf_authors")}
    run = kedro_run(project, "--params", quick, env=wide)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads((project.root / "data/08_reporting/study_summary.json").read_text())
    assert {(m["seed"], m["variant"]) for m in summary["members"]} == {(3, "mf"), (3, "mf_longer"), (3, "authors")}

    refused = kedro_run(project, "--env", "wide", "--params", quick, env=env)  # registered from conf/local instead
    said = " ".join(refused.stderr.split())  # the console wraps long lines
    assert refused.returncode != 0
    assert "names seeds [3], recipes ['authors'], but the study pipeline was registered with seeds [2018" in said
    assert "run with KEDRO_ENV=<env> instead of --env" in said
    moved = kedro_run(project, "--params", "study.seeds=[1]", env=wide)
    assert moved.returncode != 0 and "they live in conf/base/study.yml" in " ".join(moved.stderr.split())
