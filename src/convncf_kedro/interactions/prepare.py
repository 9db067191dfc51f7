"""From a standard log to indexed train/validation/test splits and sampled evaluation negatives.

All steps are vectorised (pandas/numpy): Gowalla's million interactions take seconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from convncf_kedro.errors import ParameterError

SPLIT_COLUMNS = ["user", "item", "timestamp"]


def clean_log(
    log: pd.DataFrame, rating_threshold: float | None, k_core: int
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop repeated (user, item) pairs (keeping the latest), low ratings and users/items under k-core.

    Returns the cleaned log (with an ``order`` column: the time order, ties broken by file order)
    and how many rows each step dropped.
    """
    dropped: dict[str, int] = {}
    log = log.reset_index(drop=True)
    has_time = log["timestamp"].notna().all()
    # Without timestamps the file order is the time order.
    log["order"] = log["timestamp"] if has_time else np.arange(len(log), dtype=float)
    log = log.sort_values("order", kind="stable")
    before = len(log)
    log = log.drop_duplicates(["user", "item"], keep="last")
    dropped["duplicate_pairs"] = before - len(log)

    if rating_threshold is not None:
        if log["rating"].isna().all():
            raise ParameterError(
                "ingestion.rating_threshold", "this dataset has no ratings to threshold; set it to null"
            )
        before = len(log)
        log = log[log["rating"] >= rating_threshold]
        dropped["below_rating_threshold"] = before - len(log)

    if k_core > 1:
        before = len(log)
        while True:
            user_counts = log["user"].map(log["user"].value_counts())
            item_counts = log["item"].map(log["item"].value_counts())
            keep = (user_counts >= k_core) & (item_counts >= k_core)
            if keep.all():
                break
            log = log[keep]
        dropped["k_core"] = before - len(log)
    if log.empty:
        raise ParameterError(
            "ingestion.rating_threshold / ingestion.k_core", "no interaction is left after filtering"
        )
    return log.reset_index(drop=True), dropped


def _index_of(values: pd.Series) -> pd.Index:
    """Sorted unique raw ids: numerically when every id is an integer, so 0-based ids map to themselves."""
    unique = pd.Index(values.unique())
    if unique.str.fullmatch(r"\d+").all():  # by value, at any length (a 20-digit id does not fit int64)
        digits = unique.str.lstrip("0")
        return unique[np.lexsort((unique.to_numpy(), digits.to_numpy(), digits.str.len().to_numpy()))]
    return unique.sort_values()


def index_ids(
    log: pd.DataFrame, negatives: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, int]:
    """Map raw string ids to contiguous indices ``0..n-1``.

    Items that appear only as given negatives get indices too, so they can be scored. Given
    negatives of users that no longer exist are dropped (their count is returned).
    Returns ``(log, negatives, user_map, item_map, dropped_negatives)``; maps have ``index, raw_id``.
    """
    users = _index_of(log["user"])
    items = _index_of(pd.concat([log["item"], negatives["item"]], ignore_index=True))
    log = log.assign(user=users.get_indexer(log["user"]), item=items.get_indexer(log["item"]))
    negative_users = users.get_indexer(negatives["user"])
    known = negative_users >= 0
    negatives = pd.DataFrame(
        {"user": negative_users[known], "item": items.get_indexer(negatives["item"][known])}
    )
    user_map = pd.DataFrame({"index": np.arange(len(users)), "raw_id": users.astype(str)})
    item_map = pd.DataFrame({"index": np.arange(len(items)), "raw_id": items.astype(str)})
    return log, negatives, user_map, item_map, int((~known).sum())


def sample_users(
    log: pd.DataFrame, negatives: pd.DataFrame, user_map: pd.DataFrame, n_users: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """A seeded sample of ``n_users`` indexed users with all their interactions (and given negatives), re-indexed
    ``0..n_users-1`` in their original order; the item index is left whole, so every item stays in the catalog.
    Returns ``(log, negatives, user_map)``; all of it unchanged when there are no more users than ``n_users``."""
    if n_users >= len(user_map):
        return log, negatives, user_map
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(5)[4])  # the split uses streams 0-3
    kept = np.sort(rng.choice(len(user_map), size=n_users, replace=False))
    new_index = np.full(len(user_map), -1, dtype=np.int64)
    new_index[kept] = np.arange(n_users)

    def kept_rows(table: pd.DataFrame) -> pd.DataFrame:
        users = new_index[table["user"].to_numpy()]
        return table[users >= 0].assign(user=users[users >= 0]).reset_index(drop=True)

    return (kept_rows(log), kept_rows(negatives),
            pd.DataFrame({"index": np.arange(n_users), "raw_id": user_map["raw_id"].to_numpy()[kept]}))


