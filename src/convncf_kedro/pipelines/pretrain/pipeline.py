"""MF pretraining pipeline wiring."""

from kedro.pipeline import Node, Pipeline

from .nodes import train_mf


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                train_mf,
                inputs=["train_matrix", "valid", "valid_negatives", "mf_resume_checkpoint", "params:pretrain"],
                outputs=["mf_checkpoint", "mf_model", "mf_history"],
                name="train_mf_bpr",
            )
        ],
        tags=["pretrain"],
    )
