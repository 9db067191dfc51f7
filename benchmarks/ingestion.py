"""Time and peak memory of `ingestion` + `matrix` on Gowalla (1.03 M interactions), through Kedro.

Run: python -m benchmarks.ingestion [dataset]   (default gowalla; datasets from ../shared/datasets)
Writes benchmarks/results/ingestion_<dataset>.json and prints it.
"""

from __future__ import annotations

import json
import platform
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks._gemm import commit
from tests.kedro_project import KedroProject

RESULTS = Path(__file__).resolve().parent / "results"


def main(dataset: str = "gowalla") -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        project = KedroProject(Path(tmp) / "project")
        project.use_dataset(dataset)
        start = time.perf_counter()
        project.run("ingestion")
        ingestion_s = time.perf_counter() - start
        start = time.perf_counter()
        project.run("matrix")
        matrix_s = time.perf_counter() - start
        stats = project.load("dataset_statistics")
    result = {
        "benchmark": "ingestion+matrix",
        "dataset": dataset,
        "interactions": stats["interactions"]["total"],
        "ingestion_seconds": round(ingestion_s, 2),
        "matrix_seconds": round(matrix_s, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "machine": f"{platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cores",
        "commit": commit(), "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"ingestion_{dataset}.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:]), indent=2))  # noqa: T201
