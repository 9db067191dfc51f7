"""A new user's first run, through the real CLI: the README's `kedro run --pipeline train` downloads its data (from a
local `file://` archive here: no network), and later stages never use outputs of different or failed runs.

The archive holds MovieLens 100K's first 30 users in GroupLens' layout (`ml-100k/u.data`), built in a temporary
folder from ../shared/datasets; the shipped catalog entry is used with only its URL and checksum changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml
from filelock import FileLock
from kedro_project import PROJECT_ROOT, SHARED_DATASETS, KedroProject

from convncf_kedro.errors import StaleInputError

pytestmark = pytest.mark.e2e

FAST = {  # the shipped parameters with a small budget (conf/local, so the command stays the README's own)
    "pretrain": {"training": {"epochs": 5}},
    "convncf": {"training": {"epochs": 1}},
    "baselines": {"trials": 2},
}


def slice_of_ml_100k(first_users: int, from_user: int = 1) -> bytes:
    raw = pd.read_csv(SHARED_DATASETS / "ml-100k/u.data", sep="\t", names=["u", "i", "r", "t"], dtype=str)
    users = raw["u"].astype(int)
    return raw[(users >= from_user) & (users < from_user + first_users)].to_csv(sep="\t", header=False, index=False).encode()


def archive_of(u_data: bytes, path: Path) -> str:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ml-100k/README", "a slice of MovieLens 100K for tests")
        zf.writestr("ml-100k/u.data", u_data)
    return path.as_uri()


def shipped_entry_with(url: str, sha256: str) -> dict:
    entry = yaml.safe_load((PROJECT_ROOT / "conf/base/catalog.yml").read_text())["raw_interactions"]
    return {**entry, "download": {**entry["download"], "url": url}, "sha256": {"log": sha256}}


def kedro_cli(root: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kedro", *args], cwd=cwd or root, check=False, capture_output=True, text=True,
                          env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "COLUMNS": "1000"}, timeout=900)  # rich: no wrapping


def score_cli(data: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    """The plain scoring CLI used as its docstring shows, on a trained project's files."""
    return subprocess.run([
        sys.executable, "-m", "convncf_kedro.serving.onnx_scoring", "--model", str(data / "06_models/convncf.onnx"),
        "--user-map", str(data / "03_primary/user_map.parquet"), "--item-map", str(data / "03_primary/item_map.parquet"),
        "--seen", str(data / "05_model_input/known_interactions.npz"), "--out", str(out), *args],
        check=False, capture_output=True, text=True, timeout=300)


def new_project(root: Path, u_data: bytes, archive_bytes: bytes | None = None) -> KedroProject:
    """A fresh copy of the project whose catalog downloads ``u_data`` (or other archive bytes) on first use."""
    project = KedroProject(root / "project")
    archive = root / "ml-100k.zip"
    url = archive_of(u_data, archive)
    if archive_bytes is not None:
        archive.write_bytes(archive_bytes)
    project.write_conf("catalog.yml", {"raw_interactions": shipped_entry_with(url, hashlib.sha256(u_data).hexdigest())})
    project.write_conf("parameters.yml", FAST)
    return project


@pytest.fixture(scope="module")
def first_run(tmp_path_factory) -> tuple[KedroProject, subprocess.CompletedProcess]:
    project = new_project(tmp_path_factory.mktemp("first"), slice_of_ml_100k(30))
    return project, kedro_cli(project.root, "run", "--pipeline", "train")


def test_the_readme_command_downloads_verifies_and_trains(first_run):
    project, run = first_run
    assert run.returncode == 0, run.stderr[-3000:]
    assert (project.root / "data/01_raw/ml-100k/u.data").read_bytes() == slice_of_ml_100k(30)
    assert (project.root / "data/01_raw/ml-100k/README").is_file()  # the archive's folder, as GroupLens ships it
    assert project.load("dataset_statistics")["users"] == 30
    assert (project.root / "data/06_models/convncf.onnx").stat().st_size > 0
    assert project.load("test_metrics_convncf")["sampled"]["rows"] == 30


def test_the_download_works_from_any_folder_of_the_project(tmp_path):
    """Kedro finds the project above the working folder (its conf given absolutely); the data lands in the project."""
    project = new_project(tmp_path, slice_of_ml_100k(20))
    run = kedro_cli(project.root, "run", "--pipeline", "ingestion", "--conf-source", str(project.root / "conf"),
                    cwd=project.root / "data" / "08_reporting")
    assert run.returncode == 0, run.stderr[-3000:]
    assert project.load("user_map")["raw_id"].tolist() == [str(u) for u in range(1, 21)]


def test_a_corrupt_download_is_refused_and_says_where_the_file_goes(tmp_path):
    project = new_project(tmp_path, slice_of_ml_100k(20))
    entry = shipped_entry_with((tmp_path / "ml-100k.zip").as_uri(), hashlib.sha256(slice_of_ml_100k(20)).hexdigest())
    archive_of(slice_of_ml_100k(20)[:3000], tmp_path / "ml-100k.zip")  # truncated inside the archive
    project.write_conf("catalog.yml", {"raw_interactions": entry})
    run = kedro_cli(project.root, "run", "--pipeline", "ingestion")
    output = " ".join((run.stdout + run.stderr).split())
    assert run.returncode != 0
    assert "the download is corrupt or changed" in output and "data/01_raw/ml-100k/u.data" in output
    assert not (project.root / "data/01_raw/ml-100k").exists()  # nothing half-done is left


