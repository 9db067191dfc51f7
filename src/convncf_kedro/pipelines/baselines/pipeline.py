"""Baselines pipeline wiring."""

from kedro.pipeline import Node, Pipeline

from .nodes import tune_baselines


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                tune_baselines,
                inputs=["train_matrix", "valid", "valid_negatives", "ingestion_manifest", "previous_baseline_models",
                        "params:baselines"],
                outputs=["baseline_models", "baseline_trials", "baseline_tracked_metrics"],
                name="tune_baselines_on_validation",
            ),
        ],
        tags=["baselines"],
    )
