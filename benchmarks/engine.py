"""The scoring engine: fp32 vs INT8 graphs, and full ranking of MovieLens 100K in one process vs on Dask.

Run: python -m benchmarks.engine [--label=-x]   (about 8 minutes on 2 cores; run it on an otherwise idle machine)
Measures, in one run, on the paper's tower (d = 64, C = 32; 3.06 MFLOP per pair; random weights score as
fast as trained ones):
  1. the fp32 GEMM limit with 1 thread and with every core (torch, 2048² matmul, best of 3);
  2. single-threaded ONNX Runtime pairs/s of the fp32 graph and of its INT8 (QDQ) variant on the same pairs,
     256 per session.run, median of 3, each as a fraction of the 1-thread fp32 limit (INT8 is not
     floating-point arithmetic, so its fraction says how it compares with what fp32 could reach);
  3. full ranking of ml-100k's 943 users × 1,682 items (seen items masked, top 10) through the engine: in this
     process with 1 thread and with ONNX Runtime's default threads, on `local:1` and on `local:2` (Dask
     LocalCluster, single-threaded workers), the same partitions of 64 users each; one run each (a minute
     apiece); the per-worker rate and the scaling efficiency of `local:2`, and Gowalla's projected time on N
     such workers.
Writes benchmarks/results/engine<label>.json (a label keeps another machine's figures beside these).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from benchmarks._gemm import commit, gemm_flops, machine
from convncf_kedro.exporting.onnx_export import export_onnx
from convncf_kedro.exporting.quantize import quantize_int8
from convncf_kedro.models import ConvNCF, ConvNCFConfig
from convncf_kedro.serving.engine import RankSettings, rank_users
from convncf_kedro.serving.session import create_session, onnx_pair_scorer
from tests.kedro_project import SHARED_DATASETS

FLOP_PER_PAIR = 2 * 1_531_936
RESULTS = Path(__file__).resolve().parent / "results"
N_USERS, N_ITEMS = 943, 1682
GOWALLA_PAIRS = 29_858 * 40_981
PARTITION_USERS = 64


def graphs() -> dict[str, bytes]:
    torch.manual_seed(0)
    model = ConvNCF(ConvNCFConfig(N_USERS, N_ITEMS, 64, 32))
    torch.nn.init.normal_(model.user_embedding.weight, std=0.3)
    torch.nn.init.normal_(model.item_embedding.weight, std=0.3)
    fp32 = export_onnx(model, 18, {"precision": "fp32"})
    rng = np.random.default_rng(0)
    int8 = quantize_int8(fp32, rng.integers(0, N_USERS, 25_600), rng.integers(0, N_ITEMS, 25_600), 256)
    return {"fp32": fp32.SerializeToString(), "int8": int8.SerializeToString()}


def pair_rates(graphs: dict[str, bytes], limit_1_thread: float) -> list[dict]:
    rng = np.random.default_rng(1)
    users, items = rng.integers(0, N_USERS, 256 * 60), rng.integers(0, N_ITEMS, 256 * 60)
    rows = []
    for precision, graph in graphs.items():
        score = onnx_pair_scorer(create_session(graph, "cpu", 1), 256)
        score(users[:2560], items[:2560])  # warm-up
        seconds = []
        for _ in range(3):
            started = time.perf_counter()
            score(users, items)
            seconds.append(time.perf_counter() - started)
        rate = len(users) / statistics.median(seconds)
        rows.append({"precision": precision, "threads": 1, "pairs_per_second": round(rate),
                     "fraction_of_fp32_gemm_limit_1_thread": round(rate * FLOP_PER_PAIR / limit_1_thread, 3)})
    return rows


def full_ranking(graph: bytes, seen: sp.csr_matrix, where: str, cluster: str | None, threads: int | None) -> dict:
    settings = RankSettings(10, 256, 16, 2048, "cpu", threads, log_every_seconds=60)
    users = np.arange(N_USERS)
    started = time.perf_counter()
    parts = list(rank_users(graph, seen, users, settings, PARTITION_USERS, cluster))
    seconds = time.perf_counter() - started
    assert sorted(np.concatenate([p.users for p in parts]).tolist()) == users.tolist()
    return {"where": where, "cluster": cluster, "threads": threads, "partitions": len(parts),
            "seconds": round(seconds, 1), "pairs_per_second": round(N_USERS * N_ITEMS / seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="", help="suffix of the results file for another machine, written --label=-xeon-amx")
    label = parser.parse_args().label
    torch.set_num_threads(1)
    limit_1 = gemm_flops("fp32")
    torch.set_num_threads(os.cpu_count())
    limit_all = gemm_flops("fp32")
    built = graphs()
    log = np.loadtxt(SHARED_DATASETS / "ml-100k/u.data", dtype=np.int64, usecols=(0, 1))
    seen = sp.csr_matrix((np.ones(len(log), np.float32), (log[:, 0] - 1, log[:, 1] - 1)), shape=(N_USERS, N_ITEMS))
    rankings = [full_ranking(built["fp32"], seen, *config) for config in (
        ("in-process, 1 thread", None, 1), ("in-process, ONNX Runtime's default threads", None, None),
        ("Dask local:1", "local:1", None), ("Dask local:2", "local:2", None))]
    one_worker = rankings[2]["pairs_per_second"]
    two_workers = rankings[3]["pairs_per_second"]
    out = {
        "script": "benchmarks/engine.py", "machine": machine(), "commit": commit(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "gemm_gflops_fp32": {"1_thread": round(limit_1 / 1e9, 1), "all_threads": round(limit_all / 1e9, 1)},
        "statistic": "pair scoring: median of 3; full ranking: one run each",
        "pair_scoring": pair_rates(built, limit_1),
        "full_ranking_ml100k": rankings,
        "local_2_speedup_over_local_1": round(two_workers / one_worker, 2),
        "scaling_efficiency_local_2": round(two_workers / (2 * one_worker), 2),
        "per_worker_pairs_per_second": one_worker,
        "gowalla_projected_minutes_by_workers": {n: round(GOWALLA_PAIRS / (n * one_worker) / 60, 1)
                                                 for n in (1, 8, 64, 256)},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"engine{label}.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))  # noqa: T201


if __name__ == "__main__":
    main()
