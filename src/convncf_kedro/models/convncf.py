"""ConvNCF (He et al., IJCAI 2018): a conv tower over the outer product of user and item embeddings.

    p_u, q_i            (B, d)             embeddings, initialised from MF-BPR
    E = p_u q_iᵀ        (B, 1, d, d)       interaction map
    conv k×k, stride k  (B, C, d/k, d/k)   + bias, ReLU; repeated until the map is 1×1
    linear C → 1        (B,)               score

Every conv layer has kernel == stride and no padding, so it only mixes the k×k children of each
output cell: a reshape and one matrix multiply. :meth:`ConvNCF.forward` computes the tower that way
on a map laid out in *patch order* (each layer's children contiguous), with no copies between
layers; :meth:`ConvNCF.forward_conv2d` is the plain ``nn.Conv2d`` form of the same function (the one
exported to ONNX). Both read the same ``nn.Conv2d`` weights.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ConvNCFBPRLoss(nn.Module):
    """Pairwise BPR loss summed over the batch: Σ softplus(−(pos − neg)) = −Σ ln σ(pos − neg)."""

    def forward(self, pos_score: torch.Tensor, neg_score: torch.Tensor) -> torch.Tensor:
        return F.softplus(neg_score - pos_score).sum()


def default_kernel_sizes(embedding_size: int) -> list[int]:
    """The paper's tower: 2×2/stride-2 layers, log2(d) of them."""
    return [2] * round(math.log2(embedding_size))


