"""Project pipelines: each stage on its own; `train`, the whole job from raw data on; `study`, every
variant on several seeds.

Stages are listed here rather than found by ``find_pipelines``: Kedro 1.7 only imports the
pipeline named on the command line, which would leave the composite `train` empty.

The study's shape (which seeds, which recipes) is a parameter that decides the nodes, so it must be known
when pipelines are registered: :class:`~convncf_kedro.hooks.StudyShapeHook` hands over the run's
parameters (conf files and ``--params``) before Kedro registers them; commands that create no context
(``kedro registry list``) read the conf files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.framework.project import settings
from kedro.pipeline import Pipeline
from kedro.utils import find_kedro_project

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

_study_parameters: dict[str, Any] | None = None


def use_study_parameters(parameters: dict[str, Any] | None) -> bool:
    """Shape the study from the run's `study` parameters; True when that changes the registered pipelines."""
    global _study_parameters  # noqa: PLW0603 (set once per run by the hook, before registration)
    changed = parameters != _study_parameters
    _study_parameters = parameters
    return changed


def _study_shape() -> tuple[list[int], list[str]]:
    parameters = _study_parameters
    if parameters is None:
        root = find_kedro_project(Path.cwd()) or Path.cwd()  # the project above the working folder
        loader = settings.CONFIG_LOADER_CLASS(conf_source=str(root / settings.CONF_SOURCE),
                                              **settings.CONFIG_LOADER_ARGS)
        parameters = loader["parameters"].get("study") or {}
    return list(parameters.get("seeds") or []), list(parameters.get("recipes") or [])


def register_pipelines() -> dict[str, Pipeline]:
    pipelines = {name: module.create_pipeline() for name, module in STAGES.items()}
    pipelines["train"] = sum((pipelines[name] for name in TRAIN_STAGES), Pipeline([]))
    pipelines["study"] = (pipelines["ingestion"] + pipelines["matrix"] + pipelines["baselines"]
                          + study.create_pipeline(*_study_shape()))
    pipelines["__default__"] = pipelines["train"]
    return pipelines