def split_leave_one_out(
    log: pd.DataFrame, min_interactions: int, untimed_holdout: str, seed: int, n_items: int,
    validation_users: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """Leave-one-out: each user's latest interaction is test, the second latest validation.

    Users with fewer than ``min_interactions`` stay in train only, and so do users who interacted with
    every one of the ``n_items`` items (no item is left to rank their held-out one against); both counted. Pre-split logs keep their test
    split; validation is carved out of their train split the same way. Without timestamps, the
    held-out interaction is the user's last in file order (``untimed_holdout: last``) or a seeded
    random one (``random``). Ties in time are broken by file order, so the split is deterministic.
    ``validation_users`` keeps the validation interaction of a seeded sample of that many users only (the others'
    go back to train): on large datasets each validation check then costs the same as on a small one.
    """
    if untimed_holdout not in ("last", "random"):
        raise ParameterError("ingestion.untimed_holdout", f"must be 'last' or 'random', not '{untimed_holdout}'")
    log = log.copy()
    if log["timestamp"].isna().all() and untimed_holdout == "random":
        log["order"] = np.random.default_rng(seed).permutation(len(log)).astype(float)
    log = log.sort_values(["user", "order"], kind="stable")

    pre_split = (log["split"] == "test").any()
    if pre_split:
        test = log[log["split"] == "test"]
        rest = log[log["split"] == "train"]
        needed = 2  # one validation interaction and at least one left to train on
    else:
        rest = log
        needed = min_interactions
        if min_interactions < 3:
            raise ParameterError("ingestion.min_interactions", "must be at least 3 (train, validation, test)")
    from_end = rest.groupby("user").cumcount(ascending=False).to_numpy()
    count = rest.groupby("user")["item"].transform("size").to_numpy()
    every_item = log.groupby("user")["item"].nunique() >= n_items
    held_out = (count >= needed) & ~rest["user"].map(every_item).to_numpy()
    if pre_split:
        valid = rest[held_out & (from_end == 0)]
        train = rest[~(held_out & (from_end == 0))]
    else:
        test = rest[held_out & (from_end == 0)]
        valid = rest[held_out & (from_end == 1)]
        train = rest[~(held_out & (from_end <= 1))]
    train_only = int(log["user"].nunique() - valid["user"].nunique())
    validated = valid["user"].unique()
    if validation_users is not None and validation_users < len(validated):
        chosen = np.random.default_rng(np.random.SeedSequence(seed).spawn(4)[3]).choice(
            validated, size=validation_users, replace=False)
        back_to_train = ~valid["user"].isin(chosen)
        train, valid = pd.concat([train, valid[back_to_train]]), valid[~back_to_train]
    if test.empty:
        raise ParameterError(
            "ingestion.min_interactions",
            f"no user has the {needed} interactions a leave-one-out split needs ({log['user'].nunique()} users, "
            f"{len(log)} interactions)",
        )
    report = {"users_train_only": train_only, "users_with_every_item": int(every_item.sum()),
              "users_validated": int(valid["user"].nunique())}
    return (*(_split_table(t) for t in (train, valid, test)), report)


def _split_table(table: pd.DataFrame) -> pd.DataFrame:
    out = table[["user", "item", "timestamp"]].sort_values(["user", "item"]).reset_index(drop=True)
    integer_stamps = pd.api.types.is_integer_dtype(out["timestamp"].dtype)  # kept exact at any resolution
    return out.astype({"user": np.int64, "item": np.int64, "timestamp": np.int64 if integer_stamps else float})


def positives_matrix(tables: list[pd.DataFrame], n_users: int, n_items: int) -> sp.csr_matrix:
    """A binary users × items CSR matrix of every (user, item) pair in ``tables``."""
    users = np.concatenate([t["user"].to_numpy() for t in tables])
    items = np.concatenate([t["item"].to_numpy() for t in tables])
    matrix = sp.csr_matrix(
        (np.ones(len(users), dtype=np.float32), (users, items)), shape=(n_users, n_items)
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    matrix.sort_indices()
    return matrix


CANDIDATES_PER_CHUNK = 1 << 22  # candidate draws held at once: ~0.3 GiB of working arrays, whatever the user count


def sample_negatives(
    users: np.ndarray, positives: sp.csr_matrix, n_negatives: int, rng: np.random.Generator
) -> pd.DataFrame:
    """``n_negatives`` distinct items per user, uniformly among those the user never interacted with.

    Vectorised rejection sampling: draw candidates for a chunk of users at once, drop positives and
    repeats, and redraw only for the users still short. Users go in chunks of about
    ``CANDIDATES_PER_CHUNK`` draws, so memory stays bounded on a log of any size (a catalog whose users all fit in
    one chunk — MovieLens 100K, Gowalla at 99 negatives — draws exactly as one pass over every user would).
    Returns int32 ids (``user``, ``item``), sorted.
    """
    users = np.unique(users)
    n_items = positives.shape[1]
    available = n_items - np.diff(positives.indptr)[users]
    if (short := available < n_negatives).any():
        raise ParameterError(
            "ingestion.n_negatives",
            f"{n_negatives} negatives asked, but user index {users[short][0]} has only "
            f"{available[short][0]} items they never interacted with",
        )
    positive_keys = pair_keys(positives)
    per_chunk = max(1, CANDIDATES_PER_CHUNK // (2 * n_negatives + 8))
    chunks = [_negatives_of(chunk, positive_keys, n_items, n_negatives, rng)
              for chunk in np.array_split(users, max(1, -(-len(users) // per_chunk)))]
    return pd.DataFrame({"user": np.concatenate([u for u, _ in chunks]).astype(np.int32),
                         "item": np.concatenate([i for _, i in chunks]).astype(np.int32)})


def _negatives_of(users: np.ndarray, positive_keys: np.ndarray, n_items: int, n_negatives: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One chunk of :func:`sample_negatives` (``users`` ascending): its (user, item) pairs sorted."""
    first_key, end_key = users[0] * np.int64(n_items), (users[-1] + np.int64(1)) * n_items
    positive_keys = positive_keys[np.searchsorted(positive_keys, first_key):np.searchsorted(positive_keys, end_key)]
    chosen_keys: list[np.ndarray] = []
    pending, need = users, np.full(len(users), n_negatives)
    while len(pending):
        cand_users = np.repeat(pending, need * 2 + 8)
        cand_items = rng.integers(0, n_items, size=len(cand_users))
        keys = cand_users.astype(np.int64) * n_items + cand_items
        taken = np.concatenate([positive_keys, *chosen_keys])
        taken.sort()
        fresh = ~contains_sorted(taken, keys)
        cand_users, keys = cand_users[fresh], keys[fresh]
        _, first = np.unique(keys, return_index=True)  # first draw of each (user, item)
        first.sort()
        cand_users, keys = cand_users[first], keys[first]
        slot = np.searchsorted(pending, cand_users)
        rank = pd.Series(slot).groupby(slot).cumcount().to_numpy()
        keep = rank < need[slot]
        chosen_keys.append(keys[keep])
        need = need - np.bincount(slot[keep], minlength=len(pending))
        pending, need = pending[need > 0], need[need > 0]
    keys = np.sort(np.concatenate(chosen_keys))
    return keys // n_items, keys % n_items


def pair_keys(matrix: sp.csr_matrix) -> np.ndarray:
    """``user * n_items + item`` of every stored entry, ascending (CSR with sorted indices)."""
    rows = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))
    return rows * matrix.shape[1] + matrix.indices


def contains_sorted(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    if len(sorted_keys) == 0:
        return np.zeros(len(keys), dtype=bool)
    pos = np.searchsorted(sorted_keys, keys)
    return (pos < len(sorted_keys)) & (sorted_keys[np.minimum(pos, len(sorted_keys) - 1)] == keys)