class ConvNCF(nn.Module):
    def __init__(
        self,
        n_users: int,
        n_items: int,
        embedding_size: int = 64,
        channels: int = 32,
        kernel_sizes: list[int] | None = None,
        dropout: float = 0.0,
        reg_embedding: float = 0.0,
        reg_conv: float = 0.0,
        reg_out: float = 0.0,
        reg_anchor: str = "zero",
    ):
        super().__init__()
        if reg_anchor not in ("zero", "init"):
            raise ValueError(f"reg_anchor must be 'zero' or 'init', not '{reg_anchor}'")
        kernel_sizes = list(kernel_sizes or default_kernel_sizes(embedding_size))
        if math.prod(kernel_sizes) != embedding_size:
            raise ValueError(
                f"kernel sizes {kernel_sizes} reduce a {embedding_size}×{embedding_size} map to "
                f"{embedding_size / math.prod(kernel_sizes):g}×…, not 1×1: their product must be {embedding_size}"
            )
        self.n_users, self.n_items, self.embedding_size = n_users, n_items, embedding_size
        self.channels, self.kernel_sizes, self.dropout_rate = channels, kernel_sizes, dropout
        self.reg_embedding, self.reg_conv, self.reg_out = reg_embedding, reg_conv, reg_out
        self.reg_anchor = reg_anchor

        self.user_embedding = nn.Embedding(n_users, embedding_size)  # P: (n_users, d), then init_from_mf
        self.item_embedding = nn.Embedding(n_items, embedding_size)  # Q: (n_items, d), then init_from_mf
        self.conv_layers = nn.ModuleList(
            nn.Conv2d(1 if i == 0 else channels, channels, kernel_size=k, stride=k)
            for i, k in enumerate(kernel_sizes)
        )
        self.dropout = nn.Dropout(dropout)
        self.predict_layer = nn.Linear(channels, 1)
        if reg_anchor == "init":  # the tower's initial weights, which its L2 terms pull towards
            for index, conv in enumerate(self.conv_layers):
                self.register_buffer(f"conv_anchor_{index}", torch.zeros_like(conv.weight))
            self.register_buffer("predict_anchor", torch.zeros_like(self.predict_layer.weight))
        # E (B, d, d) viewed as (B, i_L, …, i_1, j_L, …, j_1) and permuted to (B, i_L, j_L, …, i_1, j_1)
        # is the map in patch order: layer l's k_l×k_l children of a cell are contiguous
        n = len(kernel_sizes)
        self._digit_shape = [*reversed(kernel_sizes), *reversed(kernel_sizes)]
        self._patch_order = [0, *(d for level in range(n) for d in (1 + level, 1 + n + level))]
        self.loss = ConvNCFBPRLoss()

    def hyperparameters(self) -> dict:
        return {
            "n_users": self.n_users, "n_items": self.n_items, "embedding_size": self.embedding_size,
            "channels": self.channels, "kernel_sizes": self.kernel_sizes, "dropout": self.dropout_rate,
            "reg_embedding": self.reg_embedding, "reg_conv": self.reg_conv, "reg_out": self.reg_out,
            "reg_anchor": self.reg_anchor,
        }

    # --- scoring -------------------------------------------------------------------------------
    def tower(self, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """(B, d) user and item embeddings → (B,) scores, each layer one GEMM on the patch-ordered map."""
        batch = p.shape[0]
        x = torch.bmm(p.unsqueeze(2), q.unsqueeze(1))  # (B, d, d): E = p qᵀ
        x = x.view(batch, *self._digit_shape).permute(self._patch_order)  # (B, i_L, j_L, …, i_1, j_1)
        x = x.reshape(-1, 1)  # (B·d², C_in=1): one copy into patch order
        for conv in self.conv_layers:
            k, c_in = conv.kernel_size[0], conv.in_channels
            weight = conv.weight.permute(2, 3, 1, 0).reshape(k * k * c_in, conv.out_channels)
            x = torch.addmm(conv.bias, x.reshape(-1, k * k * c_in), weight).relu_()  # (B·cells, C)
        x = x.reshape(batch, self.channels)  # (B, C): the 1×1 map
        return self.predict_layer(self.dropout(x)).squeeze(-1)

    def forward(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        # user, item: (B,) int64 → (B,) float
        return self.tower(self.user_embedding(user), self.item_embedding(item))

    def forward_conv2d(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        """The same scores through ``nn.Conv2d`` on the (B, 1, d, d) map: the form exported to ONNX."""
        p, q = self.user_embedding(user), self.item_embedding(item)
        x = torch.bmm(p.unsqueeze(2), q.unsqueeze(1)).unsqueeze(1)  # (B, 1, d, d)
        for conv in self.conv_layers:
            x = torch.relu(conv(x))  # (B, C, d/k, d/k)
        return self.predict_layer(self.dropout(x.flatten(1))).squeeze(-1)

    def predict(self, interaction: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.forward(interaction["user"], interaction["item"])

    # --- training ------------------------------------------------------------------------------
    def reg_loss(self, user: torch.Tensor, pos_item: torch.Tensor, neg_item: torch.Tensor) -> torch.Tensor:
        """L2 as in the authors' code: batch embeddings, conv weights and output weights, each its own weight.

        With ``reg_anchor='init'`` the tower's terms measure the distance from its initial weights
        instead of from zero (L2-SP): with the MF-identity start, strong L2 then keeps MF's path intact.
        """
        embeddings = (self.user_embedding(user), self.item_embedding(pos_item), self.item_embedding(neg_item))
        loss = self.reg_embedding * sum(e.pow(2).sum() for e in embeddings)
        anchored = self.reg_anchor == "init"
        for index, conv in enumerate(self.conv_layers):
            anchor = getattr(self, f"conv_anchor_{index}") if anchored else 0.0
            loss = loss + self.reg_conv * (conv.weight - anchor).pow(2).sum()
        anchor = self.predict_anchor if anchored else 0.0
        return loss + self.reg_out * (self.predict_layer.weight - anchor).pow(2).sum()

    def calculate_loss(self, interaction: dict[str, torch.Tensor]) -> torch.Tensor:
        user, pos_item, neg_item = interaction["user"], interaction["item"], interaction["neg_item"]
        p = self.user_embedding(user)
        scores = self.tower(torch.cat([p, p]), self.item_embedding(torch.cat([pos_item, neg_item])))
        pos_score, neg_score = scores.chunk(2)  # one tower pass for both halves of the triple
        return self.loss(pos_score, neg_score) + self.reg_loss(user, pos_item, neg_item)

    # --- initialisation ------------------------------------------------------------------------
    @torch.no_grad()
    def init_from_mf(self, user_weight: torch.Tensor, item_weight: torch.Tensor, tower_init: str) -> None:
        """Copy MF's embeddings; ``tower_init='mf_identity'`` also makes the tower compute p·q exactly.

        With ``'mf_identity'``, channels 0 and 1 carry relu(s) and relu(−s) of the partial inner
        products along the map's diagonal up the tower, and the output layer reads s = relu(s) −
        relu(−s): the untrained ConvNCF scores exactly like its MF, and the other C−2 channels
        (output weight 0) learn what MF misses. ``'random'`` keeps the paper's random tower.
        """
        if tuple(user_weight.shape) != tuple(self.user_embedding.weight.shape) or tuple(item_weight.shape) != tuple(
            self.item_embedding.weight.shape
        ):
            raise ValueError(
                f"MF embeddings {tuple(user_weight.shape)}/{tuple(item_weight.shape)} do not fit ConvNCF's "
                f"{tuple(self.user_embedding.weight.shape)}/{tuple(self.item_embedding.weight.shape)}"
            )
        self.user_embedding.weight.copy_(user_weight)
        self.item_embedding.weight.copy_(item_weight)
        if tower_init not in ("random", "mf_identity"):
            raise ValueError(f"unknown tower_init '{tower_init}' (use 'mf_identity' or 'random')")
        if tower_init == "mf_identity":
            self._set_identity_tower()
        if self.reg_anchor == "init":
            for index, conv in enumerate(self.conv_layers):
                getattr(self, f"conv_anchor_{index}").copy_(conv.weight)
            self.predict_anchor.copy_(self.predict_layer.weight)

    @torch.no_grad()
    def _set_identity_tower(self) -> None:
        if self.channels < 2:
            raise ValueError("tower_init 'mf_identity' needs at least 2 channels")
        for index, conv in enumerate(self.conv_layers):
            k = conv.kernel_size[0]
            diagonal = torch.eye(k, dtype=conv.weight.dtype)  # (k, k): children on the map's diagonal
            conv.weight[:2] = 0  # channels 0 and 1 read nothing but the diagonal path
            conv.bias[:2] = 0
            if index == 0:
                conv.weight[0, 0], conv.weight[1, 0] = diagonal, -diagonal
            else:
                conv.weight[0, 0], conv.weight[0, 1] = diagonal, -diagonal
                conv.weight[1, 0], conv.weight[1, 1] = -diagonal, diagonal
        self.predict_layer.weight.zero_()
        self.predict_layer.weight[0, :2] = torch.tensor([1.0, -1.0])
        self.predict_layer.bias.zero_()
