"""MF pretraining pipeline wiring."""

from kedro.pipeline import Node, Pipeline

from .nodes import track_mf_training, train_mf


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                train_mf,
                inputs=["train_matrix", "valid", "valid_negatives", "mf_resume_checkpoint", "ingestion_manifest",
                        "params:pretrain"],
                outputs=["mf_checkpoint", "mf_model", "mf_history"],
                name="train_mf_bpr",
            ),
            Node(track_mf_training, "mf_history", "mf_training_metrics", name="track_mf_training"),
        ],
        tags=["pretrain"],
    )
