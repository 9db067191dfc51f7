"""Batched, no-grad scoring of (user, item) pairs and user × item blocks, for any model here."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from convncf_kedro.ranking.full import block_of_pairs

from .mf import MF


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast for the tower's matrix multiplies, or nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def pair_scorer(
    model: nn.Module, device: torch.device, precision: str, batch_pairs: int
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
    model: nn.Module, device: torch.device, precision: str, batch_pairs: int
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """(users (U,), items (I,)) → (U, I) scores: one matmul for MF, batched tower passes otherwise."""
    if isinstance(model, MF):
        def score_mf(users: np.ndarray, items: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                u, i = torch.from_numpy(users).to(device), torch.from_numpy(items).to(device)
                return model.score_items(u, i).cpu().numpy()

        return score_mf
    return block_of_pairs(pair_scorer(model, device, precision, batch_pairs))
