"""BPR training triples drawn from the training CSR matrix, vectorised."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from convncf_kedro.interactions.prepare import contains_sorted, pair_keys


def sample_triples(train_matrix: sp.csr_matrix, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every training (user, positive) once, shuffled, each with one uniform negative the user never had.

    Negatives are drawn for all pairs at once; the few that hit a positive are redrawn (only those),
    so the cost stays linear in the number of interactions. A user who has every item has no negative
    and gives no triple (``dataset_statistics.json`` counts them as ``users_with_every_item``).
    """
    n_users, n_items = train_matrix.shape
    positive_keys = pair_keys(train_matrix)  # ascending: CSR rows in order, sorted indices
    saturated = np.flatnonzero(np.diff(train_matrix.indptr) >= n_items)
    trainable = ~np.isin(positive_keys // n_items, saturated)
    order = rng.permutation(int(trainable.sum()))
    keys = positive_keys[trainable][order]
    users = (keys // n_items).astype(np.int64)
    positives = (keys % n_items).astype(np.int64)
    negatives = rng.integers(0, n_items, size=len(users))
    redraw = np.flatnonzero(contains_sorted(positive_keys, users * n_items + negatives))
    while len(redraw):
        negatives[redraw] = rng.integers(0, n_items, size=len(redraw))
        hit = contains_sorted(positive_keys, users[redraw] * n_items + negatives[redraw])
        redraw = redraw[hit]
    return users, positives, negatives
