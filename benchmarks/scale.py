"""What a production-size log costs (issue 28): every `train` stage and `score`, each its own `kedro run`, on seeded
synthetic logs shaped like MovieLens 20M (benchmarks/synthetic_log.py: 138,000 users × 27,000 items) at several
sizes — wall seconds and peak RSS per stage, and per stage the slope across sizes (seconds and bytes per
interaction, a least-squares line through the sizes run), written as a table and a plot.

Run: python -m benchmarks.scale 1000000 5000000 20000000
Each size runs in the work project benchmarks/.work/scale-<size> (logs/<stage>.log there) with the shipped
parameters and BUDGET below (written to conf/local), the budget a user of such a log would set: stages already run
with the same budget are skipped on a rerun. Measure alone: another process on a 2-core machine halves the figures.
Writes benchmarks/results/scale.json and scale.png.
"""

from __future__ import annotations

import argparse
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import yaml

from benchmarks._gemm import commit, machine
from benchmarks.large_catalog import run_stage
from benchmarks.synthetic_log import write_log
from convncf_kedro.pipeline_registry import TRAIN_STAGES
from tests.kedro_project import KedroProject

RESULTS = Path(__file__).resolve().parent / "results"
WORK = Path(__file__).resolve().parent / ".work"
STAGES = [*TRAIN_STAGES, "score"]
TWO_STAGES = {"retrieve": "auto"}  # ConvNCF re-ranks the shortlist export checked on validation
BUDGET: dict[str, dict] = {  # beyond the shipped parameters
    "ingestion": {"validation_users": 1000},  # a validation check costs 1,000 users × 100 candidates at any size
    "pretrain": {"training": {"time_budget_minutes": 5}},
    "convncf": {"training": {"time_budget_minutes": 5}},  # ConvNCF's rate and projected epoch time are the figure
    "baselines": {"time_budget_minutes": 5},  # shared by the tunable models; over-memory models are left out
    "evaluation": {"max_users": 1000, "candidates": TWO_STAGES},
    "score": {"candidates": TWO_STAGES},  # every user
}
# log lines that say what a stage's time was spent on (rates, projections, budget stops, models left out)
TELLING = re.compile(r"triples/s over|reached|stopp|time budget|projected|left out|trial 1/|partitions,.*ETA 0 s")


def prepare(interactions: int) -> KedroProject:
    root = WORK / f"scale-{interactions}"
    project = KedroProject(root)
    log = root / "data" / "01_raw" / "synthetic" / "u.data"
    if not log.exists():
        write_log(log, interactions, n_users=138_000, n_items=27_000, seed=0)
    project.write_conf("catalog.yml", {"raw_interactions": {
        "type": "convncf_kedro.datasets.RawInteractionFiles", "path": str(log.parent), "files": {"log": "u.data"}}})
    for group, values in BUDGET.items():
        project.write_conf(f"parameters_{group}.yml", {group: values})
    return project


def telling_lines(project: KedroProject, stage: str) -> list[str]:
    text = (project.root / "logs" / f"{stage}.log").read_text(errors="replace")
    return [re.sub(r"\s+", " ", line).strip()[:220] for line in text.splitlines() if TELLING.search(line)][-8:]


def run_size(interactions: int) -> dict:
    project = prepare(interactions)
    progress_path = project.root / "progress.json"
    progress = json.loads(progress_path.read_text()) if progress_path.exists() else {}
    if progress.get("budget") != BUDGET:
        progress = {"budget": BUDGET, "stages": {}}
    for stage in STAGES:
        if stage in progress["stages"]:
            continue
        print(f"{interactions:,} interactions: {stage} ...", flush=True)  # noqa: T201
        figures = run_stage(project, stage)
        progress["stages"][stage] = {**figures, "log": telling_lines(project, stage)}
        print(f"  {figures}", flush=True)  # noqa: T201
        progress_path.write_text(json.dumps(progress, indent=1))
    report = project.load("cleaning_report")
    progress["stages"] = {stage: progress["stages"][stage] for stage in STAGES}  # a stage rerun keeps its place
    return {"interactions_written": interactions, "interactions_after_cleaning": report["interactions"],
            "users": len(project.load("user_map")), "items": len(project.load("item_map")), **progress}


def slopes(runs: list[dict]) -> dict:
    """Per stage, seconds and peak-RSS bytes against cleaned interactions: a least-squares line (exact for two sizes)."""
    n = np.array([run["interactions_after_cleaning"] for run in runs], dtype=float)
    out = {}
    for stage in STAGES:
        seconds = np.array([run["stages"][stage]["seconds"] for run in runs])
        rss = np.array([run["stages"][stage]["peak_rss_mib"] for run in runs]) * 2**20
        (s_slope, s_fixed), (b_slope, b_fixed) = np.polyfit(n, seconds, 1), np.polyfit(n, rss, 1)
        out[stage] = {"seconds_per_million": round(float(s_slope) * 1e6, 1), "fixed_seconds": round(float(s_fixed), 1),
                      "bytes_per_interaction": round(float(b_slope)), "fixed_mib": round(float(b_fixed) / 2**20)}
    return out


def plot(runs: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [run["interactions_after_cleaning"] / 1e6 for run in runs]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for stage in STAGES:
        left.plot(n, [run["stages"][stage]["seconds"] / 60 for run in runs], "o-", label=stage)
        right.plot(n, [run["stages"][stage]["peak_rss_mib"] / 1024 for run in runs], "o-", label=stage)
    left.set(xlabel="interactions after cleaning (millions)", ylabel="wall minutes", title="time per stage")
    right.set(xlabel="interactions after cleaning (millions)", ylabel="peak RSS (GiB)", title="memory per stage")
    right.axhline(8, color="grey", linestyle=":", label="8 GiB target")
    right.legend(fontsize=7, ncol=2)
    fig.suptitle(f"{machine()} — budget in benchmarks/scale.py", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(sizes: list[int]) -> dict:
    runs = [run_size(size) for size in sizes]
    result = {"script": "benchmarks/scale.py", "shape": "138,000 users × 27,000 items, benchmarks/synthetic_log.py seed 0",
              "runs": runs, "slopes": slopes(runs) if len(runs) > 1 else None,
              "machine": machine(), "commit": commit(), "date": datetime.now(UTC).strftime("%Y-%m-%d")}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "scale.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    if len(runs) > 1:
        plot(runs, RESULTS / "scale.png")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", type=int, nargs="+", help="interactions written per log, e.g. 1000000 5000000")
    result = main(parser.parse_args().sizes)
    print(yaml.safe_dump({"slopes": result["slopes"]}, sort_keys=False))  # noqa: T201
