"""Project hooks: check parameters before a run, say where the outputs went after it."""

from __future__ import annotations

import logging
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.framework.project import pipelines

from convncf_kedro import pipeline_registry
from convncf_kedro.params import validate_parameters

logger = logging.getLogger(__name__)


class ValidateParametersHook:
    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        validate_parameters(catalog.load("parameters"))


class StudyShapeHook:
    """Give the study's seeds and recipes (conf files and ``--params``) to the pipeline registry, which Kedro
    1.7 calls right after the context is created; a changed shape registers the pipelines again."""

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        if pipeline_registry.use_study_parameters(context.params.get("study")):
            pipelines.configure(pipeline_registry.__name__)


class ReportOutputsHook:
    """After a run, say where its results went (files only; in-memory datasets have no place)."""

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], run_result: Any, pipeline: Any, catalog: Any) -> None:
        places = []
        for name in sorted(pipeline.all_outputs()):
            dataset = catalog.get(name)
            described = dataset._describe() if dataset is not None else {}  # noqa: SLF001 (Kedro's own description)
            place = described.get("filepath") or described.get("path")
            if place:
                places.append(f"  {name}: {place}")
        if places:
            logger.info("Outputs of this run:\n%s", "\n".join(places))
