"""Two-stage ranking on a trained ConvNCF: full ranking of every test user through every unseen item, and through a
shortlist retrieved by the model's own embeddings — seconds, and the paired difference of test NDCG@10.

Run: python -m benchmarks.two_stage [dataset] [--epochs N]   (default: ml-100k, ConvNCF trained 2 epochs)
Trains in its own work project (benchmarks/.work/two-stage-<dataset>: ingestion → export with the shipped parameters,
ConvNCF's epochs as given), reads export's check (retrieval_validation.json: the shortlist chosen on validation),
then ranks all test users both ways with the scoring engine in one process, on one thread. Writes
benchmarks/results/two_stage_<dataset>.json (machine, commit, the fp32 GEMM figure measured in the same run).
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from benchmarks._gemm import commit, gemm_flops, machine
from convncf_kedro.interactions.prepare import positives_matrix
from convncf_kedro.ranking.full import hits_against
from convncf_kedro.ranking.metrics import full_ranking_metrics_per_user, paired_difference
from convncf_kedro.serving.engine import RankSettings, rank_users
from convncf_kedro.training import runtime
from tests.kedro_project import KedroProject

RESULTS = Path(__file__).resolve().parent / "results"
WORK = Path(__file__).resolve().parent / ".work"


def rank_both_ways(project: KedroProject, users: np.ndarray, shortlists: list[int], threads: int | None) -> dict:
    """Rank ``users`` through every unseen item and through each shortlist size with the exported graphs, in this
    process: seconds, test NDCG@10, and each ranking's paired difference from the exhaustive one."""
    catalog = project.catalog()
    graph, retrieval = (catalog.load(name).SerializeToString() for name in ("convncf_onnx", "convncf_retrieval_onnx"))
    train, valid, test = (catalog.load(name) for name in ("train_matrix", "valid", "test"))
    n_users, n_items = train.shape
    seen = (train + positives_matrix([valid], n_users, n_items)).tocsr()
    relevant = positives_matrix([test], n_users, n_items)
    e = catalog.load("params:evaluation")
    settings = RankSettings(k=10, batch_pairs=e["batch_pairs"], chunk_users=e["chunk_users"],
                            chunk_items=e["chunk_items"], device="cpu", threads=threads, log_every_seconds=60)
    rows = {}
    for name, shortlist in (("every unseen item", None), *((f"shortlist {n}", n) for n in sorted(set(shortlists)))):
        started = time.perf_counter()
        parts = sorted(rank_users(graph, seen, users, RankSettings(**{**settings.__dict__, "shortlist": shortlist}),
                                  256, ties_last=relevant, retrieval=retrieval), key=lambda part: part.index)
        seconds = time.perf_counter() - started
        top = np.concatenate([part.top_items for part in parts])
        ndcg = full_ranking_metrics_per_user(hits_against(top, users, relevant), np.diff(relevant.indptr)[users],
                                             [10])["ndcg@10"]
        rows[name] = {"shortlist": shortlist, "users": len(users), "threads": threads or "ONNX Runtime's default",
                      "seconds": round(seconds, 2), "ndcg@10": float(ndcg.mean()), "per_user": ndcg}
    exhaustive = rows["every unseen item"]["per_user"]
    for row in rows.values():
        row["vs_every_item"] = paired_difference(row.pop("per_user"), exhaustive, 0.95, 2000, 2018)
    return rows


def main(dataset: str, epochs: int) -> dict:
    import torch

    runtime.configure(1, torch.device("cpu"))  # the GEMM figure below on the thread the rankings use
    project = KedroProject(WORK / f"two-stage-{dataset}")
    project.use_dataset(dataset)
    one_thread = {"threads": 1}  # a second process may share the 2 cores: torch's default threads would then thrash
    params = {"pretrain": {"training": one_thread}, "convncf": {"training": {"epochs": epochs, **one_thread}},
              "evaluation": one_thread}
    for pipeline in ("ingestion", "matrix", "pretrain", "convncf", "export"):
        project.run(pipeline, params=params)
    check = project.load("retrieval_validation")
    users = np.unique(project.load("test")["user"].to_numpy())
    rows = rank_both_ways(project, users, [check["chosen"] or 200, 50, 200], threads=1)
    out = {"script": "benchmarks/two_stage.py", "dataset": dataset, "convncf_epochs": epochs, "users": len(users),
           "items": project.load("train_matrix").shape[1], "threads": "1 (ONNX Runtime, one process)", "check": check,
           "rankings": rows, "gemm_gflops_fp32_1_thread": round(gemm_flops("fp32") / 1e9, 1), "machine": machine(),
           "commit": commit(), "date": datetime.now(UTC).strftime("%Y-%m-%d")}
    (RESULTS / f"two_stage_{dataset}.json").write_text(json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", nargs="?", default="ml-100k")
    parser.add_argument("--epochs", type=int, default=2, help="ConvNCF's training epochs (its budget, stated)")
    args = parser.parse_args()
    result = main(args.dataset, args.epochs)
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "vs_every_item"} | {"diff": v["vs_every_item"]}  # noqa: T201
                      for k, v in result["rankings"].items()}, indent=1))
