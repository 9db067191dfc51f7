"""Batched, no-grad scoring of (user, item) pairs and user × item blocks, for any model here."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np
import torch

from .base import BPRRecommender


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast for the matrix multiplies, or nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def pair_scorer(
    model: BPRRecommender, device: torch.device, precision: str, batch_pairs: int
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """(users (P,), items (P,)) → (P,) float32 scores, ``batch_pairs`` pairs per forward, eval mode."""

    def score(users: np.ndarray, items: np.ndarray) -> np.ndarray:
        was_training = model.training
        model.eval()
        out = np.empty(len(users), dtype=np.float32)
        with torch.no_grad(), autocast(device, precision):
            for start in range(0, len(users), batch_pairs):
                u = torch.from_numpy(np.ascontiguousarray(users[start:start + batch_pairs])).to(device)
                i = torch.from_numpy(np.ascontiguousarray(items[start:start + batch_pairs])).to(device)
                out[start:start + batch_pairs] = model(u, i).float().cpu().numpy()
        model.train(was_training)
        return out

    return score


def block_scorer(
    model: BPRRecommender, device: torch.device, precision: str, batch_pairs: int
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """(users (U,), items (I,)) → (U, I) float32 scores through the model's own ``score_block``, eval mode."""

    def score(users: np.ndarray, items: np.ndarray) -> np.ndarray:
        was_training = model.training
        model.eval()
        with torch.no_grad(), autocast(device, precision):
            u = torch.from_numpy(np.ascontiguousarray(users, dtype=np.int64)).to(device)
            i = torch.from_numpy(np.ascontiguousarray(items, dtype=np.int64)).to(device)
            out = model.score_block(u, i, batch_pairs).float().cpu().numpy()
        model.train(was_training)
        return out

    return score
