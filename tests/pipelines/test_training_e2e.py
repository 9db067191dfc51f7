"""`train` end to end on MovieLens 100K with a tiny model, then what a user does with its outputs."""

import os

import matplotlib.image
import nbformat
import numpy as np
import pandas as pd
import pytest
import torch
from kedro_project import PROJECT_ROOT, SHARED_DATASETS, KedroProject
from nbclient import NotebookClient

from convncf_kedro.models import MF, ConvNCF, load_model, saved_info

pytestmark = pytest.mark.e2e

TINY = {
    "pretrain": {"embedding_size": 8, "batch_size": 2048, "training": {"epochs": 3, "threads": 1}},
    "convncf": {
        "channels": 4,
        "recipes": {"mf_identity": {"reg_conv": 0.0, "reg_out": 0.0, "batch_size": 1024}},
        "training": {"epochs": 2, "threads": 1, "selection_metric": "ndcg@20"},  # MF selects on ndcg@10
    },
    "baselines": {"trials": 2},
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> KedroProject:
    project = KedroProject(tmp_path_factory.mktemp("tiny") / "project")
    project.use_dataset("ml-100k")
    project.run("train", params=TINY)
    return project


def test_train_writes_both_models_and_their_histories(trained):
    catalog = trained.catalog()
    mf, convncf = load_model(catalog.load("mf_model")), load_model(catalog.load("convncf_model"))
    assert isinstance(mf, MF) and isinstance(convncf, ConvNCF)
    assert convncf.conv_layers[0].weight.shape == (4, 1, 2, 2)
    assert convncf.config.kernel_sizes == (2, 2, 2)  # 8 → 4 → 2 → 1
    history = catalog.load("convncf_history")
    assert history["epoch"].tolist() == [0, 1, 2]
    best = saved_info(catalog.load("convncf_model"))
    assert best.selection_metric == "ndcg@20" and best.recipe == "mf_identity"
    assert best.trained_in == (history.set_index("epoch")["precision"][best.epoch] if best.epoch else None)  # auto
    assert best.valid_metrics["ndcg@20"] == history.loc[history["epoch"] == best.epoch, "ndcg@20"].item()
    mf_best = saved_info(catalog.load("mf_model")).valid_metrics
    assert catalog.load("mf_history")["loss"].iloc[1:].notna().all() and mf_best["ndcg@10"] > 0.1


def test_evaluation_report_compares_both_models_by_both_protocols(trained):
    catalog = trained.catalog()
    report_dir = trained.root / "data/08_reporting"
    for name in ("training_curves.png", "metrics_at_k.png", "model_comparison.png"):
        pixels = matplotlib.image.imread(report_dir / name)
        assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 20, f"{name} is blank"
    assert catalog.load("dataset_statistics")["users"] == 943
    metrics = catalog.load("test_metrics_convncf")
    assert metrics["sampled"]["rows"] == 943 and metrics["full"]["users"] == 943
    assert metrics["precision"] == "fp32" and metrics["selection_metric"] == "ndcg@20"
    table = catalog.load("metrics_table")
    assert set(table["protocol"]) == {"sampled", "full"}
    assert (table["ci_low"] <= table["ConvNCF - MF"] + 1e-12).all() and (table["ConvNCF - MF"] <= table["ci_high"] + 1e-12).all()
    assert set(table["verdict"]) <= {"gain", "loss", "no significant difference"}
    per_user = catalog.load("per_user_metrics_convncf")
    sampled = per_user[per_user["protocol"] == "sampled"]
    assert len(sampled) == 943 and sampled["ndcg@10"].mean() == pytest.approx(metrics["sampled"]["ndcg@10"])
    report = catalog.load("evaluation_report")
    assert "ConvNCF ndcg@20" in report and "MF ndcg@10" in report and "selected on different metrics" in report
    models = catalog.load("model_table")
    assert set(models["model"]) == {"MF", "ConvNCF", "toppop", "itemknn", "userknn", "rp3beta", "ease", "ials"}
    assert (models["ci_low"] <= models["mean"] + 1e-12).all() and (models["mean"] <= models["ci_high"] + 1e-12).all()
    assert models["vs_best_baseline"].isna().sum() == 2 * 3 * 2  # the best baseline's own rows: 2 protocols × 3 K × 2 metrics
    assert report.rstrip().splitlines()[-1] == catalog.load("recommendation").strip()
    assert report.rstrip().splitlines()[-1].startswith("**Recommendation:** ")


def test_the_train_run_is_recorded_in_mlflow_with_parameters_curves_results_and_the_onnx_model(trained):
    (run,) = [run for run in trained.mlflow_runs() if run.info.run_name == "train"]
    assert run.info.status == "FINISHED"
    assert run.data.params["pretrain.embedding_size"] == "8" and run.data.params["convncf.recipe"] == "mf_identity"
    client = trained.mlflow_client()
    curve = client.get_metric_history(run.info.run_id, "tracked_metrics.convncf/valid/ndcg_at_20")
    history = trained.load("convncf_history")
    assert [(m.step, m.value) for m in curve] == list(zip(history["epoch"], history["ndcg@20"], strict=True))
    metrics = trained.load("test_metrics_convncf")
    provider = "CUDAExecutionProvider" if torch.cuda.is_available() else "CPUExecutionProvider"  # evaluation.device: auto
    assert metrics["engine"] == f"onnxruntime ({provider})"
    assert run.data.metrics["tracked_metrics.convncf/test/full/ndcg_at_10"] == pytest.approx(metrics["full"]["ndcg@10"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"convncf.onnx", "evaluation_report.md", "metrics_table.csv", "training_curves.png"} <= artifacts


def test_embedding_size_parameter_shapes_the_exported_graph(trained):
    graph = trained.load("convncf_onnx")
    metadata = {p.key: p.value for p in graph.metadata_props}
    assert metadata["embedding_size"] == "8" and metadata["n_users"] == "943"
    shapes = sorted(tuple(t.dims) for t in graph.graph.initializer if len(t.dims) == 2)
    assert (943, 8) in shapes and (1682, 8) in shapes  # TINY set pretrain.embedding_size to 8


def test_score_recommends_ten_unseen_items_to_every_user_with_raw_ids(trained):
    assert trained.load("onnx_validation")["largest_difference"] <= 1e-4
    trained.run("score")
    recs = pd.concat(part() for part in trained.load("recommendations").values())
    assert recs.groupby("user_id").size().eq(10).all()
    assert recs["user_id"].nunique() == len(trained.load("user_map"))
    raw = pd.read_csv(SHARED_DATASETS / "ml-100k/u.data", sep="\t", names=["user", "item", "rating", "ts"], dtype=str)
    assert not set(zip(recs["user_id"], recs["item_id"], strict=True)) & set(zip(raw["user"], raw["item"], strict=True))
    expected = "CUDAExecutionProvider" if torch.cuda.is_available() else "CPUExecutionProvider"  # score.device: auto
    assert trained.load("scoring_report")["provider"] == expected


def test_score_on_a_local_dask_cluster_writes_the_same_recommendations_in_parquet_parts(trained):
    folder = trained.root / "data/07_model_output/recommendations"
    trained.run("score", params={"score": {"partition_users": 256}})
    in_process = pd.read_parquet(folder).sort_values(["user_id", "rank"], ignore_index=True)
    trained.run("score", params={"score": {"cluster": "local:2", "partition_users": 200}})
    parts = sorted(p.name for p in folder.iterdir())
    assert parts == ["_SUCCESS", *[f"part-0000{i}.parquet" for i in range(5)]]  # 943 users in 5 parts; old 4 gone
    on_cluster = pd.read_parquet(folder).sort_values(["user_id", "rank"], ignore_index=True)
    assert on_cluster.groupby("user_id").size().eq(10).all() and on_cluster["user_id"].nunique() == 943
    pd.testing.assert_frame_equal(on_cluster[["user_id", "rank", "item_id"]], in_process[["user_id", "rank", "item_id"]])
    np.testing.assert_allclose(on_cluster["score"], in_process["score"], atol=1e-6)
    assert trained.load("scoring_report")["cluster"] == "local:2"


def test_readme_onnxruntime_snippet_runs_on_the_outputs(trained):
    readme = (PROJECT_ROOT / "README.md").read_text()
    snippet = readme.split("## Scoring with plain ONNX Runtime")[1].split("```python")[1].split("```")[0]
    assert "kedro" not in snippet and "torch" not in snippet
    previous = os.getcwd()
    os.chdir(trained.root)
    try:
        exec(compile(snippet, "README.md", "exec"), {})
    finally:
        os.chdir(previous)


def test_notebook_runs_against_the_outputs(trained):
    notebook = nbformat.read(PROJECT_ROOT / "notebooks/explore_results.ipynb", as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")  # committed clean
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(trained.root)}}).execute()
    (table,) = [out for out in notebook.cells[-1]["outputs"] if out["output_type"] == "execute_result"]
    assert "item_id" in table["data"]["text/plain"] and "rank" in table["data"]["text/plain"]


