"""Sparse-matrix pipeline wiring."""

from kedro.pipeline import Node, Pipeline

from .nodes import build_train_matrix, dataset_statistics


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                build_train_matrix,
                inputs=["train", "user_map", "item_map"],
                outputs="train_matrix",
                name="build_train_matrix",
            ),
            Node(
                dataset_statistics,
                inputs=[
                    "train_matrix", "valid", "test", "valid_negatives", "test_negatives",
                    "cleaning_report", "split_report",
                ],
                outputs="dataset_statistics",
                name="dataset_statistics",
            ),
        ],
        tags=["matrix"],
    )
