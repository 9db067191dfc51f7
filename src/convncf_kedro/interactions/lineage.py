"""Which ingestion run a dataset came from.

Ingestion's last node writes a manifest: a content hash of each of its outputs (and of the matrices the
`matrix` stage derives from them). Every later stage checks the datasets it reads against that manifest,
so a run that failed half-way (new id maps and splits, old negatives) or a file changed by hand is refused
instead of mixed; saved models carry the manifest's fingerprint, so a model trained on other data is too.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import scipy.sparse as sp

from convncf_kedro.errors import StaleInputError, StaleModelError

from .prepare import positives_matrix
from .raw_file import file_sha256

logger = logging.getLogger(__name__)


class TrainedOn(Protocol):
    """What a saved model tells about its data (models.ModelInfo has it; lineage needs no model code)."""

    model_class: str
    data_fingerprint: str | None

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


def raw_file_record(path: str, data: bytes) -> dict:
    """What identifies a raw file ingestion read: its place, size and time (a cheap first look) and its bytes' hash."""
    stat = Path(path).stat()
    return {"path": str(path), "size": len(data), "mtime_ns": stat.st_mtime_ns,
            "sha256": hashlib.sha256(data).hexdigest()}


def changed_raw_files(manifest: dict) -> list[str]:
    """The raw files the manifest's ingestion read that are gone or hold other bytes now (hashed only when the size
    or time differs)."""
    changed = []
    for record in manifest.get("raw_files", {}).values():
        path = Path(record["path"])
        if not path.is_file():
            changed.append(f"{path} (gone)")
            continue
        stat = path.stat()
        if (stat.st_size, stat.st_mtime_ns) == (record["size"], record["mtime_ns"]):
            continue
        if file_sha256(path) != record["sha256"]:
            changed.append(f"{path} (other content)")
    return changed


def check_raw_unchanged(manifest: dict, pipelines: str, policy: str) -> None:
    """A run of later stages on the outputs of an ingestion whose raw files have changed since: refused (or, with
    ``ingestion.on_raw_change: warn``, logged), so nobody scores old data believing it new."""
    changed = changed_raw_files(manifest)
    if not changed:
        return
    message = (f"{pipelines}: the raw data changed since the last ingestion ({', '.join(changed)}), so this run "
               "would use outputs made from the earlier version; re-run ingestion and the stages after it (kedro run "
               "--pipeline train), or set ingestion.on_raw_change: warn to go on with them")
    if policy == "warn":
        logger.warning(message)
        return
    raise StaleInputError(message)


def seal_ingestion(
    user_map: pd.DataFrame, item_map: pd.DataFrame, train: pd.DataFrame, valid: pd.DataFrame, test: pd.DataFrame,
    valid_negatives: pd.DataFrame, test_negatives: pd.DataFrame, raw_files: dict,
) -> dict:
    """The manifest of one completed ingestion run: the raw files it read, each output's hash and one fingerprint
    over the outputs."""
    n_users, n_items = len(user_map), len(item_map)
    hashes = {
        "user_map": content_hash(user_map), "item_map": content_hash(item_map), "train": content_hash(train),
        "valid": content_hash(valid), "test": content_hash(test), "valid_negatives": content_hash(valid_negatives),
        "test_negatives": content_hash(test_negatives),
        "train_matrix": content_hash(positives_matrix([train], n_users, n_items)),
        "known_interactions": content_hash(known_interactions(train, valid, test, n_users, n_items)),
    }
    fingerprint = hashlib.sha256(json.dumps(hashes, sort_keys=True).encode()).hexdigest()[:16]
    return {"fingerprint": fingerprint, "datasets": hashes, "raw_files": raw_files}


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


def check_trained_on(info: TrainedOn, data_fingerprint: str, stage: str) -> None:
    """Stop when a saved model (its :class:`~convncf_kedro.models.ModelInfo`) was trained on other data than the
    ingestion run this run reads."""
    check_data_fingerprint(info.model_class, info.data_fingerprint, data_fingerprint, stage)


def check_data_fingerprint(model_class: str, trained_on: str | None, data_fingerprint: str, stage: str) -> None:
    """The one rule for any saved model (torch models and baselines alike): its data must be this run's."""
    if trained_on != data_fingerprint:
        raise StaleModelError(
            f"{stage}: the saved {model_class} model was trained on other data (data fingerprint "
            f"{trained_on}, this run's data is {data_fingerprint}): the ingestion parameters or the raw data changed since. "
            f"Re-run the training stages (kedro run --pipeline train) before {stage}."
        )
