"""ConvNCF's first two conv layers fused on CPU in fp32: the map, layer 1, its ReLU, layer 2 and its ReLU, forward and
backward.

Layer 1 reads 1 channel and writes 32: its output is the largest activation of the step (B·1024×32 at d=64) while
doing almost no arithmetic (a k₁²-term sum per cell), so in plain torch the step spent most of its time moving it —
its ReLU's backward, and GEMMs with 4 rows or columns that no BLAS runs fast (shared/NOTES.md's profile). Here
layer 1 is computed a block of layer-2 cells at a time into a buffer that stays in cache, straight from the
embeddings (the map E = p qᵀ is never built: each cell's k₁² inputs are products p[b, i]·q[b, j]), fed to layer 2's
GEMM, and recomputed in the backward instead of stored; layer 1's backward (ReLU mask, weight and bias gradients, and
the embeddings' gradients through the map) is one pass over the same block. The GEMMs are BLAS's (numba's
``np.dot``); the loops are numba's.

Cells are in patch order (see :mod:`.convncf`): map cell m of an item is p[rows[m]]·q[cols[m]], layer 1's input is
(R₁, k₁²) with R₁ = B·d²/k₁², its output (R₁, C) is read as (R₂, k₂²·C) by layer 2, whose weight is (k₂²·C, C).
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
SHARE_ITEMS = 128  # (user, item) pairs per task on the thread pool: as fast as a task per thread at batch 256 and 512 here


@njit(fastmath=True, inline="always")
def _layer1(p, q, rows, cols, w1, b1, first, n, h):  # h[:n] = relu(map cells of layer-1 rows first… @ w1 + b1)
    inputs, channels = w1.shape
    cells = rows.shape[0] // inputs  # layer-1 cells per item
    for r in range(n):
        item, m = (first + r) // cells, ((first + r) % cells) * inputs
        if inputs == 4:  # 2×2 kernels (the paper's): unrolled, the channel loop vectorises (3× faster)
            x_0, x_1 = p[item, rows[m]] * q[item, cols[m]], p[item, rows[m + 1]] * q[item, cols[m + 1]]
            x_2, x_3 = p[item, rows[m + 2]] * q[item, cols[m + 2]], p[item, rows[m + 3]] * q[item, cols[m + 3]]
            for c in range(channels):
                h[r, c] = max(b1[c] + x_0 * w1[0, c] + x_1 * w1[1, c] + x_2 * w1[2, c] + x_3 * w1[3, c], np.float32(0))
            continue
        for c in range(channels):
            total = b1[c]
            for a in range(inputs):
                total += p[item, rows[m + a]] * q[item, cols[m + a]] * w1[a, c]
            h[r, c] = max(total, np.float32(0))


@njit(fastmath=True, inline="always")
def _layer1_backward(p, q, rows, cols, w1, h, g1, first, n, gw1, gb1, grad_p, grad_q):
    """Layer 1's ReLU mask on g1[:n] (its output's gradient), then its weight and bias gradients, and the embeddings'
    through the map (E[m] = p[rows[m]]·q[cols[m]])."""
    inputs, channels = w1.shape
    cells = rows.shape[0] // inputs
    x, grad_x = np.empty(inputs, np.float32), np.empty(inputs, np.float32)
    for r in range(n):
        item, m = (first + r) // cells, ((first + r) % cells) * inputs
        for a in range(inputs):
            x[a] = p[item, rows[m + a]] * q[item, cols[m + a]]
        if inputs == 4:
            x_0, x_1, x_2, x_3 = x[0], x[1], x[2], x[3]
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
            grad_x[0], grad_x[1], grad_x[2], grad_x[3] = t_0, t_1, t_2, t_3
        else:
            grad_x[:] = 0
            for c in range(channels):
                g = g1[r, c] if h[r, c] > 0 else np.float32(0)
                gb1[c] += g
                for a in range(inputs):
                    gw1[a, c] += x[a] * g
                    grad_x[a] += g * w1[a, c]
        for a in range(inputs):
            i, j = rows[m + a], cols[m + a]
            grad_p[item, i] += grad_x[a] * q[item, j]
            grad_q[item, j] += grad_x[a] * p[item, i]


@njit(nogil=True, fastmath=True)
def _forward_rows(p, q, rows, cols, w1, b1, w2, b2, out, first_row, end_row, block):  # out[first_row:end_row]
    channels = w1.shape[1]
    patch, out_channels = w2.shape  # patch = k₂²·C
    children = patch // channels
    h = np.empty((block * children, channels), np.float32)
    for first in range(first_row, end_row, block):
        n = min(block, end_row - first)
        _layer1(p, q, rows, cols, w1, b1, first * children, n * children, h)
        o = out[first:first + n]
        np.dot(h[:n * children].reshape((n, patch)), w2, o)
        for r in range(n):
            for c in range(out_channels):
                o[r, c] = max(o[r, c] + b2[c], np.float32(0.0))


@njit(nogil=True, fastmath=True)
def _backward_rows(p, q, rows, cols, w1, b1, w2, out, grad_out, grad_p, grad_q, first_row, end_row, block):
    """Gradients of out[first_row:end_row]: the embeddings' rows of those items in place, the weights' returned."""
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
    for first in range(first_row, end_row, block):
        n = min(block, end_row - first)
        _layer1(p, q, rows, cols, w1, b1, first * children, n * children, h)  # recomputed, never stored
        for r in range(n):  # layer 2's ReLU
            for c in range(out_channels):
                g = grad_out[first + r, c] if out[first + r, c] > 0 else np.float32(0.0)
                g2[r, c] = g
                gb2[c] += g
        np.dot(h[:n * children].reshape((n, patch)).T, g2[:n], gw2_block)
        gw2 += gw2_block
        np.dot(g2[:n], w2_t, g1[:n])
        _layer1_backward(p, q, rows, cols, w1, h, g1[:n].reshape((n * children, channels)), first * children,
                         n * children, gw1, gb1, grad_p, grad_q)
    return gw1, gb1, gw2, gb2


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().contiguous().numpy()


def _shares(items: int, rows_per_item: int) -> list[tuple[int, int]]:
    """The layer-2 rows of each task: ``SHARE_ITEMS`` whole items (each item's embedding gradients are written by one
    task), a split that does not depend on the thread count, and the weights' gradients summed in task order: the
    same result on 1 thread or 8, whatever share of the machine a run finds free."""
    return [(first * rows_per_item, min(first + SHARE_ITEMS, items) * rows_per_item)
            for first in range(0, max(items, 1), SHARE_ITEMS)]


@functools.cache
def _pool(threads: int, pid: int) -> ThreadPoolExecutor:  # per process: a forked child has none of its threads
    return ThreadPoolExecutor(threads, thread_name_prefix=f"convncf-fused-{pid}")


@functools.cache
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()


def _run(kernel, shares: list[tuple[int, int]], *arrays) -> list:
    """``kernel(*arrays, first_row, end_row, BLOCK_ROWS)`` per share, in share order, on torch's thread count (the
    kernels release the GIL); BLAS inside them on one thread each (its own threads would spin beside them)."""
    threads = torch.get_num_threads()
    with _blas_controller().limit(limits=1, user_api="blas"):
        if threads == 1 or len(shares) == 1:
            return [kernel(*arrays, *share, BLOCK_ROWS) for share in shares]
        return list(_pool(threads, os.getpid()).map(lambda share: kernel(*arrays, *share, BLOCK_ROWS), shares))


class FusedFirstLayers(torch.autograd.Function):
    """relu(relu(E @ w1 + b1).view(R₂, k₂²·C) @ w2 + b2) with E the patch-ordered map of p qᵀ, and its gradients (see
    the module docstring)."""

    @staticmethod
    def forward(ctx, p, q, rows, cols, w1, b1, w2, b2):
        # p, q: (B, d); rows, cols: (d²,) patch order; w1: (k₁², C); b1: (C,); w2: (k₂²·C, C); b2: (C,) → (R₂, C)
        arrays = [_numpy(t) for t in (p, q, rows, cols, w1, b1, w2, b2)]
        rows_per_item = rows.shape[0] * w1.shape[1] // (w1.shape[0] * w2.shape[0])
        out = np.empty((p.shape[0] * rows_per_item, w2.shape[1]), np.float32)
        _run(_forward_rows, _shares(p.shape[0], rows_per_item), *arrays, out)
        if not _backward_rows.signatures:  # compiled here, on no rows, so no timed training step pays for it
            _backward_rows(*arrays[:7], out, out, np.zeros_like(arrays[0]), np.zeros_like(arrays[1]), 0, 0, BLOCK_ROWS)
        ctx.arrays, ctx.rows_per_item = arrays[:7], rows_per_item
        ctx.save_for_backward(result := torch.from_numpy(out))
        return result

    @staticmethod
    def backward(ctx, grad_out):
        (out,) = ctx.saved_tensors
        p, q = ctx.arrays[:2]
        grad_p, grad_q = np.zeros_like(p), np.zeros_like(q)
        parts = _run(_backward_rows, _shares(p.shape[0], ctx.rows_per_item), *ctx.arrays, _numpy(out),
                     _numpy(grad_out), grad_p, grad_q)
        gw1, gb1, gw2, gb2 = (torch.from_numpy(functools.reduce(np.add, g)) for g in zip(*parts, strict=True))
        return torch.from_numpy(grad_p), torch.from_numpy(grad_q), None, None, gw1, gb1, gw2, gb2


def applies(p: torch.Tensor, layers: int) -> bool:
    """Where the fused layers run: CPU fp32 (not under bf16 autocast), a tower of two or more layers."""
    return p.device.type == "cpu" and p.dtype == torch.float32 and not torch.is_autocast_enabled("cpu") and layers >= 2
