"""Ingestion: raw files → cleaned, indexed interactions → leave-one-out splits → evaluation negatives."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from convncf_kedro.config.params import IngestionParams, parse_params
from convncf_kedro.errors import ParameterError
from convncf_kedro.interactions import prepare, readers
from convncf_kedro.interactions.lineage import raw_file_record, seal_ingestion
from convncf_kedro.interactions.raw_file import RawFile

logger = logging.getLogger(__name__)

__all__ = ["clean_and_index", "parse_raw_files", "sample_evaluation_negatives", "seal_ingestion", "split_interactions"]

_ROLES = {"delimited": ["log"], "recbole": ["log"], "ncf": ["train", "test", "negatives"], "lightgcn": ["train", "test"]}


def parse_raw_files(raw_files: dict[str, RawFile], params: dict) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict]:
    """Read the raw files in the configured format into the standard log, any given negatives, what the
    ``given_negatives`` policy did to them, and which files were read (for the manifest)."""
    log, negatives, report = _parse(raw_files, parse_params(IngestionParams, params, "ingestion"))
    return log, negatives, report, {role: raw_file_record(raw.path, raw.data) for role, raw in raw_files.items()}


def _parse(raw_files: dict[str, RawFile], p: IngestionParams) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    missing = [role for role in _ROLES[p.format] if role not in raw_files]
    if missing:
        raise ParameterError(
            "ingestion.format",
            f"format '{p.format}' needs the files {_ROLES[p.format]}, but the catalog entry "
            f"'raw_interactions' has no {missing}; set its `files:`",
        )
    no_negatives = pd.DataFrame({"user": pd.Series(dtype=str), "item": pd.Series(dtype=str)})
    if p.format == "delimited":
        d = p.delimited
        log = readers.read_delimited(
            raw_files["log"], d.sep, d.header, d.names, d.user_column, d.item_column,
            d.rating_column, d.timestamp_column,
        )
        return log, no_negatives, {}
    if p.format == "recbole":
        r = p.recbole
        log = readers.read_recbole(raw_files["log"], r.user_field, r.item_field, r.rating_field, r.timestamp_field)
        return log, no_negatives, {}
    if p.format == "ncf":
        log, given = readers.read_ncf(raw_files["train"], raw_files["test"], raw_files["negatives"])
        rng = np.random.default_rng(np.random.SeedSequence(p.seed).spawn(3)[2])
        negatives, report = readers.check_given_negatives(
            log, given, p.given_negatives, rng, raw_files["negatives"].path)
        return log, negatives, report
    return readers.read_lightgcn(raw_files["train"], raw_files["test"]), no_negatives, {}


def clean_and_index(
    raw_log: pd.DataFrame, given_negatives: pd.DataFrame, given_negatives_report: dict, params: dict
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """Deduplicate, threshold and k-core filter, then map raw ids to contiguous indices."""
    p = parse_params(IngestionParams, params, "ingestion")
    log, dropped = prepare.clean_log(raw_log, p.rating_threshold, p.k_core)
    log, negatives, user_map, item_map, dropped_negatives = prepare.index_ids(log, given_negatives)
    if p.sample_users is not None:
        before, users_before = len(log), len(user_map)
        log, negatives, user_map = prepare.sample_users(log, negatives, user_map, p.sample_users, p.seed)
        dropped["users_not_sampled"] = before - len(log)
        logger.info("ingestion.sample_users: %s of %s users kept with their %s interactions; all %s items kept",
                    f"{len(user_map):,}", f"{users_before:,}", f"{len(log):,}", f"{len(item_map):,}")
    report = {
        "raw_interactions": len(raw_log),
        "interactions": len(log),
        "dropped_rows": {**dropped, "given_negatives_of_dropped_users": dropped_negatives},
        "has_timestamps": bool(raw_log["timestamp"].notna().all()),
        "given_negatives": given_negatives_report,  # positives and repeats among them, and what was done
    }
    return log, negatives, user_map, item_map, report


def split_interactions(
    interactions: pd.DataFrame, item_map: pd.DataFrame, params: dict
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """Leave-one-out split: latest interaction per user is test, second latest validation."""
    p = parse_params(IngestionParams, params, "ingestion")
    return prepare.split_leave_one_out(interactions, p.min_interactions, p.untimed_holdout, p.seed, len(item_map),
                                       p.validation_users)


def sample_evaluation_negatives(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    test: pd.DataFrame,
    given_negatives: pd.DataFrame,
    user_map: pd.DataFrame,
    item_map: pd.DataFrame,
    params: dict,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seeded negatives per evaluated user, never a positive of that user in any split.

    Test negatives given by the dataset (NCF files) are used as they are.
    """
    p = parse_params(IngestionParams, params, "ingestion")
    positives = prepare.positives_matrix([train, valid, test], len(user_map), len(item_map))
    valid_rng, test_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(p.seed).spawn(2))
    valid_negatives = prepare.sample_negatives(valid["user"].to_numpy(), positives, p.n_negatives, valid_rng)
    if len(given_negatives):
        test_negatives = given_negatives.sort_values(["user", "item"]).reset_index(drop=True).astype(np.int32)
    else:
        test_negatives = prepare.sample_negatives(test["user"].to_numpy(), positives, p.n_negatives, test_rng)
    return valid_negatives, test_negatives
