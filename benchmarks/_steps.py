"""The loop's own training step, timed: the one helper the throughput benchmarks share (training_throughput,
busy_machine, gpu_study), so a rate here is a rate of the step `kedro run` trains with."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from convncf_kedro.models import BPRRecommender, Phase
from convncf_kedro.training.loop import optimisers_for, train_step


def training_step(model: BPRRecommender, triples: tuple[np.ndarray, np.ndarray, np.ndarray], batch_size: int,
                  phase: Phase, precision: str = "fp32", chunk_triples: int | None = None,
                  device: torch.device | None = None) -> Callable[[int], None]:
    """``step(index)``: one ``train_step`` on the index-th batch of (users, positives, negatives), wrapping around."""
    device = device or torch.device("cpu")
    model.to(device)
    optimisers = optimisers_for(model, phase)
    users, positives, negatives = (torch.from_numpy(t).to(device) for t in triples)

    def step(index: int) -> None:
        start = index * batch_size % max(1, len(users) - batch_size)
        batch = {"user": users[start:start + batch_size], "item": positives[start:start + batch_size],
                 "neg_item": negatives[start:start + batch_size]}
        train_step(model, optimisers, batch, precision, chunk_triples=chunk_triples)

    return step


def triples_per_second(step: Callable[[int], None], batch_size: int, *, steps: int | None = None,
                       seconds: float | None = None, first: int = 0, device: torch.device | None = None) -> float:
    """The rate of ``step`` over ``steps`` batches or, with ``seconds``, as many as fit (from batch ``first``); the
    device is synchronised before and after, so a GPU's queued work is counted."""
    sync = torch.cuda.synchronize if device is not None and device.type == "cuda" else (lambda: None)
    sync()
    begin, done = time.perf_counter(), 0
    while (done < steps) if steps is not None else (time.perf_counter() - begin < seconds):
        step(first + done)
        done += 1
    sync()
    return done * batch_size / (time.perf_counter() - begin)


def warm_up(step: Callable[[int], None], batches: int) -> None:
    """The first batches (allocations, kernel compiles, oneDNN primitives) are not timed."""
    for index in range(batches):
        step(index)
