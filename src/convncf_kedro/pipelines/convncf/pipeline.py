"""ConvNCF training pipeline wiring."""

from kedro.pipeline import Node, Pipeline

from .nodes import train_convncf


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                train_convncf,
                inputs=[
                    "train_matrix", "valid", "valid_negatives", "mf_model", "convncf_resume_checkpoint",
                    "params:convncf",
                ],
                outputs=["convncf_checkpoint", "convncf_model", "convncf_history"],
                name="train_convncf_bpr",
            )
        ],
        tags=["convncf"],
    )
