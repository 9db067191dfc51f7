"""The README's main job, measured: `kedro run --pipeline train` with the shipped parameters on MovieLens 100K.

Run: python -m benchmarks.train_default
Runs the README's command itself, in a subprocess (its start-up counted), in a fresh project under benchmarks/.work
with the shipped conf and ml-100k from ../shared/datasets, and writes benchmarks/results/train_default.json: the
command's wall time, the seconds of each stage (ingestion, matrix, pretrain, convncf, export, baselines, evaluation:
its nodes' times, from the run's log, to the second), the best epochs, the test metrics table (ConvNCF − MF with
paired bootstrap intervals), the export's checks (INT8 variant accepted or not) and the machine.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks._gemm import commit, machine
from convncf_kedro.models import saved_info
from convncf_kedro.pipeline_registry import STAGES, TRAIN_STAGES
from tests.kedro_project import KedroProject

RESULTS = Path(__file__).resolve().parent / "results"
WORK = Path(__file__).resolve().parent / ".work" / "train-default"
NODE_STARTS = re.compile(r"^(\d\d):(\d\d):(\d\d) INFO kedro\.pipeline\.node: Running node: ([\w.]+):", re.MULTILINE)


def stage_seconds(log: str, ended: time.struct_time) -> dict[str, float]:
    """Each stage's nodes' seconds: a node runs from its "Running node" line to the next one, the last to the end of
    the command (local time, as the log's); its start-up is in no stage."""
    stage_of = {node.name: stage for stage in TRAIN_STAGES for node in STAGES[stage].create_pipeline().nodes}
    starts = [(int(h) * 3600 + int(m) * 60 + int(s), name) for h, m, s, name in NODE_STARTS.findall(log)]
    ends = [start for start, _ in starts[1:]] + [ended.tm_hour * 3600 + ended.tm_min * 60 + ended.tm_sec]
    seconds = dict.fromkeys(TRAIN_STAGES, 0.0)
    for (start, name), end in zip(starts, ends, strict=True):
        seconds[stage_of[name]] += (end - start) % 86_400  # past midnight
    return seconds


def main() -> dict:
    shutil.rmtree(WORK, ignore_errors=True)
    project = KedroProject(WORK)
    project.use_dataset("ml-100k")
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "kedro", "run", "--pipeline", "train"], cwd=WORK, check=False,
                         capture_output=True, text=True, env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"})
    total, ended = round(time.perf_counter() - started, 1), time.localtime()
    (WORK / "train.log").write_text(run.stdout + run.stderr)
    if run.returncode:
        raise SystemExit(f"`kedro run --pipeline train` failed (exit {run.returncode}): {WORK / 'train.log'}")
    seconds = stage_seconds(run.stdout + run.stderr, ended)
    seconds["outside nodes"] = round(total - sum(seconds.values()), 1)  # Python, torch and Kedro start-up; hooks
    catalog = project.catalog()
    models = {name: saved_info(catalog.load(f"{name}_model")) for name in ("mf", "convncf")}
    result = {
        "script": "benchmarks/train_default.py", "dataset": "ml-100k (shared/datasets), shipped parameters",
        "command": "kedro run --pipeline train",
        "seconds": {**seconds, "total": total},
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
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
