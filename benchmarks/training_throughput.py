"""ConvNCF training throughput (triples/s) at the paper's tower, as a fraction of the GEMM limit.

Run: python benchmarks/training_throughput.py
One training triple costs 18.4 MFLOP at d=64, C=32 (two tower passes forward, twice that backward),
so the machine's limit is GEMM FLOP/s ÷ 18.4 MFLOP. Uses the project's own sampler, optimiser set-up
and loss on MovieLens 100K's size; fp32 and bf16; the GEMM figure is measured in the same run.
Writes benchmarks/results/training_throughput.json.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _gemm import gemm_flops  # noqa: E402

from convncf_kedro.interactions.prepare import positives_matrix  # noqa: E402
from convncf_kedro.models import ConvNCF  # noqa: E402
from convncf_kedro.models.scoring import autocast  # noqa: E402
from convncf_kedro.training import runtime  # noqa: E402
from convncf_kedro.training.loop import TrainSettings, _build_optimizers  # noqa: E402
from convncf_kedro.training.sampler import sample_triples  # noqa: E402

FLOP_PER_TRIPLE = 3 * 2 * 2 * 1_531_936  # (fwd + 2× bwd) × 2 pairs × 2 FLOP per multiply-add
SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
RESULTS = Path(__file__).resolve().parent / "results"


def triples_per_second(precision: str, batch_size: int, n_triples: int = 20_000) -> float:
    raw = pd.read_csv(SHARED / "ml-100k/u.data", sep="\t", names=["user", "item", "rating", "ts"])
    matrix = positives_matrix([pd.DataFrame({"user": raw["user"] - 1, "item": raw["item"] - 1})], 943, 1682)
    users, positives, negatives = sample_triples(matrix, np.random.default_rng(0))
    torch.manual_seed(0)
    model = ConvNCF(943, 1682, 64, 32, reg_embedding=1e-4, reg_conv=1e-4, reg_out=1e-4)
    settings = TrainSettings("bench", 1, batch_size, "adagrad", 0.01, 0.01, 0, 1, "ndcg@10", (10,), 512, 0,
                             precision, 60)
    optimizers = _build_optimizers(model, settings)
    device = torch.device("cpu")

    def step(start: int) -> None:
        batch = {k: torch.from_numpy(v[start:start + batch_size]) for k, v in
                 (("user", users), ("item", positives), ("neg_item", negatives))}
        with autocast(device, precision):
            loss = model.calculate_loss(batch)
        for o in optimizers:
            o.zero_grad(set_to_none=True)
        loss.backward()
        for o in optimizers:
            o.step()

    for start in range(0, 5 * batch_size, batch_size):  # warm-up
        step(start)
    begin = time.perf_counter()
    for start in range(0, n_triples, batch_size):
        step(start)
    return n_triples / (time.perf_counter() - begin)


def main() -> dict:
    runtime.configure(None, torch.device("cpu"))
    gemm = gemm_flops()
    limit = gemm / FLOP_PER_TRIPLE
    rows = []
    for precision in ("fp32", "bf16"):
        for batch_size in (64, 256):
            rate = triples_per_second(precision, batch_size)
            rows.append({"precision": precision, "batch_size": batch_size, "triples_per_second": round(rate),
                         "fraction_of_gemm_limit": round(rate / limit, 3)})
            print(rows[-1])  # noqa: T201
    result = {
        "benchmark": "convncf training throughput, paper tower (d=64, C=32, six 2x2/s2 layers)",
        "gemm_fp32_gflops": round(gemm / 1e9, 1),
        "limit_triples_per_second": round(limit),
        "threads": torch.get_num_threads(),
        "runs": rows,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "training_throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))  # noqa: T201
