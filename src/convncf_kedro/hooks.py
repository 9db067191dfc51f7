"""Project hooks: one run per project folder, parameters checked before a run, where the outputs went after it."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from kedro.framework.hooks import hook_impl

from convncf_kedro.baselines import registry
from convncf_kedro.config import study_members
from convncf_kedro.config.params import IngestionParams, parse_params, validate_parameters
from convncf_kedro.interactions.lineage import check_raw_unchanged

logger = logging.getLogger(__name__)

RUN_LOCK = "data/.kedro-run.lock"  # held by the running `kedro run` of this project folder
RUN_INFO = "data/.kedro-run.json"  # who holds it: pid, pipelines, start time


class ProjectLockHook:
    """One `kedro run` at a time per project folder: a second one would write the same outputs, so it stops at
    once naming the running one. The MLflow SQLite store is created under a lock too, before runs can race."""

    def __init__(self) -> None:
        self._lock: FileLock | None = None

    @hook_impl(tryfirst=True)
    def after_context_created(self, context: Any) -> None:
        context.config_loader.config_patterns.setdefault("mlflow", ["mlflow*", "mlflow*/**"])  # as kedro-mlflow reads it
        server = (context.config_loader.get("mlflow") or {}).get("server") or {}
        uri = os.environ.get("MLFLOW_TRACKING_URI") or server.get("mlflow_tracking_uri")
        if uri and uri.startswith("sqlite:///"):
            store = Path(uri.removeprefix("sqlite:///"))
            with FileLock(f"{store}.lock", timeout=120):
                if not store.exists():  # created once; a second process waits, then finds it
                    import mlflow

                    mlflow.MlflowClient(tracking_uri=uri).search_experiments(max_results=1)

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        root = Path(run_params["project_path"])
        (root / RUN_LOCK).parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(root / RUN_LOCK, timeout=0)
        try:
            lock.acquire()
        except Timeout:
            try:
                holder = json.loads((root / RUN_INFO).read_text())
                who = (f"pid {holder['pid']}, kedro run --pipeline {holder['pipelines']} started "
                       f"{holder['started']}")
            except (OSError, ValueError, KeyError):
                who = "another process"
            raise RuntimeError(
                f"another kedro run is using this project folder ({who}) and would write the same outputs: wait "
                f"for it to end, or stop it (its lock: {root / RUN_LOCK})"
            ) from None
        self._lock = lock
        (root / RUN_INFO).write_text(json.dumps({
            "pid": os.getpid(), "pipelines": ",".join(run_params.get("pipeline_names") or ["__default__"]),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        }))

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], run_result: Any, pipeline: Any, catalog: Any) -> None:
        self.release()

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        self.release()


class ValidateParametersHook:
    """Check every parameter before any work (and, for a study, that its conf names the members its pipeline was
    registered with); a run that fails the check is marked FAILED in MLflow (Kedro calls no error hook for a failure
    before the run starts) and gives the project lock back."""

    def __init__(self, lock: ProjectLockHook) -> None:
        self._lock = lock
        self._context: Any = None

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        self._context = context

    @hook_impl(trylast=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        import mlflow

        try:
            members = None
            if "study" in (run_params.get("pipeline_names") or []):
                members = study_members.check_registered(self._context.config_loader, run_params.get("env"),
                                                         Path(run_params["project_path"]))
            parameters = catalog.load("parameters")
            parsed = validate_parameters(parameters, members.recipes if members else None)
            if "baselines" in parsed:
                registry.check_settings(parsed["baselines"])
            _check_raw_data_unchanged(pipeline, catalog, run_params, parameters)
        except Exception:
            if mlflow.active_run() is not None:
                mlflow.end_run("FAILED")
            self._lock.release()
            raise
        if members is not None and mlflow.active_run() is not None:  # the study's shape beside its parameters
            mlflow.log_params({"study.seeds": str(members.seeds), "study.recipes": str(members.recipes)})


def _check_raw_data_unchanged(pipeline: Any, catalog: Any, run_params: dict[str, Any], parameters: dict) -> None:
    """A run that reads an earlier ingestion's outputs (every stage after it) stops if the raw files changed since."""
    if "ingestion_manifest" in pipeline.all_outputs() or "ingestion_manifest" not in catalog:
        return
    if not catalog.exists("ingestion_manifest"):
        return
    check_raw_unchanged(catalog.load("ingestion_manifest"), ",".join(run_params.get("pipeline_names") or ["__default__"]),
                        parse_params(IngestionParams, parameters["ingestion"], "ingestion").on_raw_change)


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
