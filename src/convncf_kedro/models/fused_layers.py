"""ConvNCF's first two conv layers fused on CPU in fp32: layer 1, its ReLU, layer 2 and its ReLU, forward and backward.

Layer 1 reads 1 channel and writes 32: its output is the largest activation of the step (B·1024×32 at d=64) while
doing almost no arithmetic (a k₁²-term sum per cell), so in plain torch the step spent most of its time moving it —
its ReLU's backward, and GEMMs with 4 rows or columns that no BLAS runs fast (shared/NOTES.md's profile). Here
layer 1 is computed a block of layer-2 cells at a time into a buffer that stays in cache, fed straight to layer 2's
GEMM, and recomputed in the backward instead of stored; layer 1's backward (ReLU mask, weight, bias and input
gradients) is one pass over the same block. The GEMMs are BLAS's (numba's ``np.dot``); the loops are numba's.

Rows are in patch order (see :mod:`.convncf`): layer 1's input is (R₁, k₁²), its output (R₁, C) read as
(R₂, k₂²·C) by layer 2, whose weight is (k₂²·C, C).
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from numba import njit
from threadpoolctl import ThreadpoolController

BLOCK_ROWS = 128  # layer-2 cells per block: layer 1's block is 128·4×32 fp32 = 64 KiB, inside L2


@njit(fastmath=True, inline="always")
def _layer1(x0, w1, b1, first, n, h):  # h[:n] = relu(x0[first:first+n] @ w1 + b1)
    inputs, channels = w1.shape
    if inputs == 4:  # 2×2 kernels (the paper's): unrolled, the channel loop vectorises (3× faster)
        for r in range(n):
            x_0, x_1, x_2, x_3 = x0[first + r, 0], x0[first + r, 1], x0[first + r, 2], x0[first + r, 3]
            for c in range(channels):
                h[r, c] = max(b1[c] + x_0 * w1[0, c] + x_1 * w1[1, c] + x_2 * w1[2, c] + x_3 * w1[3, c], np.float32(0))
        return
    for r in range(n):
        for c in range(channels):
            total = b1[c]
            for a in range(inputs):
                total += x0[first + r, a] * w1[a, c]
            h[r, c] = max(total, np.float32(0))


@njit(fastmath=True, inline="always")
def _layer1_backward(x0, w1, h, g1, first, n, gw1, gb1, grad_x0):
    """Layer 1's ReLU mask on g1[:n] (its output's gradient), then its weight, bias and input gradients."""
    inputs, channels = w1.shape
    for r in range(n):
        row = first + r
        if inputs == 4:
            x_0, x_1, x_2, x_3 = x0[row, 0], x0[row, 1], x0[row, 2], x0[row, 3]
            t_0 = t_1 = t_2 = t_3 = np.float32(0)
            for c in range(channels):
                g = g1[r, c] if h[r, c] > 0 else np.float32(0)
                gb1[c] += g
                gw1[0, c] += x_0 * g
                gw1[1, c] += x_1 * g
                gw1[2, c] += x_2 * g
                gw1[3, c] += x_3 * g
                t_0 += g * w1[0, c]
                t_1 += g * w1[1, c]
                t_2 += g * w1[2, c]
                t_3 += g * w1[3, c]
            grad_x0[row, 0], grad_x0[row, 1], grad_x0[row, 2], grad_x0[row, 3] = t_0, t_1, t_2, t_3
            continue
        for a in range(inputs):
            grad_x0[row, a] = 0
        for c in range(channels):
            g = g1[r, c] if h[r, c] > 0 else np.float32(0)
            gb1[c] += g
            for a in range(inputs):
                gw1[a, c] += x0[row, a] * g
                grad_x0[row, a] += g * w1[a, c]


@njit(nogil=True, fastmath=True)
def _forward_blocks(x0, w1, b1, w2, b2, out, first_block, end_block, block):  # out[those blocks' rows] = the two layers' output
    channels = w1.shape[1]
    patch, out_channels = w2.shape  # patch = k₂²·C
    children = patch // channels
    h = np.empty((block * children, channels), np.float32)
    for b in range(first_block, end_block):
        first, rows = b * block, min(block, out.shape[0] - b * block)
        _layer1(x0, w1, b1, first * children, rows * children, h)
        o = out[first:first + rows]
        np.dot(h[:rows * children].reshape((rows, patch)), w2, o)
        for r in range(rows):
            for c in range(out_channels):
                o[r, c] = max(o[r, c] + b2[c], np.float32(0.0))


@njit(nogil=True, fastmath=True)
def _backward_blocks(x0, w1, b1, w2, out, grad_out, grad_x0, first_block, end_block, block):  # → this share's weight/bias gradients
    inputs, channels = w1.shape
    patch, out_channels = w2.shape
    children = patch // channels
    w2_t = np.ascontiguousarray(w2.T)
    h = np.empty((block * children, channels), np.float32)
    g2 = np.empty((block, out_channels), np.float32)
    g1 = np.empty((block, patch), np.float32)
    gw2_block = np.empty((patch, out_channels), np.float32)
    gw1, gb1 = np.zeros((inputs, channels), np.float32), np.zeros(channels, np.float32)
    gw2, gb2 = np.zeros((patch, out_channels), np.float32), np.zeros(out_channels, np.float32)
    for b in range(first_block, end_block):
        first, rows = b * block, min(block, out.shape[0] - b * block)
        _layer1(x0, w1, b1, first * children, rows * children, h)  # recomputed, never stored
        for r in range(rows):  # layer 2's ReLU
            for c in range(out_channels):
                g = grad_out[first + r, c] if out[first + r, c] > 0 else np.float32(0.0)
                g2[r, c] = g
                gb2[c] += g
        np.dot(h[:rows * children].reshape((rows, patch)).T, g2[:rows], gw2_block)
        gw2 += gw2_block
        np.dot(g2[:rows], w2_t, g1[:rows])
        g1_cells = g1[:rows].reshape((rows * children, channels))
        _layer1_backward(x0, w1, h, g1_cells, first * children, rows * children, gw1, gb1, grad_x0)
    return gw1, gb1, gw2, gb2


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().contiguous().numpy()


def _shares(rows: int) -> list[range]:
    """The blocks each of torch's threads runs: a fixed split, so the same sums in the same order every run."""
    blocks, threads = -(-rows // BLOCK_ROWS), torch.get_num_threads()
    return [range(t * blocks // threads, (t + 1) * blocks // threads) for t in range(threads)]


@functools.cache
def _pool(threads: int, pid: int) -> ThreadPoolExecutor:  # per process: a forked child has none of its threads
    return ThreadPoolExecutor(threads, thread_name_prefix=f"convncf-fused-{pid}")


def _run(kernel, shares: list[range], *arrays) -> list:
    """``kernel(*arrays, share, BLOCK_ROWS)`` per share, on torch's thread count (the kernels release the GIL); BLAS
    inside them on one thread each (its own threads would spin beside them)."""
    with _blas_controller().limit(limits=1, user_api="blas"):
        if len(shares) == 1:
            return [kernel(*arrays, shares[0].start, shares[0].stop, BLOCK_ROWS)]
        return list(_pool(len(shares), os.getpid()).map(lambda share: kernel(*arrays, share.start, share.stop, BLOCK_ROWS), shares))


@functools.cache
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()


class FusedFirstLayers(torch.autograd.Function):
    """relu(relu(x0 @ w1 + b1).view(R₂, k₂²·C) @ w2 + b2), with its gradients (see the module docstring)."""

    @staticmethod
    def forward(ctx, x0, w1, b1, w2, b2):  # (R₁, k₁²), (k₁², C), (C,), (k₂²·C, C), (C,) → (R₂, C)
        arrays = [_numpy(t) for t in (x0, w1, b1, w2, b2)]
        out = np.empty((x0.shape[0] * w1.shape[1] // w2.shape[0], w2.shape[1]), np.float32)
        _run(_forward_blocks, _shares(out.shape[0]), *arrays, out)
        ctx.arrays = arrays[:4]
        ctx.save_for_backward(result := torch.from_numpy(out))
        return result

    @staticmethod
    def backward(ctx, grad_out):
        (out,) = ctx.saved_tensors
        x0 = ctx.arrays[0]
        grad_x0 = np.empty_like(x0)
        parts = _run(_backward_blocks, _shares(out.shape[0]), *ctx.arrays, _numpy(out), _numpy(grad_out), grad_x0)
        sums = [functools.reduce(np.add, grads) for grads in zip(*parts, strict=True)]  # in share order
        return torch.from_numpy(grad_x0), *(torch.from_numpy(g) for g in sums)


def applies(x: torch.Tensor, layers: int, in_channels: int) -> bool:
    """Where the fused layers run: CPU fp32 (not under bf16 autocast), a tower of two or more layers, one input channel."""
    return (x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_autocast_enabled("cpu")
            and layers >= 2 and in_channels == 1)
