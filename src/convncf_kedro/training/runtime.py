"""Where and how torch runs: device, CPU threads, precision, allocator settings."""

from __future__ import annotations

import ctypes
import logging
import os
import sys

import psutil
import torch

logger = logging.getLogger(__name__)

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
BUSY_CORE = 50.0  # % utilisation above which a core counts as taken by other work


def keep_freed_memory() -> None:
    """Stop glibc from returning big freed blocks to the OS after every step.

    The conv tower's activations are tens of MiB a batch; by default glibc mmaps each and page-faults
    it in again on the next step, which made training several times slower on CPU. Same effect as
    MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_ in the environment, but set from inside the run.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (e.g. musl): nothing to tune
        return
    for option, value in ((_M_MMAP_THRESHOLD, 1 << 30), (_M_TRIM_THRESHOLD, 1 << 30), (_M_TOP_PAD, 1 << 28)):
        libc.mallopt(option, value)  # values must fit a C int


def resolve_device(name: str) -> torch.device:
    """'auto' → CUDA when a GPU is really usable, else CPU; 'cpu', 'cuda', 'cuda:1' as given."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device '{name}' was asked for, but torch sees no CUDA device; use 'auto' or 'cpu'")
    return device


def free_cores(sample_seconds: float = 0.3) -> tuple[int, int]:
    """How many of this process's cores other work leaves free now (measured over ``sample_seconds``), of how many.

    Torch's default of one thread per core collapses beside another CPU-bound process (its threads wait at every
    barrier for the one the scheduler parked: ~30× slower measured on 2 cores); one thread per free core does not."""
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    busy = psutil.cpu_percent(interval=sample_seconds, percpu=True)
    free = sum(1 for core in allowed if core < len(busy) and busy[core] < BUSY_CORE)
    return max(1, free), len(allowed)


def configure(threads: int | None, device: torch.device) -> None:
    """``threads``, or (None) one per core left free by other work; see :func:`free_cores`."""
    if threads is None:
        threads, cores = free_cores()
        logger.info("%d of %d cores free of other work: %d torch threads", threads, cores, threads)
    torch.set_num_threads(threads)  # set on every run: an earlier run's count in this process must not leak
    torch.sparse.check_sparse_tensor_invariants.disable()  # the embeddings' sparse grads come from torch itself
    if device.type == "cpu":
        keep_freed_memory()
        # Strong L2 (the authors' recipe) drives conv weights into denormal floats, which x86 computes
        # several times slower (its epoch 3 took 5-10x as long as epoch 2 in a study). Flush them to zero.
        torch.set_flush_denormal(True)
    logger.info("torch %s on %s, %d CPU threads", torch.__version__, device, torch.get_num_threads())


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 in hardware: AVX-512 BF16 or AMX on a CPU (bf16 GEMM 2.2× fp32 measured on an
    AVX-512 BF16 EPYC), bf16 support on a GPU. Elsewhere torch emulates it, dozens of times slower than fp32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        flags = next((line for line in open("/proc/cpuinfo", encoding="utf-8") if line.startswith("flags")), "")
    except OSError:  # not Linux: no way to tell, so no
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(flags.split()))


def warn_if_emulated(precision: str, device: torch.device) -> None:
    """bf16 asked for where it is emulated is kept (the user asked), with a warning."""
    if precision == "bf16" and not native_bf16(device):
        logger.warning("bf16 was asked for, but this %s has no bf16 arithmetic: torch emulates it, far slower than "
                       "fp32; use precision: fp32 (or auto) here", device.type.upper())


def training_precision(precision: str, device: torch.device) -> str:
    """The precision a training stage runs: ``auto`` stays (the loop's first epoch decides) only where bf16 is native,
    else fp32."""
    if precision == "auto":
        return "auto" if native_bf16(device) else "fp32"
    warn_if_emulated(precision, device)
    return precision
