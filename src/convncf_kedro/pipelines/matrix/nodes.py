"""Sparse-matrix stage: the training interactions (and all known ones) as CSR, and the dataset statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from convncf_kedro.interactions.lineage import check_same_run, known_interactions
from convncf_kedro.interactions.prepare import positives_matrix


def build_matrices(
    train: pd.DataFrame, valid: pd.DataFrame, test: pd.DataFrame, user_map: pd.DataFrame, item_map: pd.DataFrame,
    ingestion_manifest: dict,
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Users × items CSR of training positives (``indices[indptr[u]:indptr[u+1]]`` is user u's items), and of
    every known interaction (train + validation + test), which scoring never recommends."""
    check_same_run(ingestion_manifest, "matrix", train=train, valid=valid, test=test, user_map=user_map,
                   item_map=item_map)
    n_users, n_items = len(user_map), len(item_map)
    return positives_matrix([train], n_users, n_items), known_interactions(train, valid, test, n_users, n_items)


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
    ingestion_manifest: dict,
) -> dict:
    """What a person checks first: sizes, split counts, density and the rows dropped on the way."""
    check_same_run(ingestion_manifest, "matrix", train_matrix=train_matrix, valid_negatives=valid_negatives,
                   test_negatives=test_negatives)
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
        "users_with_every_item": int((per_user >= n_items).sum()),  # no negative: no BPR triple, not evaluated
        "negatives_per_user": {"valid": _negatives_per_user(valid_negatives), "test": _negatives_per_user(test_negatives)},
        "raw_interactions": cleaning_report["raw_interactions"],
        "dropped_rows": cleaning_report["dropped_rows"],
        "has_timestamps": cleaning_report["has_timestamps"],
    }
