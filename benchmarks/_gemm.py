"""The machine's GEMM throughput per precision: the yardstick every speed figure here is a fraction of."""

from __future__ import annotations

import time

import torch

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def gemm_flops(precision: str = "fp32", size: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of a size² × size² matmul in ``precision`` with torch's current thread count (best of 3 runs)."""
    a, b = (torch.randn(size, size).to(DTYPES[precision]) for _ in range(2))
    for _ in range(2):
        a @ b
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = max(best, 2 * size**3 * repeats / (time.perf_counter() - start))
    return best


def gemm_limits() -> dict[str, float]:
    """{precision: FLOP/s} for fp32 and bf16, measured now."""
    return {precision: gemm_flops(precision) for precision in DTYPES}
