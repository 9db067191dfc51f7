"""Which ingestion run a dataset came from.

Ingestion's last node writes a manifest: a content hash of each of its outputs (and of the matrices the
`matrix` stage derives from them). Every later stage checks the datasets it reads against that manifest,
so a run that failed half-way (new id maps and splits, old negatives) or a file changed by hand is refused
instead of mixed; saved models carry the manifest's fingerprint, so a model trained on other data is too.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import scipy.sparse as sp

from convncf_kedro.errors import StaleInputError

from .prepare import positives_matrix

MANIFEST = "data/05_model_input/ingestion_manifest.json"  # the catalog's ingestion_manifest (for messages)
DERIVED_BY_MATRIX = ("train_matrix", "known_interactions")


def content_hash(value: pd.DataFrame | sp.spmatrix) -> str:
    """A short hash of a table's columns and values, or of a sparse matrix's shape and pattern."""
    digest = hashlib.sha256()
    if isinstance(value, pd.DataFrame):
        digest.update(json.dumps([str(c) for c in value.columns]).encode())
        digest.update(pd.util.hash_pandas_object(value, index=False).to_numpy().tobytes())
    else:
        matrix = sp.csr_matrix(value)
        matrix.sort_indices()
        for array in (np.asarray(matrix.shape), matrix.indptr, matrix.indices):
            digest.update(np.ascontiguousarray(array, dtype=np.int64).tobytes())
    return digest.hexdigest()[:16]


def known_interactions(train: pd.DataFrame, valid: pd.DataFrame, test: pd.DataFrame, n_users: int,
                       n_items: int) -> sp.csr_matrix:
    """Every (user, item) pair the data holds, in any split: what recommendations must never repeat."""
    return positives_matrix([train, valid, test], n_users, n_items)


def seal_ingestion(
    user_map: pd.DataFrame, item_map: pd.DataFrame, train: pd.DataFrame, valid: pd.DataFrame, test: pd.DataFrame,
    valid_negatives: pd.DataFrame, test_negatives: pd.DataFrame,
) -> dict:
    """The manifest of one completed ingestion run: each output's hash and one fingerprint over them all."""
    n_users, n_items = len(user_map), len(item_map)
    hashes = {
        "user_map": content_hash(user_map), "item_map": content_hash(item_map), "train": content_hash(train),
        "valid": content_hash(valid), "test": content_hash(test), "valid_negatives": content_hash(valid_negatives),
        "test_negatives": content_hash(test_negatives),
        "train_matrix": content_hash(positives_matrix([train], n_users, n_items)),
        "known_interactions": content_hash(known_interactions(train, valid, test, n_users, n_items)),
    }
    fingerprint = hashlib.sha256(json.dumps(hashes, sort_keys=True).encode()).hexdigest()[:16]
    return {"fingerprint": fingerprint, "datasets": hashes}


def check_same_run(manifest: dict, stage: str, **inputs: pd.DataFrame | sp.spmatrix) -> str:
    """Stop unless every input is the one the last completed ingestion run wrote; return its fingerprint."""
    expected = manifest.get("datasets", {})
    for name, value in inputs.items():
        if name not in expected:
            raise StaleInputError(f"{stage}: {MANIFEST} records no '{name}' (written by an older version); "
                                  "re-run ingestion: kedro run --pipeline train")
        if content_hash(value) != expected[name]:
            redo = ("matrix (kedro run --pipeline matrix, or --pipeline train)" if name in DERIVED_BY_MATRIX
                    else "ingestion and the stages after it (kedro run --pipeline train)")
            raise StaleInputError(
                f"{stage}: '{name}' is not the one the last completed ingestion run recorded in {MANIFEST} (a run "
                f"failed or was interrupted after writing part of its outputs, or a file was changed): re-run {redo}"
            )
    return manifest["fingerprint"]
