"""What a figure was measured on: the machine's GEMM throughput per precision (the yardstick every speed figure here
is a fraction of), the machine, and the commit."""

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
    """{precision: FLOP/s} for fp32 and bf16, measured now.

    bf16 is probed on a 512² matmul first: CPUs without AVX-512 BF16 (or AMX) emulate it at a few
    GFLOP/s, where the 2048² timing would take minutes; the probe's figure is then the limit.
    """
    limits = {"fp32": gemm_flops("fp32")}
    probe = gemm_flops("bf16", size=512, repeats=1)
    limits["bf16"] = gemm_flops("bf16") if probe > limits["fp32"] / 4 else probe
    return limits


def native_bf16(limits: dict[str, float]) -> bool:
    """Whether bf16 arithmetic is at least as fast as fp32 here (else bf16 workloads are not worth timing)."""
    return limits["bf16"] >= limits["fp32"]


def machine() -> str:
    """The CPU's model name, cores, torch's CPU capability and version: what a figure was measured on."""
    import os
    import platform
    from pathlib import Path

    cpuinfo = Path("/proc/cpuinfo")
    fields = dict(line.split(":", 1) for line in reversed(cpuinfo.read_text().splitlines())
                  if ":" in line) if cpuinfo.exists() else {}  # reversed: the first CPU's values win
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    model = fields.get("model name") or platform.processor() or platform.machine()
    flags = fields.get("flags", "").split()
    low_precision = [name for flag, name in (("avx512_vnni", "VNNI"), ("avx512_bf16", "AVX512-BF16"),
                                              ("amx_int8", "AMX-INT8"), ("amx_bf16", "AMX-BF16")) if flag in flags]
    extras = f" ({', '.join(low_precision)})" if low_precision else ""
    return (f"{model} ({platform.machine()}), {os.cpu_count()} cores, {torch.backends.cpu.get_cpu_capability()}"
            f"{extras}, torch {torch.__version__}")


def commit() -> str:
    """The commit of this working tree (short hash), "unknown" outside git; a trailing "+" where code or conf differs
    from it (results files and Markdown do not count: they are what the scripts write)."""
    import subprocess
    from pathlib import Path

    here = Path(__file__).resolve().parent
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True,
                         check=False).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                            ":(exclude)benchmarks/results", ":(exclude)*.md"], cwd=here.parent, capture_output=True,
                           text=True, check=False).stdout.strip()
    return (rev + ("+" if dirty else "")) if rev else "unknown"
