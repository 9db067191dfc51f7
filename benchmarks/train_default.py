"""The README's main job, measured: `train` with the shipped parameters on MovieLens 100K, stage by stage.

Run: python -m benchmarks.train_default
Runs the stages of `kedro run --pipeline train` (ingestion, matrix, pretrain, convncf, export, evaluation)
in a fresh project under benchmarks/.work with the shipped conf and ml-100k from ../shared/datasets, and
writes benchmarks/results/train_default.json: seconds per stage, the best epochs, the test metrics table
(ConvNCF − MF with paired bootstrap intervals), the export's checks (INT8 variant accepted or not) and the machine.
"""

from __future__ import annotations

import json
import resource
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks._gemm import commit, machine
from convncf_kedro.models import saved_info
from convncf_kedro.pipeline_registry import TRAIN_STAGES
from tests.kedro_project import KedroProject

RESULTS = Path(__file__).resolve().parent / "results"
WORK = Path(__file__).resolve().parent / ".work" / "train-default"


def main() -> dict:
    shutil.rmtree(WORK, ignore_errors=True)
    project = KedroProject(WORK)
    project.use_dataset("ml-100k")
    seconds = {}
    for stage in TRAIN_STAGES:
        started = time.perf_counter()
        project.run(stage)
        seconds[stage] = round(time.perf_counter() - started, 1)
        print(stage, seconds[stage], "s")  # noqa: T201
    catalog = project.catalog()
    models = {name: saved_info(catalog.load(f"{name}_model")) for name in ("mf", "convncf")}
    result = {
        "script": "benchmarks/train_default.py", "dataset": "ml-100k (shared/datasets), shipped parameters",
        "seconds": {**seconds, "total": round(sum(seconds.values()), 1)},
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "best": {name: {"epoch": info.epoch, "recipe": info.recipe, "trained_in": info.trained_in,
                        "valid": info.valid_metrics} for name, info in models.items()},
        "convncf_epochs_run": int(catalog.load("convncf_history")["epoch"].max()),
        "mf_epochs_run": int(catalog.load("mf_history")["epoch"].max()),
        "metrics_table": catalog.load("metrics_table").to_dict(orient="records"),
        "onnx_validation": catalog.load("onnx_validation"),
        "full_ranking_seconds": {name: catalog.load(f"test_metrics_{name}")["full"]["seconds"] for name in ("mf", "convncf")},
        "machine": machine(),
        "commit": commit(), "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "train_default.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    return result


if __name__ == "__main__":
    print(json.dumps(main(), indent=2, default=str))  # noqa: T201
