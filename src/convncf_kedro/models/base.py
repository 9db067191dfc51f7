"""The contract every model here keeps: RecBole's API, a frozen config, its optimisers, its saved form.

Like RecBole's ``AbstractRecommender``, every model answers ``forward(user, item)``, ``predict``,
``calculate_loss`` (BPR summed over the batch + ``reg_loss``) and ``score_block``; like nanoGPT's
``GPT``, it is built from a frozen config dataclass, which its saved form stores, and it builds its
own optimisers (``configure_optimizers``). Nothing outside ``models/`` reads a saved model's layout:
``saved()`` writes it and ``load_model()`` reads it back.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

SAVED_FORMAT = 2  # bump when the saved dict's layout or its extras change: older files are then refused


class OutdatedModelError(ValueError):
    """A saved model or checkpoint was written by another version of this project's saved format."""


class BPRLoss(nn.Module):
    """Pairwise BPR loss summed over the batch: Σ softplus(−(pos − neg)) = −Σ ln σ(pos − neg)."""

    def forward(self, pos_score: torch.Tensor, neg_score: torch.Tensor) -> torch.Tensor:
        return F.softplus(neg_score - pos_score).sum()


@dataclasses.dataclass(frozen=True)
class Phase:
    """One stretch of training with its own fresh optimisers (what a schedule's phase asks for)."""

    lr_embedding: float  # 0 freezes the embeddings
    lr_tower: float  # 0 freezes every non-embedding parameter
    optimizer: str = "adagrad"  # adagrad | adam
    adagrad_initial_accumulator: float = 0.0  # TensorFlow 1's Adagrad starts at 0.1, PyTorch's at 0


