"""Every ConvNCF recipe at the shipped sizes and precision (d = 64, C = 32, fp32) on a small real slice.

The slice is MovieLens 100K's first 30 users (3,941 ratings, read from ../shared/datasets into a
temporary folder). Each recipe trains, validates, exports and scores; the authors' recipe keeps
positive and negative scores apart (it does not collapse to a constant); a ConvNCF run killed with
SIGKILL resumes to exactly the uninterrupted result, across the authors' phase change.
"""


import numpy as np
import pandas as pd
import pytest
import torch
from kedro_project import KedroProject, slice_project

from convncf_kedro.errors import StaleModelError
from convncf_kedro.models import ConvNCF, load_model, saved_info
from convncf_kedro.ranking.sampled import candidate_matrix
from convncf_kedro.training import runtime

pytestmark = pytest.mark.e2e

FAST = {  # the shipped defaults, with fewer epochs
    "pretrain": {"training": {"epochs": 40}},
    "convncf": {"training": {"epochs": 2}},
    "evaluation": {"protocols": ["sampled"]},
    "baselines": {"trials": 2},
}
RESIDUAL_TWO_PHASES = {"phases": [
    {"epochs": 1, "optimizer": "adagrad", "lr_embedding": 0.0, "lr_tower": 0.01},
    {"optimizer": "adagrad", "lr_embedding": 0.001, "lr_tower": 0.01},
]}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> KedroProject:
    project = slice_project(tmp_path_factory.mktemp("slice"))
    for pipeline in ("ingestion", "matrix", "pretrain", "baselines"):
        project.run(pipeline, params=FAST)
    return project


def recipe_params(recipe: str, **convncf) -> dict:
    params = {**FAST, "convncf": {**FAST["convncf"], "recipe": recipe, **convncf}}
    if recipe == "residual":
        params["convncf"]["recipes"] = {"residual": RESIDUAL_TWO_PHASES}
    return params


def validation_scores(project: KedroProject, saved: dict) -> np.ndarray:
    """(users, 1 + N) scores of each validation item (column 0) and its negatives."""
    users, items = candidate_matrix(project.load("valid"), project.load("valid_negatives"))
    with torch.no_grad():
        scores = load_model(saved)(torch.from_numpy(np.repeat(users, items.shape[1])), torch.from_numpy(items.ravel()))
    return scores.numpy().reshape(items.shape)


def assert_precision_auto_decided(history: pd.DataFrame, info) -> None:
    """`precision: auto` (shipped): bf16 only on bf16 hardware, and there only where its first epoch validated like
    fp32's to 3 decimals and trained faster; the selected epoch says what it was trained in."""
    kept = history.set_index("epoch")["precision"]
    if runtime.native_bf16(torch.device("cpu")):
        first = history.set_index("epoch").loc[1]
        same = round(first["bf16_ndcg@10"], 3) == round(first["fp32_ndcg@10"], 3)
        faster = first["bf16_triples_per_second"] > first["fp32_triples_per_second"]
        assert set(kept[1:]) == {"bf16" if same and faster else "fp32"}
    else:
        assert set(kept[1:]) == {"fp32"} and "bf16_ndcg@10" not in history
    assert info.trained_in == (kept[info.epoch] if info.epoch else None)


@pytest.mark.parametrize("recipe", ["authors", "residual", "mf_identity"])
def test_each_recipe_trains_validates_exports_and_scores_at_the_shipped_sizes(pretrained, recipe):
    pretrained.run("convncf", params=recipe_params(recipe))
    saved = pretrained.load("convncf_model")
    model, info = load_model(saved), saved_info(saved)
    assert isinstance(model, ConvNCF) and model.config.embedding_size == 64 and model.config.channels == 32
    assert len(model.conv_layers) == 6 and info.validated_in == "fp32" and info.recipe == recipe
    history = pretrained.load("convncf_history")
    assert_precision_auto_decided(history, info)
    assert history["epoch"].tolist() == [0, 1, 2] and history["phase"].tolist() == (
        [0, 0, 1] if recipe in ("authors", "residual") else [0, 0, 0])

    scores = validation_scores(pretrained, saved)
    positive, negatives = scores[:, 0], scores[:, 1:]
    assert negatives.std(axis=1).min() > 1e-3  # no constant score: candidates are told apart
    assert (positive[:, None] > negatives).mean() > 0.6  # held-out items beat most negatives (random: 0.5)

    pretrained.run("export", params=recipe_params(recipe))
    validation = pretrained.load("onnx_validation")
    assert validation["largest_difference"] <= validation["tolerance"]
    int8 = validation["variants"]["int8"]
    same = all(round(int8[m], 3) == round(validation["fp32"][m], 3) for m in ("ndcg@10", "hr@10"))
    assert int8["accepted"] == same
    pretrained.run("evaluation", params=recipe_params(recipe))  # ranks with the exported graph
    assert pretrained.load("test_metrics_convncf")["recipe"] == recipe
    pretrained.run("score")
    report = pretrained.load("scoring_report")
    assert report["precision"] == ("int8" if same and int8["speed_vs_fp32"] > 1 else "fp32")
    recommendations = pd.read_parquet(pretrained.root / "data/07_model_output/recommendations")
    assert recommendations.groupby("user_id").size().eq(10).all() and recommendations["user_id"].nunique() == 30


