"""Batched, no-grad scoring of (user, item) pairs and user × item blocks, for any model here."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numpy as np
import torch

from .base import BPRRecommender


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast for the matrix multiplies, or nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


@contextlib.contextmanager
def _inference(model: BPRRecommender, device: torch.device, precision: str) -> Iterator[None]:
    """Eval mode, no grad, the precision's autocast; the model's training mode is restored after."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), autocast(device, precision):
            yield
    finally:
        model.train(was_training)


def _tensor(ids: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int64)).to(device)


def pair_scorer(
    model: BPRRecommender, device: torch.device, precision: str, batch_pairs: int
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """(users (P,), items (P,)) → (P,) float32 scores, ``batch_pairs`` pairs per forward, eval mode."""

    def score(users: np.ndarray, items: np.ndarray) -> np.ndarray:
        out = np.empty(len(users), dtype=np.float32)
        with _inference(model, device, precision):
            for start in range(0, len(users), batch_pairs):
                end = start + batch_pairs
                scores = model(_tensor(users[start:end], device), _tensor(items[start:end], device))
                out[start:end] = scores.float().cpu().numpy()
        return out

    return score


def block_scorer(
    model: BPRRecommender, device: torch.device, precision: str, batch_pairs: int
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """(users (U,), items (I,)) → (U, I) float32 scores through the model's own ``score_block``, eval mode."""

    def score(users: np.ndarray, items: np.ndarray) -> np.ndarray:
        with _inference(model, device, precision):
            return model.score_block(_tensor(users, device), _tensor(items, device), batch_pairs).float().cpu().numpy()

    return score
