"""ConvNCF (He et al., IJCAI 2018): a conv tower over the outer product of user and item embeddings.

    p_u, q_i            (B, d)             embeddings, initialised from MF-BPR
    E = p_u q_iᵀ        (B, 1, d, d)       interaction map
    conv k×k, stride k  (B, C, d/k, d/k)   + bias, ReLU; repeated until the map is 1×1
    linear C → 1        (B,)               score  (residual: p_u·q_i + that, output layer starting at 0)

Every conv layer has kernel == stride and no padding, so it only mixes the k×k children of each
output cell: a reshape and one matrix multiply. :meth:`ConvNCF.forward` computes the tower that way
on a map laid out in *patch order* (each layer's children contiguous), built directly in that order
by gathering p and q (a 2·log2(d)-dimensional permute copy cost a fifth of a training step), with no
copies between layers (on CPU in fp32 the first two layers run fused: :mod:`.fused_layers`); :meth:`ConvNCF.forward_conv2d` is the plain ``nn.Conv2d`` form of the same function (the one
exported to ONNX). Both read the same ``nn.Conv2d`` weights.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from . import fused_layers
from .base import BPRLoss, BPRRecommender

ConvNCFBPRLoss = BPRLoss  # RecBole's name for the same loss

TOWER_INITS = ("truncated_normal", "mf_identity")


def default_kernel_sizes(embedding_size: int) -> tuple[int, ...]:
    """The paper's tower: 2×2/stride-2 layers, log2(d) of them."""
    return (2,) * round(math.log2(embedding_size))


@dataclasses.dataclass(frozen=True)
class ConvNCFConfig:
    n_users: int
    n_items: int
    embedding_size: int = 64
    channels: int = 32
    kernel_sizes: tuple[int, ...] | None = None  # kernel = stride per layer; None: the paper's 2×2 layers
    dropout: float = 0.0  # before the output layer
    reg_embedding: float = 0.0  # L2 on the batch's embedding rows
    reg_conv: float = 0.0  # L2 on conv weights and biases
    reg_out: float = 0.0  # L2 on the output layer's weight and bias
    residual: bool = False  # score = p·q + tower(p ⊗ q)

    def __post_init__(self) -> None:
        kernel_sizes = tuple(self.kernel_sizes or default_kernel_sizes(self.embedding_size))
        object.__setattr__(self, "kernel_sizes", kernel_sizes)
        if math.prod(kernel_sizes) != self.embedding_size:
            raise ValueError(
                f"kernel sizes {list(kernel_sizes)} reduce a {self.embedding_size}×{self.embedding_size} map to "
                f"{self.embedding_size / math.prod(kernel_sizes):g}×…, not 1×1: their product must be "
                f"{self.embedding_size}"
            )


