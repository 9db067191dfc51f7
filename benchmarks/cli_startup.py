"""How long `kedro --help` takes in this tree and in an earlier commit's, on the same machine in the same run.

Run: git worktree add /tmp/old REV && python -m benchmarks.cli_startup /tmp/old
Every `kedro` command imports the project's settings; they should not drag in torch, ONNX Runtime and every
pipeline. Alternates the two trees 5 times each (fresh processes, PYTHONPATH pointing at each tree's src); writes
benchmarks/results/cli_startup.json with every run, the medians and the machine.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks._gemm import machine

HERE = Path(__file__).resolve().parent


def seconds(tree: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree / "src"), "KEDRO_DISABLE_TELEMETRY": "1"}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "kedro", "--help"], cwd=tree, env=env, capture_output=True, check=True)
    return time.perf_counter() - started


def main(old_tree: str) -> dict:
    old, new = Path(old_tree).resolve(), HERE.parent
    rev = lambda tree: subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tree, capture_output=True,  # noqa: E731
                                      text=True, check=True).stdout.strip()
    runs: dict[str, list[float]] = {"previous": [], "this": []}
    for _ in range(5):
        runs["previous"].append(round(seconds(old), 2))
        runs["this"].append(round(seconds(new), 2))
    result = {"benchmark": "kedro --help, wall seconds", "previous_commit": rev(old), "commit": rev(new), "runs": runs,
              "median": {k: statistics.median(v) for k, v in runs.items()}, "machine": machine(),
              "date": datetime.now(UTC).strftime("%Y-%m-%d")}
    (HERE / "results" / "cli_startup.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1]), indent=2))  # noqa: T201
