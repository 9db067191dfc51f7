"""Scoring speed of the paper's tower: PyTorch eager vs ONNX Runtime, and full ranking of MovieLens 100K.

Run: python -m benchmarks.scoring
One (user, item) score costs 3.06 MFLOP at d=64, C=32 (1,531,936 multiply-adds), so the machine's
limit is GEMM FLOP/s ÷ 3.06 MFLOP, with the GEMM of the same precision (fp32 or bf16) measured in the
same run; every timing is the median of 3 runs (the GEMM the best of 3). Measures
  1. pairs/s of PyTorch eager (fp32, bf16) and ONNX Runtime (CPU, or CUDA where present) per batch size;
  2. a full ranking of ml-100k (943 users × 1,682 items, seen items masked) with ONNX Runtime,
     256 pairs per run (the fastest batch above): seconds, pairs/s; and the projected time for Gowalla (29,858 × 40,981);
  3. peak RSS of full ranking as the number of items grows (each size in its own process).
Writes benchmarks/results/scoring.json. A model with random weights scores as fast as a trained one.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from benchmarks._gemm import commit, gemm_limits, machine, native_bf16
from convncf_kedro.exporting.onnx_export import export_onnx
from convncf_kedro.models import ConvNCF, ConvNCFConfig
from convncf_kedro.models.scoring import pair_scorer
from convncf_kedro.ranking.full import top_k_unseen
from convncf_kedro.serving.session import create_session, onnx_block_scorer, onnx_pair_scorer
from convncf_kedro.training import runtime

FLOP_PER_PAIR = 2 * 1_531_936
RESULTS = Path(__file__).resolve().parent / "results"
N_USERS, N_ITEMS = 943, 1682
GOWALLA_PAIRS = 29_858 * 40_981
REPEATS = 3


def model(n_items: int = N_ITEMS) -> ConvNCF:
    torch.manual_seed(0)
    m = ConvNCF(ConvNCFConfig(N_USERS, n_items, 64, 32))
    torch.nn.init.normal_(m.user_embedding.weight, std=0.3)
    torch.nn.init.normal_(m.item_embedding.weight, std=0.3)
    return m.eval()


def session_for(m: ConvNCF):
    proto = export_onnx(m, 18, {"id_maps_sha256": "benchmark"})
    return create_session(proto.SerializeToString(), "auto")


def rate(score, n_pairs: int) -> float:
    users = np.random.default_rng(0).integers(0, N_USERS, n_pairs)
    items = np.random.default_rng(1).integers(0, N_ITEMS, n_pairs)
    score(users[:2048], items[:2048])  # warm-up
    rates = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        score(users, items)
        rates.append(n_pairs / (time.perf_counter() - start))
    return statistics.median(rates)


def seen_matrix(n_items: int) -> sp.csr_matrix:
    rng = np.random.default_rng(2)
    users = rng.integers(0, N_USERS, 100_000)
    items = rng.integers(0, n_items, 100_000)
    m = sp.csr_matrix((np.ones(len(users), np.float32), (users, items)), shape=(N_USERS, n_items))
    m.sum_duplicates()
    m.sort_indices()
    return m


def full_ranking(n_items: int, n_users: int, repeats: int = 1) -> dict:
    """Rank every unseen item for n_users users with ONNX Runtime; report seconds and pairs/s."""
    session = session_for(model(n_items))
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        top_k_unseen(onnx_block_scorer(session, 256), np.arange(n_users), seen_matrix(n_items), 20, 16, 2048,
                     log_every_seconds=1e9)
        runs.append(time.perf_counter() - start)
    seconds = statistics.median(runs)
    return {"users": n_users, "items": n_items, "seconds": round(seconds, 1),
            "pairs_per_second": round(n_users * n_items / seconds),
            "peak_rss_mib": peak_rss_mib()}


def peak_rss_mib() -> int:
    """This process's resident-set high-water mark (VmHWM; unlike ru_maxrss it is not inherited over exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main() -> dict:
    runtime.configure(None, torch.device("cpu"))
    gemm = gemm_limits()
    limits = {p: v / FLOP_PER_PAIR for p, v in gemm.items()}
    m = model()
    session = session_for(m)
    rows = []
    for batch in (256, 1024, 4096):
        engines = [
            ("pytorch eager", "fp32", pair_scorer(m, torch.device("cpu"), "fp32", batch)),
            ("pytorch eager", "bf16", pair_scorer(m, torch.device("cpu"), "bf16", batch)),
            (f"onnxruntime {session.get_providers()[0]}", "fp32", onnx_pair_scorer(session, batch)),
        ]
        for engine, precision, score in engines:
            if precision == "bf16" and not native_bf16(gemm):  # emulated bf16 would take hours
                continue
            pairs_per_second = rate(score, 40_000)
            rows.append({"engine": engine, "precision": precision, "batch_pairs": batch,
                         "pairs_per_second": round(pairs_per_second),
                         f"fraction_of_{precision}_gemm_limit": round(pairs_per_second / limits[precision], 3)})
            print(rows[-1])  # noqa: T201
    ranking = full_ranking(N_ITEMS, N_USERS, REPEATS)
    del ranking["peak_rss_mib"]  # this process also ran the eager batches above; see the per-size runs
    ranking["fraction_of_fp32_gemm_limit"] = round(ranking["pairs_per_second"] / limits["fp32"], 3)
    ranking["projected_gowalla_hours"] = round(GOWALLA_PAIRS / ranking["pairs_per_second"] / 3600, 1)
    print(ranking)  # noqa: T201
    memory = []
    for n_items in (1_682, 6_728, 26_912):  # each in a fresh process: peak RSS is per process
        out = subprocess.run([sys.executable, __file__, "--rss", str(n_items)], capture_output=True, text=True, check=True)
        memory.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(memory[-1])  # noqa: T201
    result = {
        "benchmark": "scoring, paper tower (d=64, C=32), random weights",
        "gemm_gflops": {p: round(v / 1e9, 1) for p, v in gemm.items()},
        "limit_pairs_per_second": {p: round(v) for p, v in limits.items()},
        "statistic": f"median of {REPEATS} runs; GEMM best of 3",
        "bf16_native": native_bf16(gemm),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "pair_scoring": rows,
        "full_ranking_ml100k_onnxruntime": ranking,
        "full_ranking_peak_rss_by_items": memory,
        "machine": machine(),
        "commit": commit(), "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "scoring.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    if sys.argv[1:2] == ["--rss"]:
        runtime.configure(None, torch.device("cpu"))
        print(json.dumps(full_ranking(int(sys.argv[2]), n_users=32)))  # noqa: T201
    else:
        print(json.dumps(main(), indent=2))  # noqa: T201
