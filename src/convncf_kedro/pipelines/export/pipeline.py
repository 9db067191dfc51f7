"""ONNX export pipeline wiring."""

from kedro.pipeline import Node, Pipeline

from .nodes import export_convncf, quantize_convncf, validate_onnx


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