def test_an_unreachable_url_says_where_the_file_goes(tmp_path):
    project = new_project(tmp_path, slice_of_ml_100k(20))
    entry = shipped_entry_with("http://127.0.0.1:9/ml-100k.zip", "0" * 64)
    project.write_conf("catalog.yml", {"raw_interactions": entry})
    run = kedro_cli(project.root, "run", "--pipeline", "ingestion")
    output = " ".join((run.stdout + run.stderr).split())
    assert run.returncode != 0
    assert "could not download http://127.0.0.1:9/ml-100k.zip" in output and "ml-100k/u.data" in output


def test_a_failed_ingestion_on_new_data_is_refused_by_every_later_stage(tmp_path):
    project = new_project(tmp_path, slice_of_ml_100k(30))
    project.run("train")
    other = tmp_path / "other"
    other.mkdir()
    (other / "u.data").write_bytes(slice_of_ml_100k(25, from_user=100))
    project.write_conf("catalog.yml", {"raw_interactions": {
        "type": "convncf_kedro.datasets.RawInteractionFiles", "path": str(other), "files": {"log": "u.data"}}})
    with pytest.raises(Exception, match="ingestion.n_negatives"):  # fails in its last node, after the maps and splits
        project.run("ingestion", params={"ingestion": {"n_negatives": 5000}})
    for stage in ("matrix", "pretrain", "convncf", "evaluation", "score"):
        with pytest.raises(StaleInputError, match=r"is not the one the last completed ingestion run recorded .*re-run"):
            project.run(stage)
    project.run("ingestion")  # a completed ingestion makes the data whole again: matrix follows it
    project.run("matrix")
    with pytest.raises(Exception, match="trained on other data"):  # the model is still the first data's
        project.run("convncf")


def test_the_plain_cli_never_recommends_a_known_item(first_run, tmp_path):
    project, _ = first_run
    out = tmp_path / "recommendations.parquet"
    data = project.root / "data"
    run = score_cli(data, out, "--k", "10")
    assert run.returncode == 0, run.stderr[-2000:]
    recommended = pd.read_parquet(out)
    raw = pd.read_csv(data / "01_raw/ml-100k/u.data", sep="\t", names=["user_id", "item_id", "r", "t"], dtype=str)
    known = recommended.merge(raw, on=["user_id", "item_id"])
    assert len(recommended) == 30 * 10 and known.empty  # neither train nor validation nor test items come back


def test_the_plain_cli_ranks_in_two_stages_on_request(first_run, tmp_path):
    project, _ = first_run
    data = project.root / "data"
    out = tmp_path / "two_stage.parquet"
    run = score_cli(data, out, "--k", "10", "--retrieval", str(data / "06_models/convncf_retrieval.onnx"), "--shortlist", "50")
    assert run.returncode == 0, run.stderr[-2000:]
    recommended = pd.read_parquet(out)
    assert len(recommended) == 30 * 10 and recommended.groupby("user_id")["item_id"].nunique().eq(10).all()


@pytest.mark.parametrize(("args", "users", "message"), [
    (["--k", "0"], None, "--k must be at least 1, not 0"),
    (["--k", "-3"], None, "--k must be at least 1, not -3"),
    ([], "", "lists no user id"),
    ([], "ghost\nnobody\n", "none of the 2 users to score is known to the model (first: 'ghost')"),
    (["--shortlist", "50"], None, "two-stage ranking needs both --retrieval and --shortlist"),
])
def test_the_plain_cli_refuses_bad_requests_in_one_line(first_run, tmp_path, args, users, message):
    project, _ = first_run
    data = project.root / "data"
    user_args = []
    if users is not None:
        (tmp_path / "users.txt").write_text(users)
        user_args = ["--users", str(tmp_path / "users.txt")]
    run = score_cli(data, tmp_path / "r.parquet", *args, *user_args)
    assert run.returncode == 2
    errors = [line for line in run.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in run.stderr


def test_a_second_run_in_the_same_project_stops_at_once_naming_the_first(first_run):
    project, _ = first_run
    (project.root / "data/.kedro-run.json").write_text(json.dumps(
        {"pid": 4242, "pipelines": "train", "started": "2026-12-01 10:00:00"}))
    with FileLock(project.root / "data/.kedro-run.lock"):  # as a running `kedro run` holds it
        with pytest.raises(RuntimeError, match=r"another kedro run is using this project folder \(pid 4242, kedro "
                                               r"run --pipeline train started 2026-12-01 10:00:00\)"):
            project.run("export")


def test_two_runs_starting_on_a_new_mlflow_store_do_not_race(tmp_path):
    project = new_project(tmp_path, slice_of_ml_100k(20))
    (project.root / "data/01_raw/ml-100k").mkdir(parents=True)
    (project.root / "data/01_raw/ml-100k/u.data").write_bytes(slice_of_ml_100k(20))
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "COLUMNS": "1000"}
    env.pop("MLFLOW_TRACKING_URI", None)
    runs = [subprocess.Popen([sys.executable, "-m", "kedro", "run", "--pipeline", "ingestion"], cwd=project.root,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    assert not any("OperationalError" in output for output in outputs)
    assert all(run.returncode == 0 or "another kedro run is using this project folder" in " ".join(output.split())
               for run, output in zip(runs, outputs, strict=True))
    assert any(run.returncode == 0 for run in runs)
