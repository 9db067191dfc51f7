"""The simple baselines on the shared datasets: tuned on validation (the `baselines` pipeline), then evaluated on
test by the `evaluation` pipeline's own node, on the same protocols, users and candidates as MF and ConvNCF.

Run: python -m benchmarks.baselines [dataset ...] [--params "{baselines: {trials: 20}}"]   (default: ml-100k)
Each dataset gets its own work project (benchmarks/.work/baselines-<dataset>). Writes
benchmarks/results/baselines_<dataset>.json: per model its chosen parameters, validation metric, tuning seconds and
test metrics by protocol; the machine and the commit. benchmarks/tables.py prints the tables.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

from benchmarks._gemm import commit, machine
from tests.kedro_project import KedroProject

RESULTS = Path(__file__).resolve().parent / "results"
WORK = Path(__file__).resolve().parent / ".work"
DATASET_PARAMS = {  # what a dataset needs beyond the shipped parameters
    "gowalla": {"baselines": {"models": ["toppop", "itemknn", "userknn", "rp3beta", "ials"]},  # EASE^R: 20 GiB
                "evaluation": {"chunk_users": 512, "chunk_items": 8192}},
}


def run(dataset: str, params: dict) -> dict:
    project = KedroProject(WORK / f"baselines-{dataset}")
    project.use_dataset(dataset)
    params = {**DATASET_PARAMS.get(dataset, {}), **params}
    seconds = {}
    for pipeline, nodes in (("ingestion", None), ("matrix", None), ("baselines", None),
                            ("evaluation", ["evaluate_baselines"])):
        started = time.perf_counter()
        project.run(pipeline, params=params, nodes=nodes)
        seconds[nodes[0] if nodes else pipeline] = round(time.perf_counter() - started, 1)
    models = {name: load() for name, load in project.load("baseline_test_metrics").items()}
    out = {"script": "benchmarks/baselines.py", "dataset": dataset, "params": params, "seconds": seconds,
           "statistics": project.load("dataset_statistics"), "models": models, "machine": machine(),
           "commit": commit(), "date": datetime.now(UTC).strftime("%Y-%m-%d")}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"baselines_{dataset}.json").write_text(json.dumps(out, indent=1) + "\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*", default=["ml-100k"])
    parser.add_argument("--params", default="{}", help="YAML/JSON mapping of parameter overrides")
    args = parser.parse_args()
    for dataset in args.datasets:
        out = run(dataset, yaml.safe_load(args.params))
        print(dataset, out["seconds"], {m: round(r["sampled"]["ndcg@10"], 4) for m, r in out["models"].items()})  # noqa: T201


if __name__ == "__main__":
    main()
