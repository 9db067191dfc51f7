"""Sparse-matrix stage: the training interactions as CSR, and the dataset statistics report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from convncf_kedro.interactions.prepare import positives_matrix


def build_train_matrix(train: pd.DataFrame, user_map: pd.DataFrame, item_map: pd.DataFrame) -> sp.csr_matrix:
    """Users × items CSR of training positives; ``matrix.indices[indptr[u]:indptr[u+1]]`` is user u's items."""
    return positives_matrix([train], len(user_map), len(item_map))


def _negatives_per_user(negatives: pd.DataFrame) -> dict[str, float]:
    counts = negatives.groupby("user").size()
    if counts.empty:
        return {"users": 0, "min": 0, "max": 0}
    return {"users": int(len(counts)), "min": int(counts.min()), "max": int(counts.max())}


def dataset_statistics(
    train_matrix: sp.csr_matrix,
    valid: pd.DataFrame,
    test: pd.DataFrame,
    valid_negatives: pd.DataFrame,
    test_negatives: pd.DataFrame,
    cleaning_report: dict,
    split_report: dict,
) -> dict:
    """What a person checks first: sizes, split counts, density and the rows dropped on the way."""
    n_users, n_items = train_matrix.shape
    per_user = np.diff(train_matrix.indptr)
    n_all = train_matrix.nnz + len(valid) + len(test)
    return {
        "users": int(n_users),
        "items": int(n_items),
        "interactions": {"train": int(train_matrix.nnz), "valid": len(valid), "test": len(test), "total": int(n_all)},
        "density": n_all / (n_users * n_items),
        "train_interactions_per_user": {
            "min": int(per_user.min()), "median": float(np.median(per_user)), "max": int(per_user.max()),
        },
        "evaluated_users": {"valid": int(valid["user"].nunique()), "test": int(test["user"].nunique())},
        "users_train_only": split_report["users_train_only"],
        "users_with_every_item": int((per_user >= n_items).sum()),  # no negative exists: no BPR triple
        "negatives_per_user": {"valid": _negatives_per_user(valid_negatives), "test": _negatives_per_user(test_negatives)},
        "raw_interactions": cleaning_report["raw_interactions"],
        "dropped_rows": cleaning_report["dropped_rows"],
        "has_timestamps": cleaning_report["has_timestamps"],
    }