def test_evaluation_reruns_alone_from_the_saved_models(trained):
    (trained.root / "data/08_reporting/metrics_table.csv").unlink()
    trained.run("evaluation", params={"evaluation": {"protocols": ["sampled"]}})
    assert set(trained.load("metrics_table")["protocol"]) == {"sampled"}


def test_resume_after_kill_9_matches_an_uninterrupted_run(kedro_project):
    params = {"pretrain": {"embedding_size": 8, "batch_size": 32, "training": {"epochs": 5, "threads": 1}}}
    project = kedro_project("ml-100k")
    project.run("ingestion")
    project.run("matrix")
    cli_params = "pretrain.embedding_size=8,pretrain.training.epochs=5,pretrain.batch_size=32,pretrain.training.threads=1"
    interrupted_at = project.kill_9_after_epoch("pretrain", cli_params, "data/06_models/mf_checkpoint.pt", 2)
    assert 2 <= interrupted_at < 5, "the run was not interrupted mid-way"

    project.run("pretrain", params=params)  # resume: true is the default
    resumed, resumed_history = project.load("mf_model"), project.load("mf_history")

    fresh = {"pretrain": {**params["pretrain"], "training": {**params["pretrain"]["training"], "resume": False}}}
    project.run("pretrain", params=fresh)
    uninterrupted = project.load("mf_model")
    assert saved_info(resumed).epoch == saved_info(uninterrupted).epoch
    assert_same_weights(resumed, uninterrupted)
    pd.testing.assert_series_equal(resumed_history["ndcg@10"], project.load("mf_history")["ndcg@10"])


