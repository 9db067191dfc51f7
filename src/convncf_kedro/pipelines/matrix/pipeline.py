"""Sparse-matrix pipeline wiring."""

from kedro.pipeline import Node, Pipeline

from .nodes import build_matrices, dataset_statistics


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                build_matrices,
                inputs=["train", "valid", "test", "user_map", "item_map", "ingestion_manifest"],
                outputs=["train_matrix", "known_interactions"],
                name="build_matrices",
            ),
            Node(
                dataset_statistics,
                inputs=[
                    "train_matrix", "valid", "test", "valid_negatives", "test_negatives",
                    "cleaning_report", "split_report", "ingestion_manifest",
                ],
                outputs="dataset_statistics",
                name="dataset_statistics",
            ),
        ],
        tags=["matrix"],
    )
