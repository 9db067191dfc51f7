"""The GPU command's study, on CPU at a tiny size so it cannot rot: it measures step rates, prints the projection and
the members' budgets, and runs the study within them (issue 25)."""

import json

import pytest

from benchmarks.gpu_study import RECIPES, arguments, main

pytestmark = pytest.mark.e2e


def test_the_gpu_study_sizes_itself_from_measured_rates_and_runs_every_variant_on_cpu(tmp_path, capsys):
    args = arguments(["--device", "cpu", "--dataset", "ml-100k", "--sample-users", "60", "--seeds", "2018",
                      "--minutes", "1.5", "--work", str(tmp_path / "work"), "--results", str(tmp_path / "results")])
    out = main(args)
    printed = capsys.readouterr().out
    projection = out["projection"]
    assert set(projection["triples_per_second"]) == {"mf", "mf_longer", *RECIPES}
    assert all(rate > 0 for rate in projection["triples_per_second"].values())
    members_budget = projection["member_budget_minutes"]
    assert members_budget == pytest.approx(1.5 * 0.75 / 5, abs=1e-3)  # 1 seed × (MF, MF longer, 3 recipes)
    assert '"authors_schedule_minutes"' in printed and "members in" in printed
    assert {(m["variant"], m["seed"]) for m in out["members"]} >= {(recipe, 2018) for recipe in RECIPES}
    saved = json.loads((tmp_path / "results" / "study_ml-100k-gpu-60-users.json").read_text())
    assert saved["params"]["convncf"]["training"]["time_budget_minutes"] == members_budget
    assert out["seconds_this_run"] < 600
