"""Simple baselines that the field found hard to beat (Ferrari Dacrema et al., TOIS 2021), fitted on the training
matrix X (users × items, binary): TopPop, ItemKNN, UserKNN, RP3β, EASE^R and iALS (through ``implicit``).

Every one scores as ``score(u, i) = A[u] · B[:, i]`` for a user-side matrix A and an item-side matrix B (sparse or
dense): ItemKNN is X·S, UserKNN S·X, RP3β X·W, EASE^R X·B, iALS U·Vᵀ, TopPop 1·popularity. So one class,
:class:`LinearScorer`, answers ``score_block`` (users × items) and ``score_pairs`` for all of them, and the ranking,
tie rule and metrics that MF and ConvNCF go through apply unchanged. No torch, no Kedro.

    X           (n_users, n_items)  CSR, 1 where the user interacted in train
    A           (n_users, r)        sparse or dense
    B           (r, n_items)        sparse or dense
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

SAVED_FORMAT = 1


class TooLargeError(ValueError):
    """The model would not fit the memory budget; raised before allocating."""


@dataclasses.dataclass(frozen=True)
class LinearScorer:
    """``score(u, i) = A[u] · B[:, i]``: what every baseline here reduces to once fitted."""

    name: str
    params: dict[str, Any]
    user_side: sp.csr_matrix | np.ndarray  # A: (n_users, r)
    item_side: sp.csc_matrix | np.ndarray  # B: (r, n_items)
    floor_users: int = 0  # users with no training interaction, scored by popularity (see with_floor)

    @property
    def shape(self) -> tuple[int, int]:
        return self.user_side.shape[0], self.item_side.shape[1]

    def score_block(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """(U,) users × (I,) items → (U, I) float32 scores."""
        block = self.user_side[users] @ self.item_side[:, items]
        return np.asarray(block.toarray() if sp.issparse(block) else block, dtype=np.float32)

    def score_pairs(self, users: np.ndarray, items: np.ndarray, batch_pairs: int = 65536) -> np.ndarray:
        """(P,) users and items → (P,) float32 scores, row by row (never the whole users × items block)."""
        out = np.empty(len(users), dtype=np.float32)
        item_rows = self.item_side.T.tocsr() if sp.issparse(self.item_side) else self.item_side.T
        for start in range(0, len(users), batch_pairs):
            u, i = users[start:start + batch_pairs], items[start:start + batch_pairs]
            left, right = self.user_side[u], item_rows[i]
            if sp.issparse(left) or sp.issparse(right):
                product = sp.csr_matrix(left).multiply(right) if sp.issparse(left) else sp.csr_matrix(right).multiply(left)
                out[start:start + len(u)] = np.asarray(product.sum(axis=1)).ravel()
            else:
                out[start:start + len(u)] = np.einsum("pr,pr->p", left, right)
        return out

    def saved(self, **extra: Any) -> dict[str, np.ndarray]:
        """Arrays only, so the file reads back without pickle: each side dense, or as its sparse parts; the name,
        parameters and ``extra`` (JSON-able: validation metrics, trials…) as one JSON string."""
        described = {"format": SAVED_FORMAT, "model_class": self.name, "params": dict(self.params),
                     "floor_users": self.floor_users, **extra}
        return {**_matrix_arrays("user_side", self.user_side), **_matrix_arrays("item_side", self.item_side),
                "described": np.array(json.dumps(described, default=_plain))}


def left_out(name: str, reason: str, **extra: Any) -> dict[str, np.ndarray]:
    """The saved form of a configured baseline that was not fitted, and why (read back by :func:`saved_description`:
    evaluation reports it instead of losing it)."""
    described = {"format": SAVED_FORMAT, "model_class": name, "left_out": reason, **extra}
    return {"described": np.array(json.dumps(described, default=_plain))}


def saved_description(saved: dict[str, np.ndarray]) -> dict[str, Any]:
    """What :meth:`LinearScorer.saved` recorded beside the matrices (name, parameters, validation metrics…)."""
    described = json.loads(str(saved["described"])) if "described" in saved else {}
    if described.get("format") != SAVED_FORMAT or "model_class" not in described:
        raise ValueError(f"not a saved baseline of format {SAVED_FORMAT} ({described.get('model_class')!r}, format "
                         f"{described.get('format')!r}): re-run the baselines pipeline (kedro run --pipeline baselines)")
    return described


def load_baseline(saved: dict[str, np.ndarray]) -> LinearScorer:
    described = saved_description(saved)
    return LinearScorer(described["model_class"], described["params"], _matrix_from("user_side", saved),
                        _matrix_from("item_side", saved), described["floor_users"])


def _matrix_arrays(name: str, matrix: sp.spmatrix | np.ndarray) -> dict[str, np.ndarray]:
    if not sp.issparse(matrix):
        return {name: np.asarray(matrix)}
    fmt = "csc" if matrix.format == "csc" else "csr"
    matrix = matrix.asformat(fmt)
    return {f"{name}.{fmt}.data": matrix.data, f"{name}.{fmt}.indices": matrix.indices,
            f"{name}.{fmt}.indptr": matrix.indptr, f"{name}.{fmt}.shape": np.asarray(matrix.shape, dtype=np.int64)}


def _matrix_from(name: str, saved: dict[str, np.ndarray]) -> sp.spmatrix | np.ndarray:
    if name in saved:
        return saved[name]
    for fmt, build in (("csr", sp.csr_matrix), ("csc", sp.csc_matrix)):
        if f"{name}.{fmt}.data" in saved:
            parts = (saved[f"{name}.{fmt}.{part}"] for part in ("data", "indices", "indptr"))
            return build(tuple(parts), shape=tuple(int(n) for n in saved[f"{name}.{fmt}.shape"]))
    raise ValueError(f"the saved baseline has no '{name}': re-run the baselines pipeline (kedro run --pipeline baselines)")


def _plain(value: Any) -> Any:
    """numpy scalars (Optuna and metrics hand some back) as plain numbers for JSON."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-able")


