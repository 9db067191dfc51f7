"""What a careful user or an attacker tries on a trained project, through `kedro run` and the plain CLI: a run killed
while saving, a missing or code-bearing model file, a lower epoch cap, changed raw data, nanosecond timestamps and a
corrupted graph. Each either leaves the earlier results intact or stops in one line naming the file and the fix."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from kedro_project import KedroProject, slice_project

pytestmark = pytest.mark.e2e

TINY = {
    "pretrain": {"embedding_size": 8, "batch_size": 1024, "training": {"epochs": 3, "threads": 1}},
    "convncf": {"channels": 4, "recipes": {"mf_identity": {"batch_size": 512}}, "training": {"epochs": 1, "threads": 1}},
    "baselines": {"trials": 1},
    "score": {"partition_users": 1},  # one part per user: a kill lands inside the save
}


def kedro_cli(project: KedroProject, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kedro", *args], cwd=project.root, check=False, capture_output=True,
                          text=True, env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "COLUMNS": "1000",
                                          "MLFLOW_TRACKING_URI": project.tracking_uri}, timeout=900)


def one_line(run: subprocess.CompletedProcess) -> str:
    """The output on one line (rich wraps and indents long messages)."""
    return " ".join((run.stdout + run.stderr).split())


class Payload:
    """Unpickling this runs a shell command that leaves a file: what a hostile model file would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> KedroProject:
    project = slice_project(tmp_path_factory.mktemp("probes"), users=60)
    project.write_conf("parameters.yml", TINY)
    project.run("train")
    project.run("score")
    return project


def test_score_killed_while_saving_leaves_the_previous_recommendations_whole(trained):
    folder = trained.root / "data/07_model_output/recommendations"
    before = pd.read_parquet(folder)
    assert before.groupby("user_id").size().eq(10).all()
    run = subprocess.Popen([sys.executable, "-m", "kedro", "run", "--pipeline", "score", "--params", "score.k=5"],
                           cwd=trained.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "MLFLOW_TRACKING_URI": trained.tracking_uri})
    for line in run.stdout:  # kill -9 the moment the save begins, as a power cut would
        if "Saving data to recommendations" in line or "Saving data to 'recommendations'" in line:
            run.send_signal(signal.SIGKILL)
            break
    run.wait(timeout=300)
    assert run.returncode == -signal.SIGKILL
    after = pd.read_parquet(folder)  # never a mix: the old version whole (or, had the save finished, the new one)
    per_user = after.groupby("user_id").size()
    assert len(per_user) == before["user_id"].nunique() and per_user.nunique() == 1
    assert per_user.iloc[0] in (10, 5)
    assert len(trained.load("recommendations")) == len(per_user)  # the reader finds every part its list names


def test_a_folder_missing_its_parts_list_is_refused_by_its_reader(trained, tmp_path):
    folder = trained.root / "data/08_reporting/baselines/test_metrics"
    (folder / "_SUCCESS").rename(tmp_path / "_SUCCESS")
    try:
        with pytest.raises(Exception, match=r"baselines/test_metrics is incomplete \(no _SUCCESS"):
            trained.load("baseline_test_metrics")
    finally:
        (tmp_path / "_SUCCESS").rename(folder / "_SUCCESS")


def test_evaluation_refuses_a_configured_baseline_that_was_not_tuned(trained):
    models = trained.root / "data/06_models/baselines"
    before = sorted(p.name for p in models.iterdir())
    trained.run("baselines", params={"baselines": {"models": ["toppop"]}})
    try:
        run = kedro_cli(trained, "run", "--pipeline", "evaluation")
        assert run.returncode != 0
        assert ("baselines.models lists itemknn, userknn, rp3beta, ease, ials, but data/06_models/baselines holds no "
                "saved model for them: re-run the baselines stage (kedro run --pipeline baselines)") in one_line(run)
    finally:
        trained.run("baselines")
    assert sorted(p.name for p in models.iterdir()) == before