class ConvNCF(BPRRecommender):
    config_class = ConvNCFConfig

    def __init__(self, config: ConvNCFConfig):
        super().__init__(config)
        kernel_sizes = config.kernel_sizes
        self.conv_layers = nn.ModuleList(
            nn.Conv2d(1 if i == 0 else config.channels, config.channels, kernel_size=k, stride=k)
            for i, k in enumerate(kernel_sizes)
        )
        self.dropout = nn.Dropout(config.dropout)
        self.predict_layer = nn.Linear(config.channels, 1)
        # E (B, d, d) viewed as (B, i_L, …, i_1, j_L, …, j_1) and permuted to (B, i_L, j_L, …, i_1, j_1)
        # is the map in patch order: layer l's k_l×k_l children of a cell are contiguous
        n, d = len(kernel_sizes), config.embedding_size
        digit_shape = [*reversed(kernel_sizes), *reversed(kernel_sizes)]
        patch_order = [d for level in range(n) for d in (level, n + level)]
        cell = torch.arange(d * d).view(digit_shape).permute(patch_order).reshape(-1)  # (d²,) map cell in patch order
        self.register_buffer("_patch_rows", cell // d, persistent=False)  # (d²,) i of each patch-ordered cell
        self.register_buffer("_patch_cols", cell % d, persistent=False)  # (d²,) j

    # --- scoring -------------------------------------------------------------------------------
    def tower(self, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """(B, d) user and item embeddings → (B,) scores, each layer one GEMM on the patch-ordered map."""
        batch = p.shape[0]
        layers = list(self.conv_layers)
        if fused_layers.applies(p, len(layers)):  # CPU fp32: the map and layers 1–2 in one pass
            first, second = layers[0], layers[1]
            x = fused_layers.FusedFirstLayers.apply(p, q, self._patch_rows, self._patch_cols, _patch_weight(first),
                                                    first.bias, _patch_weight(second), second.bias)  # (B·cells₂, C)
            layers = layers[2:]
        else:
            x = p.index_select(1, self._patch_rows) * q.index_select(1, self._patch_cols)  # (B, d²): E = p qᵀ in patch order
        for conv in layers:
            x = torch.addmm(conv.bias, x.reshape(-1, _patch(conv)), _patch_weight(conv)).relu_()  # (B·cells, C)
        x = x.reshape(batch, self.config.channels)  # (B, C): the 1×1 map
        return self.predict_layer(self.dropout(x)).squeeze(-1)

    def interact(self, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        # p, q: (B, d) → (B,)
        score = self.tower(p, q)
        return score + (p * q).sum(-1) if self.config.residual else score

    def forward_conv2d(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        """The same scores through ``nn.Conv2d`` on the (B, 1, d, d) map: the form exported to ONNX."""
        p, q = self.user_embedding(user), self.item_embedding(item)
        x = torch.bmm(p.unsqueeze(2), q.unsqueeze(1)).unsqueeze(1)  # (B, 1, d, d)
        for conv in self.conv_layers:
            x = torch.relu(conv(x))  # (B, C, d/k, d/k)
        score = self.predict_layer(self.dropout(x.flatten(1))).squeeze(-1)
        return score + (p * q).sum(-1) if self.config.residual else score

    def exportable(self) -> nn.Module:
        return _Conv2dForm(self)

    # --- training ------------------------------------------------------------------------------
    def weights_reg_loss(self) -> torch.Tensor:
        """L2 as in the authors' code beyond the batch's embeddings: conv weights and biases, output weight and bias."""
        conv = sum(w.pow(2).sum() for layer in self.conv_layers for w in (layer.weight, layer.bias))
        out = self.predict_layer.weight.pow(2).sum() + self.predict_layer.bias.pow(2).sum()
        return self.config.reg_conv * conv + self.config.reg_out * out

    # --- initialisation ------------------------------------------------------------------------
    @torch.no_grad()
    def start_from(self, mf: BPRRecommender, tower_init: str) -> None:
        """Copy a trained MF's embeddings and initialise the tower.

        ``'truncated_normal'`` is the authors' tower: conv and output weights (and output bias)
        N(0, 0.1²) truncated at two standard deviations, conv biases 0.1. ``'mf_identity'``: channels
        0 and 1 carry relu(s) and relu(−s) of the partial inner products along the map's diagonal up
        the tower and the output layer reads s = relu(s) − relu(−s), so the untrained ConvNCF scores
        exactly like its MF (the other C−2 channels start with output weight 0). A residual ConvNCF
        starts with its output layer at 0: it scores exactly like its MF, whatever the tower.
        """
        for mine, theirs in zip(self.embedding_parameters(), mf.embedding_parameters(), strict=True):
            if mine.shape != theirs.shape:
                raise ValueError(f"MF embeddings {tuple(theirs.shape)} do not fit ConvNCF's {tuple(mine.shape)}")
            mine.copy_(theirs)
        if tower_init == "truncated_normal":
            for layer in self.conv_layers:
                nn.init.trunc_normal_(layer.weight, std=0.1, a=-0.2, b=0.2)
                nn.init.constant_(layer.bias, 0.1)
            nn.init.trunc_normal_(self.predict_layer.weight, std=0.1, a=-0.2, b=0.2)
            nn.init.trunc_normal_(self.predict_layer.bias, std=0.1, a=-0.2, b=0.2)
        elif tower_init == "mf_identity":
            if self.config.residual:
                raise ValueError("tower_init 'mf_identity' with residual: true would count MF's score twice")
            self._set_identity_tower()
        else:
            raise ValueError(f"unknown tower_init '{tower_init}' (use one of {', '.join(TOWER_INITS)})")
        if self.config.residual:
            self.predict_layer.weight.zero_()
            self.predict_layer.bias.zero_()

    @torch.no_grad()
    def _set_identity_tower(self) -> None:
        if self.config.channels < 2:
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


def _patch(conv: nn.Conv2d) -> int:
    """Inputs of one output cell: its k×k children's channels."""
    return conv.kernel_size[0] * conv.kernel_size[1] * conv.in_channels


def _patch_weight(conv: nn.Conv2d) -> torch.Tensor:
    """(C_out, C_in, k, k) → (k·k·C_in, C_out): the weight as the GEMM on patch-ordered rows reads it."""
    return conv.weight.permute(2, 3, 1, 0).reshape(_patch(conv), conv.out_channels)


class _Conv2dForm(nn.Module):
    """The model's nn.Conv2d form (ONNX Runtime runs plain Conv nodes fastest)."""

    def __init__(self, model: ConvNCF):
        super().__init__()
        self.model = model

    def forward(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        return self.model.forward_conv2d(user, item)
