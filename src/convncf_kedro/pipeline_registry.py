"""Project pipelines: each stage on its own; `train`, the whole job from raw data on; `study`, every
variant on several seeds.

Stages are listed here rather than found by ``find_pipelines``: Kedro 1.7 only imports the
pipeline named on the command line, which would leave the composite `train` empty.

The study's members (which seeds, which recipes) decide its nodes, so they are not parameters: they are read from
``conf/<env>/study.yml`` here, the same way by every command (see :mod:`convncf_kedro.config.study_members`).
"""

from __future__ import annotations

from kedro.pipeline import Pipeline

from convncf_kedro.config import study_members
from convncf_kedro.pipelines import (
    baselines,
    convncf,
    evaluation,
    export,
    ingestion,
    matrix,
    pretrain,
    score,
    study,
)

STAGES = {
    "ingestion": ingestion, "matrix": matrix, "pretrain": pretrain, "convncf": convncf, "baselines": baselines,
    "evaluation": evaluation, "export": export, "score": score,
}
# evaluation ranks with the exported graph and beside the baselines: it runs last
TRAIN_STAGES = ["ingestion", "matrix", "pretrain", "convncf", "export", "baselines", "evaluation"]

def register_pipelines() -> dict[str, Pipeline]:
    pipelines = {name: module.create_pipeline() for name, module in STAGES.items()}
    pipelines["train"] = sum((pipelines[name] for name in TRAIN_STAGES), Pipeline([]))
    pipelines["study"] = (pipelines["ingestion"] + pipelines["matrix"] + pipelines["baselines"]
                          + study.create_pipeline(study_members.registered()))
    pipelines["__default__"] = pipelines["train"]
    return pipelines
