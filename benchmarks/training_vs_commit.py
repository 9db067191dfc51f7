"""Training speed of this tree against an earlier commit's, on the same machine in the same run.

Run: git worktree add /tmp/old REV && python -m benchmarks.training_vs_commit /tmp/old
Alternates the two trees' own `benchmarks/training_throughput.py` step timings (fp32, batch 256, the paper
tower, ml-100k triples, each tree's shipped `chunk_triples` where it has one), 3 times each, each in a fresh
process; writes
benchmarks/results/training_vs_<rev>.json with every run and the medians.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from benchmarks._gemm import commit, machine

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared"
PROBE = """
import sys, pathlib, statistics
sys.path.insert(0, "benchmarks")  # either tree's layout: older ones import their helpers by file name
import training_throughput as t
t.SHARED = pathlib.Path({shared!r}) / "datasets"
from convncf_kedro.training import runtime
import torch
runtime.configure(None, torch.device("cpu"))
shipped = {{"chunk_triples": t.shipped_chunk_triples()}} if hasattr(t, "shipped_chunk_triples") else {{}}
rate = t.triples_per_second("fp32", 256, **shipped)  # each tree's own shipped step
print(statistics.median(rate) if isinstance(rate, list) else rate)
"""


def rate_of(tree: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    out = subprocess.run([sys.executable, "-c", PROBE.format(shared=str(SHARED))], cwd=tree, env=env,
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main(old_tree: str) -> dict:
    old, new = Path(old_tree).resolve(), HERE.parent
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=old, capture_output=True, text=True,
                         check=True).stdout.strip()
    runs: dict[str, list[float]] = {"previous": [], "this": []}
    for _ in range(3):
        runs["previous"].append(round(rate_of(old)))
        runs["this"].append(round(rate_of(new)))
        print(runs)  # noqa: T201
    result = {
        "benchmark": "training triples/s, fp32, batch 256, paper tower; each tree's own training_throughput.py",
        "previous_commit": rev, "runs": runs, "machine": machine(), "threads": "torch default (one per core)",
        "median": {k: statistics.median(v) for k, v in runs.items()},
        "commit": commit(), "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }
    result["ratio_this_to_previous"] = round(result["median"]["this"] / result["median"]["previous"], 3)
    (HERE / "results" / f"training_vs_{rev}.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1]), indent=2))  # noqa: T201
