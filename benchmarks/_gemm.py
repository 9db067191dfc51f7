"""The machine's fp32 GEMM throughput: the yardstick every speed figure here is a fraction of."""

from __future__ import annotations

import time

import torch


def gemm_flops(size: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of a size² × size² fp32 matmul with torch's current thread count (best of 3 runs)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(2):
        a @ b
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = max(best, 2 * size**3 * repeats / (time.perf_counter() - start))
    return best