class BPRRecommender(nn.Module):
    """User and item embeddings scored by ``forward``; trained with BPR on (user, pos, neg) triples."""

    config_class: ClassVar[type]
    _registry: ClassVar[dict[str, type[BPRRecommender]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        BPRRecommender._registry[cls.__name__] = cls

    def __init__(self, config: Any):
        super().__init__()
        self.config = config
        self.user_embedding = nn.Embedding(config.n_users, config.embedding_size)  # P: (n_users, d)
        self.item_embedding = nn.Embedding(config.n_items, config.embedding_size)  # Q: (n_items, d)
        self.loss = BPRLoss()

    # --- scoring -------------------------------------------------------------------------------
    def forward(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:  # (B,), (B,) → (B,)
        return self.interact(self.user_embedding(user), self.item_embedding(item))

    def interact(self, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """(B, d) user and item embedding rows → (B,) scores: the model past its embedding lookups."""
        raise NotImplementedError

    def predict(self, interaction: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.forward(interaction["user"], interaction["item"])

    def score_block(self, users: torch.Tensor, items: torch.Tensor, batch_pairs: int = 65536) -> torch.Tensor:
        """(U,) users × (I,) items → (U, I) scores, ``batch_pairs`` pairs per forward pass."""
        pair_users = users.repeat_interleave(len(items))
        pair_items = items.repeat(len(users))
        scores = torch.cat([
            self.forward(pair_users[s:s + batch_pairs], pair_items[s:s + batch_pairs])
            for s in range(0, len(pair_users), batch_pairs)
        ])
        return scores.reshape(len(users), len(items))

    def exportable(self) -> nn.Module:
        """The module exported to ONNX: same ``(user, item) → score`` function, in the form ORT runs best."""
        return self

    def retrieval(self) -> nn.Module:
        """``user (B,) → (B, n_items)`` dot products of the model's own embeddings: the cheap first stage that
        shortlists items for the model to re-rank (exported as the retrieval graph)."""
        return _DotProductRetrieval(self.user_embedding, self.item_embedding)

    # --- training ------------------------------------------------------------------------------
    def reg_loss(self, user: torch.Tensor, pos_item: torch.Tensor, neg_item: torch.Tensor) -> torch.Tensor:
        """L2 on the embedding rows the batch touches (the authors' ``regs[0]``) and on the model's own weights."""
        return self.rows_reg_loss(user, pos_item, neg_item) + self.weights_reg_loss()

    def rows_reg_loss(self, user: torch.Tensor, pos_item: torch.Tensor, neg_item: torch.Tensor) -> torch.Tensor:
        """The part of ``reg_loss`` that sums over the batch's rows (so over a batch's chunks)."""
        return self._rows_l2(self.user_embedding(user), self.item_embedding(pos_item), self.item_embedding(neg_item))

    def _rows_l2(self, *rows: torch.Tensor) -> torch.Tensor:
        return self.config.reg_embedding * sum(r.pow(2).sum() for r in rows)

    def weights_reg_loss(self) -> torch.Tensor | float:
        """The part of ``reg_loss`` on the weights beyond the embeddings, counted once per batch (MF has none)."""
        return 0.0

    def calculate_loss(
        self, interaction: dict[str, torch.Tensor], regularised: bool = True, weights_reg: bool = True,
    ) -> torch.Tensor:
        """BPR summed over the triples + ``reg_loss``; ``weights_reg=False`` leaves out the once-per-batch weight
        term, for every chunk but one when a batch is trained in chunks (the sum is then the batch's loss)."""
        # Each table is looked up once, and the L2 reads the same rows: one sparse gradient per table and step
        # (three lookups of the item table made torch add sparse gradients, a third of an MF step).
        p = self.user_embedding(interaction["user"])  # (B, d)
        q = self.item_embedding(torch.cat([interaction["item"], interaction["neg_item"]]))  # (2B, d): pos, then neg
        scores = self.interact(torch.cat([p, p]), q)  # one pass for both halves of the triple
        pos_score, neg_score = scores.float().chunk(2)
        loss = self.loss(pos_score, neg_score)
        if not regularised:
            return loss
        return loss + self._rows_l2(p, q) + (self.weights_reg_loss() if weights_reg else 0.0)

    def embedding_parameters(self) -> list[nn.Parameter]:
        return [self.user_embedding.weight, self.item_embedding.weight]

    def tower_parameters(self) -> list[nn.Parameter]:
        embeddings = self.embedding_parameters()
        return [p for p in self.parameters() if all(p is not e for e in embeddings)]

    def configure_optimizers(self, phase: Phase) -> list[torch.optim.Optimizer]:
        """Fresh optimisers for one phase: sparse ones for the embeddings (a batch touches few rows),
        dense ones for the rest, each with its learning rate; a rate of 0 freezes that part."""
        self.user_embedding.sparse = self.item_embedding.sparse = True
        parts = [(self.embedding_parameters(), phase.lr_embedding, True), (self.tower_parameters(), phase.lr_tower, False)]
        optimizers: list[torch.optim.Optimizer] = []
        adagrad_groups = []
        for params, lr, sparse in parts:
            for p in params:
                p.requires_grad_(lr > 0)
            if not params or lr == 0:
                continue
            if phase.optimizer == "adagrad":
                adagrad_groups.append({"params": params, "lr": lr})
            elif phase.optimizer == "adam":
                optimizers.append(torch.optim.SparseAdam(params, lr=lr) if sparse else torch.optim.Adam(params, lr=lr))
            else:
                raise ValueError(f"unknown optimizer '{phase.optimizer}' (use 'adagrad' or 'adam')")
        if adagrad_groups:
            optimizers.append(torch.optim.Adagrad(adagrad_groups, initial_accumulator_value=phase.adagrad_initial_accumulator))
        if not optimizers:
            raise ValueError("this phase trains nothing: lr_embedding and lr_tower are both 0")
        return optimizers

    # --- saved form ----------------------------------------------------------------------------
    def saved(self, **extra: Any) -> dict[str, Any]:
        """A plain dict (tensors, numbers, strings) that ``load_model`` rebuilds; ``extra`` (fields of
        :class:`ModelInfo`) rides along."""
        unknown = set(extra) - EXTRA_FIELDS
        if unknown:
            raise TypeError(f"{sorted(unknown)} are not fields of ModelInfo ({sorted(EXTRA_FIELDS)})")
        state = {name: tensor.detach().cpu().clone() for name, tensor in self.state_dict().items()}
        return {"format": SAVED_FORMAT, "model_class": type(self).__name__, "config": self._config_dict(),
                "state_dict": state, **extra}

    def _config_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self.config).items()}

    def load_saved(self, saved: dict[str, Any]) -> None:
        """Load the weights of a saved model of this very class and config (e.g. to resume)."""
        check_format(saved)
        if saved.get("model_class") != type(self).__name__ or saved.get("config") != self._config_dict():
            raise ValueError(
                f"the saved {saved.get('model_class')} {saved.get('config')} is not this "
                f"{type(self).__name__} {self._config_dict()}"
            )
        self.load_state_dict(saved["state_dict"])

    def fingerprint_bytes(self) -> bytes:
        """The class, config and current weights, as bytes to hash (what a resume must match)."""
        saved = self.saved()
        parts = [str(SAVED_FORMAT).encode(), saved["model_class"].encode(), repr(sorted(saved["config"].items())).encode()]
        for name, tensor in sorted(saved["state_dict"].items()):
            parts += [name.encode(), tensor.contiguous().numpy().tobytes()]
        return b"".join(parts)


def check_format(saved: dict[str, Any]) -> None:
    if saved.get("format") != SAVED_FORMAT:
        raise OutdatedModelError(
            f"this {saved.get('model_class', 'model')} file was saved in format {saved.get('format', 1)}, this version "
            f"reads format {SAVED_FORMAT}: re-run the training stages (kedro run --pipeline train) to rebuild it"
        )


def load_model(saved: dict[str, Any]) -> BPRRecommender:
    """Rebuild a model from ``BPRRecommender.saved()``, in eval mode on the CPU."""
    check_format(saved)
    cls = BPRRecommender._registry.get(saved.get("model_class", ""))
    if cls is None:
        raise ValueError(
            f"unknown model class {saved.get('model_class')!r}; expected one of {sorted(BPRRecommender._registry)}"
        )
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in saved["config"].items()}
    model = cls(cls.config_class(**config))
    model.load_state_dict(saved["state_dict"])
    return model.eval()


class _DotProductRetrieval(nn.Module):
    def __init__(self, users: nn.Embedding, items: nn.Embedding):
        super().__init__()
        self.users, self.items = users, items

    def forward(self, user: torch.Tensor) -> torch.Tensor:  # (B,) → (B, n_items)
        return self.users(user) @ self.items.weight.T


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What a saved model says about itself beyond its weights: written by training (``saved(**extra)`` accepts
    these fields only), read by every later stage through :func:`saved_info`."""

    model_class: str
    config: dict[str, Any]
    epoch: int | None = None  # the selected epoch (0: the untrained start)
    valid_metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    selection_metric: str | None = None
    trained_in: str | None = None  # precision of the training steps
    validated_in: str | None = None  # precision of validation (always fp32)
    data_fingerprint: str | None = None  # the ingestion run it was trained on (interactions.lineage)
    stopped: str | None = None  # why training ended
    recipe: str | None = None  # ConvNCF's recipe, or the study's variant


EXTRA_FIELDS = {f.name for f in dataclasses.fields(ModelInfo)} - {"model_class", "config"}


def saved_info(saved: dict[str, Any]) -> ModelInfo:
    """What a saved model says about itself beyond its weights: class, config and the ``extra`` it carries."""
    check_format(saved)
    return ModelInfo(**{k: v for k, v in saved.items() if k not in ("state_dict", "format")})
