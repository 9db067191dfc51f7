"""A large catalog end to end on the CPU: `train` stage by stage, then `score` for every user, through two stages
(ConvNCF re-ranks the shortlist its own embeddings retrieve) — seconds and peak memory per stage, the two-stage check,
and full-ranking NDCG@10 of the two stages against exhaustive ranking on the evaluation's user sample.

Run: python -m benchmarks.large_catalog gowalla      (then: python -m benchmarks.large_catalog ml-100k, the memory yardstick;
     python -m benchmarks.large_catalog gowalla-moved: ConvNCF kept at its best checked epoch even where its MF start
     validated better, reusing gowalla's ingestion, MF and baselines)
Each stage is a `kedro run --pipeline <stage>` process in the work project benchmarks/.work/large-<dataset> (its log in
logs/<stage>.log there), with the shipped parameters and the dataset's budget below (written to conf/local). Stages
already completed with the same budget are skipped on a rerun, and ConvNCF's epochs resume from their checkpoint,
so an interrupted run continues where it stopped. Writes benchmarks/results/large_catalog_<dataset>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

from benchmarks._gemm import commit, gemm_flops, machine
from benchmarks.two_stage import rank_both_ways
from convncf_kedro.evaluation.protocols import sample_test_users
from convncf_kedro.pipeline_registry import TRAIN_STAGES
from tests.kedro_project import KedroProject

RESULTS = Path(__file__).resolve().parent / "results"
WORK = Path(__file__).resolve().parent / ".work"

TWO_STAGES = {"retrieve": "auto"}  # the shortlist size export's check chose on validation
# Parameters beyond the shipped ones, per dataset: the budget every figure of that dataset was measured with.
BUDGETS: dict[str, dict] = {
    "gowalla": {
        "ingestion": {"n_negatives": 999,  # the paper's sampled protocol
                      "validation_users": 1000},  # each validation check: 1,000 users × 1,000 candidates
        "convncf": {"training": {"epochs": 3}},
        "export": {"dataset_name": "Gowalla (LightGCN's 10-core split)"},
        "baselines": {"models": ["toppop", "itemknn", "rp3beta", "ials"],  # EASE^R: 41k² floats, over the budget
                      "trials": 10},
        "evaluation": {"max_users": 1000, "candidates": TWO_STAGES},  # the 1,000-user sample of the targets
        "score": {"candidates": TWO_STAGES},
    },
    # the same, but ConvNCF's best checked epoch is kept even where its MF start validated better: a ConvNCF that has
    # moved away from its MF, where the shortlist of MF-like embeddings is a real approximation
    "gowalla-moved": {"reuse": "gowalla", "changes": {"convncf": {"training": {"select_start": False}}}},
    "ml-100k": {  # one thread each: it ran beside the Gowalla run (its figure that matters is memory)
        "pretrain": {"training": {"threads": 1}},
        "convncf": {"training": {"epochs": 3, "threads": 1}},
        "evaluation": {"candidates": TWO_STAGES, "threads": 1},
        "score": {"candidates": TWO_STAGES, "threads": 1},
    },
}


REUSED_STAGES = ["ingestion", "matrix", "pretrain", "baselines"]  # what a variant takes from its base run's folder


def budget_of(name: str) -> tuple[str, dict]:
    """The dataset and the parameters a run name stands for (a variant: its base's, with its changes merged in)."""
    entry = BUDGETS[name]
    if "reuse" not in entry:
        return name, entry

    def merged(base: dict, changes: dict) -> dict:
        return {**base, **{key: merged(base.get(key, {}), value) if isinstance(value, dict) else value
                           for key, value in changes.items()}}

    return entry["reuse"], merged(BUDGETS[entry["reuse"]], entry["changes"])


def run_stage(project: KedroProject, stage: str) -> dict:
    """`kedro run --pipeline stage` in its own process: wall seconds, the process's peak RSS, the commit it ran."""
    log = project.root / "logs" / f"{stage}.log"
    log.parent.mkdir(exist_ok=True)
    env = {**os.environ, "MLFLOW_TRACKING_URI": project.tracking_uri}
    tree = commit()  # the code this stage runs (each stage is a new process importing the working tree)
    started = time.perf_counter()
    with log.open("w") as out:
        child = subprocess.Popen([sys.executable, "-m", "kedro", "run", "--pipeline", stage], cwd=project.root,
                                 env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"stage {stage} failed: see {log}")
    return {"seconds": round(seconds, 1), "peak_rss_mib": round(usage.ru_maxrss / 1024), "commit": tree}


def main(name: str, exhaustive_threads: int | None) -> dict:
    dataset, budget = budget_of(name)
    root = WORK / f"large-{name}"
    project = KedroProject(root)
    project.use_dataset(dataset)
    for group, values in budget.items():
        path = root / "conf" / "local" / f"parameters_{group}.yml"
        merged = yaml.safe_load(path.read_text()) if path.exists() else {}
        merged.setdefault(group, {}).update(values)
        path.write_text(yaml.safe_dump(merged))
    progress_path = root / "progress.json"
    progress = json.loads(progress_path.read_text()) if progress_path.exists() else {}
    if progress.get("budget") != budget:
        progress = {"budget": budget, "stages": {}}
        base = BUDGETS[name].get("reuse")
        if base:  # the base run's data, models and stage figures up to the stages this variant changes
            base_root = WORK / f"large-{base}"
            shutil.rmtree(root / "data")
            shutil.copytree(base_root / "data", root / "data", ignore=shutil.ignore_patterns("convncf_checkpoint.pt"))
            done = json.loads((base_root / "progress.json").read_text())["stages"]
            progress["stages"] = {stage: {**done[stage], "reused_from": f"large-{base}"} for stage in REUSED_STAGES}
    for stage in [*TRAIN_STAGES, "score"]:
        if stage in progress["stages"]:
            continue
        print(f"{stage} ...", flush=True)  # noqa: T201
        progress["stages"][stage] = run_stage(project, stage)
        print(f"{stage}: {progress['stages'][stage]}", flush=True)  # noqa: T201
        progress_path.write_text(json.dumps(progress, indent=1))

    catalog = project.catalog()
    check = catalog.load("retrieval_validation")
    convncf = catalog.load("test_metrics_convncf")
    e = catalog.load("params:evaluation")
    if "exhaustive" not in progress:  # the quality rule of the targets, on the evaluation's own user sample
        users = sample_test_users(catalog.load("test"), e["max_users"], e["seed"])["user"].unique()
        progress["exhaustive"] = rank_both_ways(project, users, [check["chosen"]], exhaustive_threads)
        progress_path.write_text(json.dumps(progress, indent=1))

    at_20 = {name: {key: catalog.load(f"test_metrics_{name}")["full"].get(key) for key in ("recall@20", "ndcg@20")}
             for name in ("mf", "convncf")}
    at_20 |= {name: {key: load()["full"].get(key) for key in ("recall@20", "ndcg@20")}
              for name, load in catalog.load("baseline_test_metrics").items()}
    recommendations = catalog.load("recommendations")
    scored = sum(len(load()) for load in recommendations.values()) if isinstance(recommendations, dict) else None
    train = catalog.load("train_matrix")
    stages = progress["stages"]
    out = {
        "script": "benchmarks/large_catalog.py", "run": name, "dataset": dataset, "users": train.shape[0], "items": train.shape[1],
        "budget": budget, "stages": stages,
        "train_seconds": round(sum(stages[s]["seconds"] for s in TRAIN_STAGES), 1),
        "train_peak_rss_mib": max(stages[s]["peak_rss_mib"] for s in TRAIN_STAGES),
        "score": {**stages["score"], "report": catalog.load("scoring_report"), "recommendation_rows": scored},
        "convncf_epochs_run": int(catalog.load("convncf_history")["epoch"].max()),
        "convncf_best_epoch": convncf["best_epoch"],  # 0: the MF start validated best (the export ranks as MF)
        "mf_epochs_run": int(catalog.load("mf_history")["epoch"].max()),
        "retrieval_check": check,
        "sampled_negatives": catalog.load("params:ingestion")["n_negatives"],
        "evaluation_convncf": {protocol: convncf[protocol] for protocol in ("sampled", "full") if protocol in convncf},
        "two_stage_vs_exhaustive": progress["exhaustive"],
        "full_ranking_at_20": at_20,  # on the evaluation's user sample (LightGCN's published figures: every user)
        "gemm_gflops_fp32": round(gemm_flops("fp32") / 1e9, 1), "machine": machine(), "commit": commit(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }
    (RESULTS / f"large_catalog_{name}.json").write_text(json.dumps(out, indent=1, default=str) + "\n")
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", choices=sorted(BUDGETS), help="a dataset, or a variant of one (gowalla-moved)")
    parser.add_argument("--exhaustive-threads", type=int, default=None,
                        help="ONNX Runtime threads of the exhaustive comparison (default: its own, all cores)")
    args = parser.parse_args()
    result = main(args.run, args.exhaustive_threads)
    print(json.dumps({k: result[k] for k in ("stages", "train_seconds", "two_stage_vs_exhaustive")}, indent=1))  # noqa: T201