def test_a_model_from_another_split_is_refused_by_evaluation_and_export(pretrained):
    pretrained.run("convncf", params=recipe_params("mf_identity"))
    pretrained.run("ingestion", params={"ingestion": {"rating_threshold": 4}})  # conf changed, models not retrained
    pretrained.run("matrix")
    try:
        for stage in ("evaluation", "export", "convncf"):  # convncf: its MF is the stale one
            with pytest.raises(StaleModelError, match=r"trained on other data .* Re-run the training stages"):
                pretrained.run(stage, params=FAST)
    finally:
        pretrained.run("ingestion")
        pretrained.run("matrix")
        pretrained.run("baselines", params=FAST)


def test_evaluation_refuses_a_graph_exported_from_other_weights(pretrained):
    pretrained.run("convncf", params=recipe_params("mf_identity"))
    pretrained.run("export", params=FAST)
    pretrained.run("convncf", params=recipe_params("authors"))  # other weights, not exported
    with pytest.raises(StaleModelError, match=r"exported from other weights .* re-run export"):
        pretrained.run("evaluation", params=FAST)


def test_convncf_resumes_after_kill_9_to_the_uninterrupted_result(pretrained):
    # precision pinned: auto picks by measured speed, so two runs on a differently loaded machine may pick differently
    # (auto's choice surviving a resume: tests/training/test_loop.py)
    cli = ("convncf.recipe=authors,convncf.training.epochs=3,convncf.training.validate_every=2,"
           "convncf.training.precision=fp32,pretrain.training.epochs=40")
    recorded = len(pretrained.mlflow_runs())
    interrupted_at = pretrained.kill_9_after_epoch("convncf", cli, "data/06_models/convncf_checkpoint.pt", 1)
    assert 1 <= interrupted_at < 3, "the run was not interrupted mid-way"
    # `kedro run` with no MLFLOW_TRACKING_URI records into mlflow.db in the folder it starts from
    assert len(pretrained.mlflow_runs()) == recorded + 1 and pretrained.mlflow_runs()[0].info.run_name == "convncf"

    params = recipe_params("authors", training={"epochs": 3, "validate_every": 2, "precision": "fp32"})  # checks: 2, 3
    pretrained.run("convncf", params=params)  # resumes (resume: true is the default)
    resumed, resumed_history = pretrained.load("convncf_model"), pretrained.load("convncf_history")
    fresh = recipe_params("authors", training={"epochs": 3, "validate_every": 2, "precision": "fp32", "resume": False})
    pretrained.run("convncf", params=fresh)
    uninterrupted = pretrained.load("convncf_model")
    assert saved_info(resumed).epoch == saved_info(uninterrupted).epoch
    for (name, a), (_, b) in zip(load_model(resumed).state_dict().items(), load_model(uninterrupted).state_dict().items(),
                                 strict=True):
        assert torch.equal(a, b), name
    pd.testing.assert_series_equal(resumed_history["ndcg@10"], pretrained.load("convncf_history")["ndcg@10"])


def test_bf16_evaluation_of_mf_is_used_only_where_it_ranks_like_fp32(pretrained):
    pretrained.run("convncf", params=recipe_params("mf_identity"))
    pretrained.run("export", params=FAST)
    pretrained.run("evaluation", params={**FAST, "evaluation": {"protocols": ["sampled"], "precision": "bf16"}})
    mf = pretrained.load("test_metrics_mf")  # ranked by PyTorch, where bf16 may apply
    check = mf["precision_check"]["valid_ndcg@10"]
    assert mf["precision"] == ("bf16" if round(check["fp32"], 3) == round(check["bf16"], 3) else "fp32")
    convncf = pretrained.load("test_metrics_convncf")  # ranked by its exported fp32 graph
    assert convncf["precision"] == "fp32" and convncf["engine"].startswith("onnxruntime")
    assert "ConvNCF" in pretrained.load("evaluation_report")


def test_a_convncf_run_alone_records_its_training_curve_in_mlflow(pretrained):
    pretrained.run("convncf", params=recipe_params("mf_identity"))
    run = pretrained.mlflow_runs()[0]
    assert run.info.run_name == "convncf" and run.info.status == "FINISHED"
    curve = pretrained.mlflow_client().get_metric_history(run.info.run_id, "tracked_metrics.convncf/valid/ndcg_at_10")
    history = pretrained.load("convncf_history")
    assert [(m.step, m.value) for m in curve] == list(zip(history["epoch"], history["ndcg@10"], strict=True))
