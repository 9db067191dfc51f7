"""Matrix factorisation trained with BPR: the pretraining whose embeddings initialise ConvNCF."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from .base import BPRRecommender


@dataclasses.dataclass(frozen=True)
class MFConfig:
    n_users: int
    n_items: int
    embedding_size: int = 64
    reg_embedding: float = 0.0  # L2 on the batch's embedding rows
    init_std: float = 0.01  # embeddings start as N(0, init_std²)


class MF(BPRRecommender):
    """score(u, i) = p_u · q_i."""

    config_class = MFConfig

    def __init__(self, config: MFConfig):
        super().__init__(config)
        nn.init.normal_(self.user_embedding.weight, std=config.init_std)
        nn.init.normal_(self.item_embedding.weight, std=config.init_std)

    def interact(self, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        # p, q: (B, d) → (B,)
        return (p * q).sum(dim=-1)

    def score_block(self, users: torch.Tensor, items: torch.Tensor, batch_pairs: int = 65536) -> torch.Tensor:
        """(U,) users × (I,) items → (U, I) scores, one matmul."""
        return self.user_embedding(users) @ self.item_embedding(items).T