def test_evaluation_refuses_a_deleted_baseline_instead_of_dropping_it(trained, tmp_path):
    ease = trained.root / "data/06_models/baselines/ease.npz"
    ease.rename(tmp_path / "ease.npz")
    try:
        run = kedro_cli(trained, "run", "--pipeline", "evaluation")
        assert run.returncode != 0 and "baselines is incomplete: 1 of its parts are missing (first: ease.npz)" in one_line(run)
        assert "ease" in trained.load("model_table")["model"].tolist()  # the earlier table stands
    finally:
        (tmp_path / "ease.npz").rename(ease)


@pytest.mark.parametrize(("dataset", "relative", "reader"), [
    ("baseline_models", "data/06_models/baselines/toppop.npz", "evaluation"),
    ("mf_model", "data/06_models/mf_model.pt", "evaluation"),
    ("known_interactions", "data/05_model_input/known_interactions.npz", "score"),
])
def test_a_model_file_carrying_code_is_refused_without_running_it(trained, tmp_path, dataset, relative, reader):
    target = trained.root / relative
    original = target.read_bytes()
    marker = tmp_path / "ran"
    if target.suffix == ".pt":
        torch.save({"model": Payload(marker)}, target)
    else:
        with target.open("wb") as fh:
            np.savez(fh, data=np.array([Payload(marker)], dtype=object))
    try:
        with pytest.raises(Exception, match=r"not a readable"):
            loaded = trained.load(dataset)
            if isinstance(loaded, dict) and callable(next(iter(loaded.values()), None)):
                [load() for load in loaded.values()]  # partitions load lazily
        assert not marker.exists()
        run = kedro_cli(trained, "run", "--pipeline", reader)
        assert run.returncode != 0 and target.name in one_line(run) and not marker.exists()
    finally:
        target.write_bytes(original)


def test_an_old_pickled_baseline_beside_the_models_is_never_read(trained, tmp_path):
    import pickle

    marker = tmp_path / "ran"
    (trained.root / "data/06_models/baselines/toppop.pkl").write_bytes(pickle.dumps(Payload(marker)))
    assert set(trained.load("baseline_models")) == {"toppop", "itemknn", "userknn", "rp3beta", "ease", "ials"}
    assert not marker.exists()


def test_a_corrupted_graph_is_refused_by_score_and_the_cli_naming_it(trained, tmp_path):
    import onnx

    graph = trained.root / "data/06_models/convncf.onnx"
    original = graph.read_bytes()
    proto = onnx.load_from_string(original)
    embedding = max(proto.graph.initializer, key=lambda t: len(t.raw_data))  # the largest table: an embedding
    flipped = bytearray(embedding.raw_data)
    flipped[3::4] = bytes(b ^ 0x80 for b in flipped[3::4][:8]) + bytes(flipped[3::4][8:])  # 8 sign bits, same size
    corrupted = original.replace(bytes(embedding.raw_data), bytes(flipped))
    assert len(corrupted) == len(original) and corrupted != original
    graph.write_bytes(corrupted)
    try:
        run = kedro_cli(trained, "run", "--pipeline", "score")
        assert run.returncode != 0 and "the graph's content differs from what export wrote" in one_line(run)
        data = trained.root / "data"
        cli = subprocess.run([sys.executable, "-m", "convncf_kedro.serving.onnx_scoring", "--model", str(graph),
                              "--user-map", str(data / "03_primary/user_map.parquet"),
                              "--item-map", str(data / "03_primary/item_map.parquet"),
                              "--seen", str(data / "05_model_input/known_interactions.npz"),
                              "--out", str(tmp_path / "r.parquet")], check=False, capture_output=True, text=True,
                             timeout=300)
        assert cli.returncode == 2 and "Traceback" not in cli.stderr
        assert f"{graph}: the graph's content differs from what export wrote" in cli.stderr
    finally:
        graph.write_bytes(original)


