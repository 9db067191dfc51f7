"""The baselines stage as a user runs it: tuned on validation only, refused at start when misconfigured."""

import re
import shutil

import pandas as pd
import pytest
from kedro_project import slice_project

from convncf_kedro.baselines import tuning
from convncf_kedro.baselines.models import saved_description
from convncf_kedro.errors import ParameterError

pytestmark = pytest.mark.e2e

FEW_TRIALS = {"baselines": {"trials": 3}}


def chosen(project) -> dict:
    described = {name: saved_description(load()) for name, load in project.load("baseline_models").items()}
    return {name: (d["params"], d["valid_metrics"]) for name, d in described.items()}


def test_tuning_never_reads_the_test_split(tmp_path):
    project = slice_project(tmp_path)
    for pipeline in ("ingestion", "matrix", "baselines"):
        project.run(pipeline, params=FEW_TRIALS)
    before = chosen(project)
    assert set(before) == {"toppop", "itemknn", "userknn", "rp3beta", "ease", "ials"}
    test_file = project.root / "data/05_model_input/test.parquet"
    test = pd.read_parquet(test_file)
    poisoned = test.assign(item=test["item"].sample(frac=1, random_state=0).to_numpy())  # other held-out items
    poisoned.to_parquet(test_file)
    shutil.rmtree(project.root / "data/06_models/baselines")  # tuned again, not kept from the first run
    project.run("baselines", params=FEW_TRIALS)
    assert chosen(project) == before  # same parameters, same validation metrics, whatever test holds
    trials = project.load("baseline_trials")
    assert trials.groupby("model").size().to_dict() == {"toppop": 1, "itemknn": 3, "userknn": 3, "rp3beta": 3,
                                                        "ease": 3, "ials": 3}


def test_a_rerun_keeps_each_baseline_tuned_on_the_same_data_with_the_same_settings(tmp_path, monkeypatch):
    """A study or `train` interrupted after its baselines does not tune them again; a changed setting re-tunes its
    model only."""
    project = slice_project(tmp_path)
    for pipeline in ("ingestion", "matrix", "baselines"):
        project.run(pipeline, params=FEW_TRIALS)
    first = {name: saved_description(load()) for name, load in project.load("baseline_models").items()}
    first_trials = project.load("baseline_trials")
    tuned, tune_one = [], tuning._tune_one
    monkeypatch.setattr(tuning, "_tune_one", lambda name, *args: tuned.append(name) or tune_one(name, *args))
    project.run("baselines", params={"baselines": {"trials": 3, "search": {"ials": {"iterations": {"value": 10}}}}})
    assert tuned == ["ials"]
    second = {name: saved_description(load()) for name, load in project.load("baseline_models").items()}
    assert {name: d for name, d in second.items() if name != "ials"} == {
        name: d for name, d in first.items() if name != "ials"}  # the same files' records, tuning time included
    assert second["ials"]["params"]["iterations"] == 10
    kept = project.load("baseline_trials").query("model != 'ials'").reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, first_trials.query("model != 'ials'").reset_index(drop=True))


def test_an_unknown_baseline_stops_the_run_at_start_and_one_too_large_is_left_out_with_why(tmp_path):
    project = slice_project(tmp_path)
    with pytest.raises(ParameterError, match=r"'baselines.models': 'itemknnn' is not a baseline \(did you mean 'itemknn'\?\)"):
        project.run("ingestion", params={"baselines": {"models": ["itemknnn"]}})
    project.run("ingestion")
    project.run("matrix")
    project.run("baselines", params={"baselines": {"memory_budget_gib": 0.001, "cooccurrence_budget": 100,
                                                   "models": ["toppop", "ease", "userknn"]}})
    described = {name: saved_description(load()) for name, load in project.load("baseline_models").items()}
    assert "left_out" not in described["toppop"]
    assert re.fullmatch(r"EASE\^R on 1,[0-9]{3} items needs 0\.0[0-9]+ GiB, over baselines.memory_budget_gib=0.001: left "
                        r"out \(raise the budget to fit it\)", described["ease"]["left_out"])
    assert re.fullmatch(r"userknn needs [0-9.]+e\+0[2-9] co-occurrence products to build its similarity, over "
                        r"baselines.cooccurrence_budget=100: left out \(raise the budget to fit it\)",
                        described["userknn"]["left_out"])
