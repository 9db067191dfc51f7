"""Ingestion pipeline wiring."""

from kedro.pipeline import Node, Pipeline

from .nodes import (
    clean_and_index,
    parse_raw_files,
    sample_evaluation_negatives,
    seal_ingestion,
    split_interactions,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                parse_raw_files,
                inputs=["raw_interactions", "params:ingestion"],
                outputs=["raw_log", "given_test_negatives_raw", "given_negatives_report", "raw_files_read"],
                name="parse_raw_files",
            ),
            Node(
                clean_and_index,
                inputs=["raw_log", "given_test_negatives_raw", "given_negatives_report", "params:ingestion"],
                outputs=["interactions", "given_test_negatives", "user_map", "item_map", "cleaning_report"],
                name="clean_and_index_interactions",
            ),
            Node(
                split_interactions,
                inputs=["interactions", "item_map", "params:ingestion"],
                outputs=["train", "valid", "test", "split_report"],
                name="split_leave_one_out",
            ),
            Node(
                sample_evaluation_negatives,
                inputs=["train", "valid", "test", "given_test_negatives", "user_map", "item_map", "params:ingestion"],
                outputs=["valid_negatives", "test_negatives"],
                name="sample_evaluation_negatives",
            ),
            Node(  # last: later stages trust only outputs this manifest records
                seal_ingestion,
                inputs=["user_map", "item_map", "train", "valid", "test", "valid_negatives", "test_negatives",
                        "raw_files_read"],
                outputs="ingestion_manifest",
                name="seal_ingestion",
            ),
        ],
        tags=["ingestion"],
    )