def test_the_cli_refuses_hostile_or_truncated_inputs_in_one_line_naming_them(trained, tmp_path):
    data = trained.root / "data"
    truncated = tmp_path / "known.npz"
    truncated.write_bytes((data / "05_model_input/known_interactions.npz").read_bytes()[:100])
    not_a_graph = tmp_path / "model.onnx"
    not_a_graph.write_bytes(b"\x80\x04 not a graph")
    for model, seen, named in ((data / "06_models/convncf.onnx", truncated, f"{truncated}: not a readable sparse matrix"),
                               (not_a_graph, data / "05_model_input/known_interactions.npz", f"{not_a_graph}: not a usable ONNX model")):
        cli = subprocess.run([sys.executable, "-m", "convncf_kedro.serving.onnx_scoring", "--model", str(model),
                              "--user-map", str(data / "03_primary/user_map.parquet"),
                              "--item-map", str(data / "03_primary/item_map.parquet"), "--seen", str(seen),
                              "--out", str(tmp_path / "r.parquet")], check=False, capture_output=True, text=True,
                             timeout=300)
        errors = [line for line in cli.stderr.splitlines() if "error" in line]
        assert cli.returncode == 2 and "Traceback" not in cli.stderr and len(errors) == 1 and named in errors[0]


def test_truncated_stage_outputs_name_the_stage_to_rerun(trained, tmp_path):
    for relative, dataset, message in (
        ("data/05_model_input/known_interactions.npz", "known_interactions", "re-run the matrix stage that writes it "
                                                                             "(kedro run --pipeline matrix)"),
        ("data/06_models/mf_model.pt", "mf_model", "re-run the stage that trains it (kedro run --pipeline pretrain"),
    ):
        target = trained.root / relative
        original = target.read_bytes()
        target.write_bytes(original[:200])
        try:
            with pytest.raises(Exception, match=message.replace("(", r"\(").replace(")", r"\)")):
                trained.load(dataset)
        finally:
            target.write_bytes(original)


def test_changed_raw_data_stops_later_stages_until_ingestion_reruns(trained):
    raw = Path(trained.load("ingestion_manifest")["raw_files"]["log"]["path"])
    original = raw.read_bytes()
    raw.write_bytes(b"".join(original.splitlines(keepends=True)[:-500]))
    try:
        for pipeline in ("matrix", "score"):
            run = kedro_cli(trained, "run", "--pipeline", pipeline)
            assert run.returncode != 0
            assert f"the raw data changed since the last ingestion ({raw} (other content))" in one_line(run)
            assert "re-run ingestion and the stages after it (kedro run --pipeline train)" in one_line(run)
        warned = kedro_cli(trained, "run", "--pipeline", "matrix", "--params", "ingestion.on_raw_change=warn")
        assert warned.returncode == 0 and "the raw data changed since the last ingestion" in one_line(warned)
    finally:
        raw.write_bytes(original)
        os.utime(raw)  # same bytes, new time: hashed again and found unchanged
    assert kedro_cli(trained, "run", "--pipeline", "matrix").returncode == 0


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> KedroProject:
    project = slice_project(tmp_path_factory.mktemp("caps"), users=30)
    project.write_conf("parameters.yml", TINY)
    project.run("ingestion")
    project.run("matrix")
    project.run("pretrain")
    return project


def test_a_lower_epoch_cap_starts_over_and_a_higher_one_continues(pretrained):
    three = pretrained.load("mf_history")
    assert three["epoch"].tolist() == [0, 1, 2, 3]
    pretrained.run("pretrain", params={"pretrain": {"training": {"epochs": 2}}})
    two = pretrained.load("mf_history")
    assert two["epoch"].tolist() == [0, 1, 2] and pretrained.load("mf_model")["epoch"] <= 2
    same = ["epoch", "loss", "ndcg@10", "hr@10"]  # a fresh 2-epoch run: the 3-epoch run's first two epochs
    pd.testing.assert_frame_equal(two[same], three[same].iloc[:3])
    pretrained.run("pretrain", params={"pretrain": {"training": {"epochs": 4}}})  # resumes the 2-epoch run
    four = pretrained.load("mf_history")
    assert four["epoch"].tolist() == [0, 1, 2, 3, 4]
    pd.testing.assert_series_equal(four["loss"].iloc[:3], two["loss"])


