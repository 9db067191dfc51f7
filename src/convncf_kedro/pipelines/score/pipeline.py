"""Scoring pipeline wiring."""

from kedro.pipeline import Node, Pipeline

from .nodes import score_users


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                score_users,
                inputs=[
                    "convncf_onnx", "convncf_int8_onnx", "onnx_validation", "convncf_retrieval_onnx",
                    "retrieval_validation", "user_map", "item_map",
                    "known_interactions", "users_to_score", "ingestion_manifest", "params:score",
                ],
                outputs=["recommendations", "scoring_report"],
                name="score_users_with_onnxruntime",
            )
        ],
        tags=["score"],
    )
