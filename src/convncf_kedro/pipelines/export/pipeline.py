"""ONNX export pipeline wiring."""

from kedro.pipeline import Node, Pipeline

from .nodes import (
    check_retrieval,
    export_convncf,
    export_convncf_retrieval,
    quantize_convncf,
    validate_onnx,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                export_convncf,
                inputs=["convncf_model", "user_map", "item_map", "ingestion_manifest", "params:export"],
                outputs="convncf_onnx",
                name="export_convncf_onnx",
            ),
            Node(
                export_convncf_retrieval,
                inputs=["convncf_model", "user_map", "item_map", "ingestion_manifest", "params:export"],
                outputs="convncf_retrieval_onnx",
                name="export_convncf_retrieval_onnx",
            ),
            Node(
                check_retrieval,
                inputs=["convncf_onnx", "convncf_retrieval_onnx", "train_matrix", "valid", "ingestion_manifest",
                        "params:export", "params:evaluation"],
                outputs="retrieval_validation",
                name="check_two_stage_ranking",
            ),
            Node(
                quantize_convncf,
                inputs=["convncf_onnx", "valid", "valid_negatives", "params:export"],
                outputs="convncf_int8_onnx",
                name="quantize_convncf_int8",
            ),
            Node(
                validate_onnx,
                inputs=["convncf_onnx", "convncf_int8_onnx", "convncf_model", "valid", "valid_negatives", "test",
                        "test_negatives", "ingestion_manifest", "params:export"],
                outputs="onnx_validation",
                name="validate_onnx_against_pytorch",
            ),
        ],
        tags=["export"],
    )