def with_floor(model: LinearScorer, x: sp.csr_matrix) -> LinearScorer:
    """Users with no training interaction (every model here scores them 0 everywhere) get TopPop's scores instead:
    one more column in A (1 for those users) and one more row in B (training popularity)."""
    cold = (np.diff(x.indptr) == 0).astype(np.float32)[:, None]  # (n_users, 1)
    if not cold.any():
        return model
    popularity = np.asarray(x.sum(axis=0), dtype=np.float32)  # (1, n_items)
    stack_h, stack_v = (sp.hstack, sp.vstack) if sp.issparse(model.user_side) or sp.issparse(model.item_side) else (
        np.hstack, np.vstack)
    user_side = stack_h([model.user_side, cold])
    item_side = stack_v([model.item_side, popularity])
    return dataclasses.replace(model, user_side=sp.csr_matrix(user_side) if sp.issparse(user_side) else user_side,
                               item_side=sp.csc_matrix(item_side) if sp.issparse(item_side) else item_side,
                               floor_users=int(cold.sum()))


# --- the models --------------------------------------------------------------------------------------------
def toppop(x: sp.csr_matrix) -> LinearScorer:
    """Every user gets the items with the most training interactions: the floor any model must clear."""
    popularity = np.asarray(x.sum(axis=0), dtype=np.float32)  # (1, n_items)
    return LinearScorer("toppop", {}, np.ones((x.shape[0], 1), dtype=np.float32), popularity)


def weighted(entities: sp.csr_matrix, weighting: str) -> sp.csr_matrix:
    """Rows are the entities compared (items for ItemKNN, users for UserKNN), columns their features; TF-IDF or
    BM25 (K1 1.2, B 0.75, as TOIS 2021) weighting by ``implicit``'s functions, or none."""
    from implicit.nearest_neighbours import bm25_weight, tfidf_weight

    entities = sp.csr_matrix(entities, dtype=np.float32)
    if weighting == "none":
        return entities
    if weighting == "tfidf":
        return sp.csr_matrix(tfidf_weight(entities), dtype=np.float32)
    if weighting == "bm25":
        return sp.csr_matrix(bm25_weight(entities, K1=1.2, B=0.75), dtype=np.float32)
    raise ValueError(f"unknown weighting '{weighting}' (none, tfidf, bm25)")


