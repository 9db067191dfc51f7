"""Project pipelines: each stage on its own, and `train`, the whole job from raw data on.

Stages are listed here rather than found by ``find_pipelines``: Kedro 1.7 only imports the
pipeline named on the command line, which would leave the composite `train` empty.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline

from convncf_kedro.pipelines import convncf, evaluation, export, ingestion, matrix, pretrain, score

STAGES = {
    "ingestion": ingestion, "matrix": matrix, "pretrain": pretrain, "convncf": convncf,
    "evaluation": evaluation, "export": export, "score": score,
}
TRAIN_STAGES = ["ingestion", "matrix", "pretrain", "convncf", "evaluation", "export"]


def register_pipelines() -> dict[str, Pipeline]:
    pipelines = {name: module.create_pipeline() for name, module in STAGES.items()}
    pipelines["train"] = sum((pipelines[name] for name in TRAIN_STAGES), Pipeline([]))
    pipelines["__default__"] = pipelines["train"]
    return pipelines
