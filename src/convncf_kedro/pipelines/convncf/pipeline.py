"""ConvNCF training pipeline wiring."""

from kedro.pipeline import Node, Pipeline

from .nodes import track_convncf_training, train_convncf


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                train_convncf,
                inputs=[
                    "train_matrix", "valid", "valid_negatives", "mf_model", "convncf_resume_checkpoint",
                    "ingestion_manifest", "params:convncf",
                ],
                outputs=["convncf_checkpoint", "convncf_model", "convncf_history"],
                name="train_convncf_bpr",
            ),
            Node(track_convncf_training, "convncf_history", "convncf_training_metrics", name="track_convncf_training"),
        ],
        tags=["convncf"],
    )
