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
from numba import njit

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
            left = self.user_side[u]
            if sp.issparse(left) and not sp.issparse(self.item_side):
                # Σ_j A[u, j] B[j, i] over A's stored entries only: EASE^R's dense B row is n_items floats a pair
                left = sp.csr_matrix(left)
                pair = np.repeat(np.arange(len(u)), np.diff(left.indptr))
                out[start:start + len(u)] = np.bincount(
                    pair, weights=left.data * self.item_side[left.indices, i[pair]], minlength=len(u))
                continue
            right = item_rows[i]
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
    # each side keeps its kind: EASE^R's dense B beside a sparse X must not become a sparse matrix of n² entries
    user_side = (sp.hstack([model.user_side, sp.csr_matrix(cold)], format="csr") if sp.issparse(model.user_side)
                 else np.hstack([model.user_side, cold]))
    item_side = (sp.vstack([model.item_side, sp.csr_matrix(popularity)], format="csc") if sp.issparse(model.item_side)
                 else np.vstack([model.item_side, popularity]))
    return dataclasses.replace(model, user_side=user_side, item_side=item_side, floor_users=int(cold.sum()))


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


def _top_k_rows(similarity_rows: Callable[[np.ndarray], sp.spmatrix], n: int, top_k: int,
                block: int = 1024) -> sp.csr_matrix:
    """(n, n) sparse similarity keeping each row's ``top_k`` largest positive entries, built ``block`` rows at a time
    from sparse ``similarity_rows(rows) → (len(rows), n)``: work and memory follow the co-occurrences, never n²
    (a dense block of 27 k items spends its time selecting among zeros)."""
    rows, cols, vals = [], [], []
    for start in range(0, n, block):
        part = similarity_rows(np.arange(start, min(start + block, n))).tocoo()
        row, col, val = part.row.astype(np.int64) + start, part.col, part.data
        keep = (val > 0) & (col != row)  # positive, no self-similarity
        row, col, val = row[keep], col[keep], val[keep]
        if np.any(np.diff(row) < 0):  # rows in order (a CSR product's COO already is), each row's entries as given
            by_row = np.argsort(row, kind="stable")
            row, col, val = row[by_row], col[by_row], val[by_row]
        top = _largest_in_each_row(row, val, top_k)
        rows.append(row[top])
        cols.append(col[top])
        vals.append(val[top])
    return sp.csr_matrix((np.concatenate(vals).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(n, n))


@njit
def _largest_in_each_row(row: np.ndarray, val: np.ndarray, top_k: int) -> np.ndarray:
    """Positions of each row's ``top_k`` largest values, row by row, largest first, equal values in their given
    order (a stable sort per row: one compiled pass instead of a lexsort of the whole block)."""
    kept, n = np.empty(len(row), np.int64), 0
    start = 0
    while start < len(row):
        end = start
        while end < len(row) and row[end] == row[start]:
            end += 1
        for position in np.argsort(-val[start:end], kind="mergesort")[:top_k]:
            kept[n] = start + position
            n += 1
        start = end
    return kept[:n]


def similarity_products(x: sp.csr_matrix) -> dict[str, float]:
    """Multiply-adds to build each neighbourhood model's similarity from the training matrix: every pair of items a
    user shares (ItemKNN; RP3β's item → user → item walk) or every pair of users an item shares (UserKNN). Known
    before any fitting, and what a fit's time follows: quadratic in the most active users and most popular items."""
    activity = np.diff(x.indptr).astype(np.float64)
    popularity = np.bincount(x.indices, minlength=x.shape[1]).astype(np.float64)
    return {"itemknn": float(activity @ activity), "rp3beta": float(activity @ activity),
            "userknn": float(popularity @ popularity)}


def cosine_top_k(entities: sp.csr_matrix, top_k: int, shrink: float) -> sp.csr_matrix:
    """(n, n) cosine similarity of the rows of ``entities`` with shrink, ``sim(a, b) = a·b / (‖a‖‖b‖ + shrink)``,
    top-K per row (the matrix is symmetric before pruning), no self-similarity, a block of rows at a time."""
    norms = np.sqrt(np.asarray(entities.multiply(entities).sum(axis=1)).ravel()).astype(np.float32)
    features = entities.T.tocsr()  # (m, n)

    def block(sources: np.ndarray) -> sp.coo_matrix:
        dot = (entities[sources] @ features).tocoo()  # (C, n) co-occurrences
        dot.data /= norms[sources][dot.row] * norms[dot.col] + (shrink + 1e-12)
        return dot

    return _top_k_rows(block, entities.shape[0], top_k)


def itemknn(x: sp.csr_matrix, top_k: int, shrink: float, weighting: str = "none") -> LinearScorer:
    """score(u, i) = Σ_j x_uj · sim(j, i), sim kept for the ``top_k`` items most similar to i (cosine, shrink)."""
    similarity = cosine_top_k(weighted(x.T, weighting), top_k, shrink)  # (items, items), top-K per row i
    return LinearScorer("itemknn", {"top_k": top_k, "shrink": shrink, "weighting": weighting},
                        sp.csr_matrix(x, dtype=np.float32), similarity.T.tocsc())  # column i: i's top-K


def userknn(x: sp.csr_matrix, top_k: int, shrink: float, weighting: str = "none") -> LinearScorer:
    """score(u, i) = Σ_v sim(u, v) · x_vi over the ``top_k`` users most similar to u (cosine, shrink)."""
    similarity = cosine_top_k(weighted(x, weighting), top_k, shrink)  # (users, users), top-K per row u
    return LinearScorer("userknn", {"top_k": top_k, "shrink": shrink, "weighting": weighting},
                        similarity, sp.csc_matrix(x, dtype=np.float32))


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
    penalty = popularity ** -beta

    def walk_rows(sources: np.ndarray) -> sp.coo_matrix:  # W[sources]: item → user → item, a block at a time
        walk = (p_iu[sources] @ p_ui).tocoo()  # (C, items)
        walk.data *= penalty[walk.col]
        return walk

    return LinearScorer("rp3beta", {"alpha": alpha, "beta": beta, "top_k": top_k}, x,
                        _top_k_rows(walk_rows, x.shape[1], top_k).tocsc())


def ease_bytes(n_items: int) -> int:
    """What EASE^R allocates at its peak: one float32 n_items² matrix (the Gram matrix, inverted and turned into B in
    place) and a block of columns beside it."""
    return 4 * n_items * n_items + 4 * n_items * GRAM_BLOCK


GRAM_BLOCK = 1024  # items per column block of the dense Gram matrix


def ease(x: sp.csr_matrix, l2: float, memory_budget_bytes: int) -> LinearScorer:
    """EASE^R (Steck 2019): G = XᵀX + λI, P = G⁻¹, B = −P / diag(P) column-wise, diag(B) = 0; score = X · B.

    One n_items² float32 matrix throughout: G is filled a block of columns at a time (the sparse XᵀX of a large log
    is nearly dense, at 8 bytes an entry), inverted in place by Cholesky (G is symmetric positive definite for λ > 0;
    LAPACK's spotrf/spotri, a third of a general inverse's work) and scaled into B in place."""
    from scipy.linalg import lapack

    n = x.shape[1]
    needed = ease_bytes(n)
    if needed > memory_budget_bytes:
        raise TooLargeError(f"EASE^R on {n:,} items needs {needed / 2**30:.1f} GiB, over the budget of "
                            f"{memory_budget_bytes / 2**30:.1f} GiB (baselines.memory_budget_gib)")
    x = sp.csr_matrix(x, dtype=np.float32)
    by_item, by_item_column = x.T.tocsr(), x.tocsc()
    weights = np.empty((n, n), dtype=np.float32, order="F")
    for start in range(0, n, GRAM_BLOCK):
        weights[:, start:start + GRAM_BLOCK] = (by_item @ by_item_column[:, start:start + GRAM_BLOCK]).toarray()
    weights[np.diag_indices(n)] += l2
    factor, info = lapack.spotrf(weights, lower=True, overwrite_a=True, clean=False)
    if info == 0:
        _, info = lapack.spotri(factor, lower=True, overwrite_c=True)
    if info != 0:
        raise ValueError(f"EASE^R: XᵀX + λI is not positive definite (LAPACK info {info}); raise baselines' l2 range")
    for start in range(0, n, GRAM_BLOCK):  # P's upper triangle from its lower one
        weights[start:start + GRAM_BLOCK, start + GRAM_BLOCK:] = weights[start + GRAM_BLOCK:, start:start + GRAM_BLOCK].T
        block = weights[start:start + GRAM_BLOCK, start:start + GRAM_BLOCK]
        block[np.triu_indices(len(block), 1)] = block.T[np.triu_indices(len(block), 1)]
    weights /= -np.diag(weights).copy()  # column j divided by −P_jj
    weights[np.diag_indices(n)] = 0.0
    return LinearScorer("ease", {"l2": l2}, x, weights)


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