def assert_same_weights(saved, other):
    first, second = load_model(saved), load_model(other)
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_export_checks_two_stage_ranking_and_score_uses_it_on_request(trained):
    check = trained.load("retrieval_validation")
    assert [row["shortlist"] for row in check["shortlists"]] == [50, 100, 200, 400, 800] and check["users"] == 300
    for row in check["shortlists"]:
        assert 0 <= row["recall@10_of_exhaustive"] <= 1 and row["ci_low"] <= row["difference"] <= row["ci_high"]
    recalls = [row["recall@10_of_exhaustive"] for row in check["shortlists"]]
    assert recalls == sorted(recalls)  # a longer shortlist holds at least as much of the exhaustive top-10
    chosen = check["chosen"]
    assert chosen is None or any(row["shortlist"] == chosen and row["recall@10_of_exhaustive"] >= 0.99
                                 for row in check["shortlists"])

    trained.run("score", params={"score": {"candidates": {"retrieve": 100}}})
    recs = pd.concat(part() for part in trained.load("recommendations").values())
    assert recs.groupby("user_id").size().eq(10).all() and recs["user_id"].nunique() == 943
    known = trained.load("known_interactions")
    users = trained.load("user_map").set_index("raw_id")["index"]
    items = trained.load("item_map").set_index("raw_id")["index"]
    assert not np.asarray(known[users.loc[recs["user_id"]].to_numpy(), items.loc[recs["item_id"]].to_numpy()]).any()
    assert "shortlist of 100" in trained.load("scoring_report")["candidates"]

    with pytest.raises(Exception, match=r"a shortlist of 60 was not checked to rank validation like every item"):
        trained.run("evaluation", params={**TINY, "evaluation": {"candidates": {"retrieve": 60}}})
    accepted = [row["shortlist"] for row in check["shortlists"]
                if row["recall@10_of_exhaustive"] >= check["min_recall"] and row["ci_low"] <= 0 <= row["ci_high"]]
    assert accepted, "the tiny model's shortlists should rank validation like every item at some size"
    trained.run("evaluation", params={**TINY, "evaluation": {"candidates": {"retrieve": accepted[0]}}})
    metrics = trained.load("test_metrics_convncf")
    assert metrics["full_ranking_candidates"].startswith(f"two stages, shortlist {accepted[0]} (approximate")
    assert metrics["full"]["users"] == 943
    full_rows = trained.load("model_table").query("protocol == 'full'")
    assert set(full_rows.loc[full_rows["model"] == "ConvNCF", "candidates"]) == {metrics["full_ranking_candidates"]}
