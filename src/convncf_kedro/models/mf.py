"""Matrix factorisation trained with BPR: the pretraining whose embeddings initialise ConvNCF."""

from __future__ import annotations

import torch
from torch import nn

from .convncf import ConvNCFBPRLoss


class MF(nn.Module):
    """score(u, i) = p_u · q_i, with L2 on the embeddings a batch touches."""

    def __init__(
        self, n_users: int, n_items: int, embedding_size: int = 64, reg_embedding: float = 0.0, init_std: float = 0.01
    ):
        super().__init__()
        self.n_users, self.n_items, self.embedding_size = n_users, n_items, embedding_size
        self.reg_embedding, self.init_std = reg_embedding, init_std
        self.user_embedding = nn.Embedding(n_users, embedding_size)  # P: (n_users, d)
        self.item_embedding = nn.Embedding(n_items, embedding_size)  # Q: (n_items, d)
        nn.init.normal_(self.user_embedding.weight, std=init_std)
        nn.init.normal_(self.item_embedding.weight, std=init_std)
        self.loss = ConvNCFBPRLoss()

    def hyperparameters(self) -> dict:
        return {
            "n_users": self.n_users, "n_items": self.n_items,
            "embedding_size": self.embedding_size, "reg_embedding": self.reg_embedding, "init_std": self.init_std,
        }

    def forward(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        # user, item: (B,) int64 → (B,) float
        return (self.user_embedding(user) * self.item_embedding(item)).sum(dim=-1)

    def predict(self, interaction: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.forward(interaction["user"], interaction["item"])

    def score_items(self, user: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """(U,) users × (I,) items → (U, I) scores, one matmul."""
        return self.user_embedding(user) @ self.item_embedding(items).T

    def reg_loss(self, user: torch.Tensor, pos_item: torch.Tensor, neg_item: torch.Tensor) -> torch.Tensor:
        embeddings = (self.user_embedding(user), self.item_embedding(pos_item), self.item_embedding(neg_item))
        return self.reg_embedding * sum(e.pow(2).sum() for e in embeddings)

    def calculate_loss(self, interaction: dict[str, torch.Tensor]) -> torch.Tensor:
        user, pos_item, neg_item = interaction["user"], interaction["item"], interaction["neg_item"]
        bpr = self.loss(self.forward(user, pos_item), self.forward(user, neg_item))
        return bpr + self.reg_loss(user, pos_item, neg_item)