def test_a_run_killed_after_a_lower_cap_would_not_resume_it_past_the_cap(pretrained):
    """A checkpoint validated at the last epoch of a lower cap (off its schedule) chose among other checks."""
    pretrained.run("pretrain", params={"pretrain": {"training": {"epochs": 3, "validate_every": 2}}})
    pretrained.run("pretrain", params={"pretrain": {"training": {"epochs": 4, "validate_every": 2}}})
    history = pretrained.load("mf_history")
    checked = history.loc[history["ndcg@10"].notna(), "epoch"].tolist()
    assert checked == [0, 2, 4]  # as a fresh 4-epoch run checks: epoch 3 is not among them


def test_nanosecond_timestamps_keep_their_order_through_ingestion(tmp_path):
    folder = tmp_path / "raw"
    folder.mkdir()
    base = 1_700_000_000_000_000_000
    rows = []
    for user in range(1, 6):  # file order is the reverse of time order; stamps 1 ns apart collapse in float64
        for offset, item in ((3, 10 + user), (2, 20 + user), (1, 30 + user), (0, 40 + user)):
            rows.append(f"{user}\t{item}\t5\t{base + offset}")
    (folder / "u.data").write_text("\n".join(rows) + "\n")
    project = KedroProject(tmp_path / "project")
    project.write_conf("catalog.yml", {"raw_interactions": {
        "type": "convncf_kedro.datasets.RawInteractionFiles", "path": str(folder), "files": {"log": "u.data"}}})
    project.write_conf("parameters.yml", {"ingestion": {"n_negatives": 10}, "evaluation": {"ks": [5, 10]}})
    project.run("ingestion")
    items = project.load("item_map").set_index("index")["raw_id"]
    test, valid = project.load("test"), project.load("valid")
    assert test["timestamp"].dtype == np.int64 and int(test["timestamp"].max()) == base + 3
    assert sorted(items[test["item"]].astype(int)) == [11, 12, 13, 14, 15]  # each user's latest (offset 3)
    assert sorted(items[valid["item"]].astype(int)) == [21, 22, 23, 24, 25]


def test_a_log_with_fewer_fields_than_named_says_so(tmp_path):
    folder = tmp_path / "raw"
    folder.mkdir()
    (folder / "u.data").write_text("1\t10\t5\n2\t11\t4\n")
    project = KedroProject(tmp_path / "project")
    project.write_conf("catalog.yml", {"raw_interactions": {
        "type": "convncf_kedro.datasets.RawInteractionFiles", "path": str(folder), "files": {"log": "u.data"}}})
    run = kedro_cli(project, "run", "--pipeline", "ingestion")
    assert run.returncode != 0
    assert (f"{folder / 'u.data'}, line 1: 3 fields, expected 4 (user, item, rating, timestamp) separated by '\\t': "
            "set ingestion.delimited.sep and names to the file's layout") in one_line(run)


def test_a_delimited_log_read_as_lightgcn_lists_is_named_as_the_likely_cause(tmp_path):
    folder = tmp_path / "raw"
    folder.mkdir()
    (folder / "train.txt").write_text("1\t10\t5\t100\n2\t11\t4\t100\n")
    (folder / "test.txt").write_text("1\t12\t5\t100\n2\t13\t4\t101\n")
    project = KedroProject(tmp_path / "project")
    project.write_conf("catalog.yml", {"raw_interactions": {
        "type": "convncf_kedro.datasets.RawInteractionFiles", "path": str(folder),
        "files": {"train": "train.txt", "test": "test.txt"}}})
    project.write_conf("parameters_ingestion.yml", {"ingestion": {"format": "lightgcn"}})
    run = kedro_cli(project, "run", "--pipeline", "ingestion")
    assert run.returncode != 0
    assert ("every line of it has 4 fields, like a delimited log (user item rating timestamp), not a LightGCN list "
            "(user item item …): check ingestion.format") in one_line(run)


def test_an_unreachable_cluster_is_said_in_one_line(trained):
    started = time.monotonic()
    run = kedro_cli(trained, "run", "--pipeline", "score", "--params", "score.cluster=tcp://127.0.0.1:1")
    assert run.returncode != 0
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:1" in one_line(run)
    assert "start it (dask scheduler), or set the cluster to local:N or null" in one_line(run)
    assert time.monotonic() - started < 120