def _top_k_columns(
    similarity_block: Callable[[np.ndarray], np.ndarray], n: int, top_k: int, block: int = 1024,
) -> sp.csc_matrix:
    """(n, n) sparse similarity keeping each column's ``top_k`` largest positive entries, built ``block`` columns
    at a time from dense ``similarity_block(columns) → (n, len(columns))`` (memory: n × block floats)."""
    top_k = min(top_k, n)
    rows, cols, vals = [], [], []
    for start in range(0, n, block):
        columns = np.arange(start, min(start + block, n))
        dense = similarity_block(columns)  # (n, C)
        dense[columns, np.arange(len(columns))] = 0.0  # no self-similarity
        keep = np.argpartition(-dense, top_k - 1, axis=0)[:top_k] if top_k < n else np.tile(np.arange(n)[:, None], len(columns))
        values = np.take_along_axis(dense, keep, axis=0)
        positive = values > 0
        rows.append(keep[positive])
        cols.append(np.broadcast_to(columns, keep.shape)[positive])
        vals.append(values[positive])
    return sp.csc_matrix((np.concatenate(vals).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(n, n))


def cosine_top_k(entities: sp.csr_matrix, top_k: int, shrink: float) -> sp.csc_matrix:
    """(n, n) cosine similarity of the rows of ``entities`` with shrink, ``sim(a, b) = a·b / (‖a‖‖b‖ + shrink)``,
    top-K per column, no self-similarity."""
    gram = (entities @ entities.T).tocsc()  # (n, n) sparse co-occurrences
    norms = np.sqrt(np.asarray(entities.multiply(entities).sum(axis=1)).ravel()).astype(np.float32)

    def block(columns: np.ndarray) -> np.ndarray:
        dot = gram[:, columns].toarray()
        return dot / (np.outer(norms, norms[columns]) + shrink + 1e-12)

    return _top_k_columns(block, gram.shape[0], top_k)


def itemknn(x: sp.csr_matrix, top_k: int, shrink: float, weighting: str = "none") -> LinearScorer:
    """score(u, i) = Σ_j x_uj · sim(j, i), sim kept for the ``top_k`` items most similar to i (cosine, shrink)."""
    similarity = cosine_top_k(weighted(x.T, weighting), top_k, shrink)  # (items, items), top-K per column i
    return LinearScorer("itemknn", {"top_k": top_k, "shrink": shrink, "weighting": weighting},
                        sp.csr_matrix(x, dtype=np.float32), similarity)


def userknn(x: sp.csr_matrix, top_k: int, shrink: float, weighting: str = "none") -> LinearScorer:
    """score(u, i) = Σ_v sim(u, v) · x_vi over the ``top_k`` users most similar to u (cosine, shrink)."""
    similarity = cosine_top_k(weighted(x, weighting), top_k, shrink)  # (users, users), top-K per column u
    return LinearScorer("userknn", {"top_k": top_k, "shrink": shrink, "weighting": weighting},
                        similarity.T.tocsr(), sp.csc_matrix(x, dtype=np.float32))


def rp3beta(x: sp.csr_matrix, alpha: float, beta: float, top_k: int) -> LinearScorer:
    """Random walk item → user → item with transition probabilities raised to α (Paudel et al. 2017), each target
    item's column divided by its popularity^β, the ``top_k`` largest kept per source item (row), as TOIS 2021's
    code does; score = X · W."""
    x = sp.csr_matrix(x, dtype=np.float32)
    degree_user = np.maximum(np.diff(x.indptr), 1).astype(np.float32)
    popularity = np.maximum(np.bincount(x.indices, minlength=x.shape[1]), 1).astype(np.float32)
    p_ui = sp.diags(1.0 / degree_user) @ x  # rows sum to 1: user → item
    p_iu = sp.diags(1.0 / popularity) @ x.T.tocsr()  # rows sum to 1: item → user
    p_ui.data **= alpha
    p_iu.data **= alpha
    walk = (p_iu @ p_ui).tocsr()  # (items, items): item → user → item
    penalty = popularity ** -beta

    def rows_as_columns(sources: np.ndarray) -> np.ndarray:  # Wᵀ[:, sources]: pruning Wᵀ's columns prunes W's rows
        return (walk[sources].toarray() * penalty).T

    pruned_transpose = _top_k_columns(rows_as_columns, x.shape[1], top_k)
    return LinearScorer("rp3beta", {"alpha": alpha, "beta": beta, "top_k": top_k}, x, pruned_transpose.T.tocsc())


def ease_bytes(n_items: int) -> int:
    """What EASE^R allocates at its peak: the Gram matrix, its inverse and B, float32 (n_items² each)."""
    return 3 * 4 * n_items * n_items


def ease(x: sp.csr_matrix, l2: float, memory_budget_bytes: int) -> LinearScorer:
    """EASE^R (Steck 2019): G = XᵀX + λI, P = G⁻¹, B = −P / diag(P) column-wise, diag(B) = 0; score = X · B."""
    needed = ease_bytes(x.shape[1])
    if needed > memory_budget_bytes:
        raise TooLargeError(f"EASE^R on {x.shape[1]:,} items needs {needed / 2**30:.1f} GiB, over the budget of "
                            f"{memory_budget_bytes / 2**30:.1f} GiB (baselines.memory_budget_gib)")
    x = sp.csr_matrix(x, dtype=np.float32)
    gram = (x.T @ x).toarray()
    gram[np.diag_indices_from(gram)] += l2
    inverse = np.linalg.inv(gram)
    del gram
    weights = inverse / (-np.diag(inverse))
    weights[np.diag_indices_from(weights)] = 0.0
    return LinearScorer("ease", {"l2": l2}, x, weights.astype(np.float32))


def ials(x: sp.csr_matrix, factors: int, regularization: float, alpha: float, iterations: int, seed: int,
         threads: int) -> LinearScorer:
    """Implicit ALS (Hu et al. 2008) through ``implicit``: confidence 1 + α·x, least squares on preferences.

    ``implicit`` weighs an observed item by its ``alpha`` times the stored value and a missing one by 1 (checked
    against the closed-form solve: shared/NOTES.md), so Hu et al.'s 1 + α·x on a binary matrix is its alpha = 1 + α:
    an observed item never weighs less than a missing one, whatever α the search tries."""
    from implicit.cpu.als import AlternatingLeastSquares

    model = AlternatingLeastSquares(factors=factors, regularization=regularization, alpha=1.0 + alpha,
                                    iterations=iterations,
                                    random_state=seed, num_threads=threads, calculate_training_loss=False)
    model.fit(sp.csr_matrix(x, dtype=np.float32), show_progress=False)
    return LinearScorer("ials", {"factors": factors, "regularization": regularization, "alpha": alpha,
                                 "iterations": iterations, "seed": seed},
                        np.asarray(model.user_factors, dtype=np.float32), np.asarray(model.item_factors, dtype=np.float32).T)
