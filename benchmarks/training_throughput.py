"""ConvNCF training throughput (triples/s) at the paper's tower, as a fraction of the GEMM limit.

Run: python -m benchmarks.training_throughput
One training triple costs 18.4 MFLOP at d=64, C=32 (two tower passes forward, twice that backward),
so the machine's limit is GEMM FLOP/s ÷ 18.4 MFLOP, with the GEMM measured in the same run in the
same precision as the training it is compared with (fp32 rows against the fp32 GEMM, bf16 rows against
the bf16 GEMM). Times the project's own ``train_step`` (the one the training loop runs) with its
sampler and optimisers on MovieLens 100K's size, on whole batches and in chunks of 32 triples (each row says
whether it is the shipped ``convncf.training.chunk_triples``); in fp32 both the step as shipped (layers 1–2
fused, models/fused_layers.py) and the step before it (every layer a torch GEMM), each configuration back to
back; each row is the median of 3 timed runs. Writes benchmarks/results/training_throughput.json.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import statistics
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import torch
import yaml

from benchmarks._gemm import commit, gemm_limits, machine, native_bf16
from benchmarks._steps import training_step, triples_per_second, warm_up
from convncf_kedro.interactions.prepare import positives_matrix
from convncf_kedro.models import ConvNCF, ConvNCFConfig, Phase, fused_layers
from convncf_kedro.training import runtime
from convncf_kedro.training.sampler import sample_triples

FLOP_PER_TRIPLE = 3 * 2 * 2 * 1_531_936  # (fwd + 2× bwd) × 2 pairs × 2 FLOP per multiply-add
SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
RESULTS = Path(__file__).resolve().parent / "results"
REPEATS = 3
CHUNK = 32  # the chunked rows' triples per forward/backward (whole batches are the other rows)
STEPS = {True: "fused layers 1-2 (numba)", False: "every layer a torch GEMM (before)"}


def shipped_chunk_triples() -> int | None:
    conf = yaml.safe_load((Path(__file__).resolve().parents[1] / "conf/base/parameters_convncf.yml").read_text())
    return conf["convncf"]["training"]["chunk_triples"]


def rates(precision: str, batch_size: int, n_triples: int = 10_240, chunk_triples: int | None = None,
          fused: bool = True) -> list[float]:
    """``fused=False``: the step as it was before models/fused_layers.py (every layer a torch GEMM), for the same-run
    before/after."""
    with mock.patch.object(fused_layers, "applies", return_value=False) if not fused else contextlib.nullcontext():
        return _rates(precision, batch_size, n_triples, chunk_triples)


def _rates(precision: str, batch_size: int, n_triples: int, chunk_triples: int | None) -> list[float]:
    raw = pd.read_csv(SHARED / "ml-100k/u.data", sep="\t", names=["user", "item", "rating", "ts"])
    matrix = positives_matrix([pd.DataFrame({"user": raw["user"] - 1, "item": raw["item"] - 1})], 943, 1682)
    users, positives, negatives = sample_triples(matrix, np.random.default_rng(0))
    torch.manual_seed(0)
    model = ConvNCF(ConvNCFConfig(943, 1682, 64, 32, reg_embedding=1e-4, reg_conv=1e-4, reg_out=1e-4))
    step = training_step(model, (users, positives, negatives), batch_size, Phase(lr_embedding=0.01, lr_tower=0.01),
                         precision, chunk_triples)
    warm_up(step, 5)
    return [triples_per_second(step, batch_size, steps=n_triples // batch_size, first=5 + repeat * n_triples // batch_size)
            for repeat in range(REPEATS)]


def main() -> dict:
    runtime.configure(None, torch.device("cpu"))
    gemm = gemm_limits()
    rows = []
    precisions = ["fp32", "bf16"] if native_bf16(gemm) else ["fp32"]  # emulated bf16 would take hours
    shipped = shipped_chunk_triples()
    for precision in precisions:
        limit = gemm[precision] / FLOP_PER_TRIPLE
        steps = (True, False) if precision == "fp32" else (False,)  # the fused layers run in fp32 only
        for batch_size, chunk, fused in itertools.product((256, 512), (None, CHUNK), steps):
            runs = rates(precision, batch_size, chunk_triples=chunk, fused=fused)
            rate = statistics.median(runs)
            rows.append({
                "precision": precision, "step": STEPS[fused], "batch_size": batch_size, "chunk_triples": chunk,
                "shipped_chunking": chunk == shipped,
                "triples_per_second": round(rate),
                "runs": [round(r) for r in runs],
                f"fraction_of_{precision}_gemm_limit": round(rate / limit, 3),
                "fraction_of_fp32_gemm_limit": round(rate / (gemm["fp32"] / FLOP_PER_TRIPLE), 3),
            })
            print(rows[-1])  # noqa: T201
    result = {
        "benchmark": "convncf training throughput, paper tower (d=64, C=32, six 2x2/s2 layers), train_step",
        "gemm_gflops": {p: round(v / 1e9, 1) for p, v in gemm.items()},
        "limit_triples_per_second": {p: round(v / FLOP_PER_TRIPLE) for p, v in gemm.items()},
        "statistic": f"median of {REPEATS} runs; GEMM best of 3",
        "threads": torch.get_num_threads(),
        "bf16_native": native_bf16(gemm),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "rows": rows,
        "machine": machine(),
        "commit": commit(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "training_throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))  # noqa: T201
