"""A seeded interaction log of any size shaped like MovieLens 20M, for measuring what a user's production-size log
costs (issue 28): log-normal user activity, Zipf item popularity, increasing timestamps per user, written as a
MovieLens `u.data` file (user, item, rating, timestamp; tab-separated) that the shipped `delimited` format reads.

Run: python -m benchmarks.synthetic_log 20000000 data/01_raw/synthetic-20m/u.data
     [--users 138000 --items 27000 --seed 0]
Written in chunks of users, so memory stays near one chunk whatever the size; the same arguments give the same bytes.
Duplicate (user, item) draws are kept as a real log would have them (ingestion de-duplicates and reports the count).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ZIPF_EXPONENT = 1.0  # item popularity ∝ 1 / rank (MovieLens-like head)
ACTIVITY_SIGMA = 1.2  # log-normal spread of interactions per user
MIN_PER_USER = 5  # every user has a few interactions (ingestion keeps users with at least 3)
CHUNK_USERS = 10_000


def user_activity(n_interactions: int, n_users: int, rng: np.random.Generator) -> np.ndarray:
    """(n_users,) interactions per user, log-normal, summing to ``n_interactions``."""
    weights = rng.lognormal(0.0, ACTIVITY_SIGMA, n_users)
    counts = MIN_PER_USER + np.floor(weights / weights.sum() * (n_interactions - MIN_PER_USER * n_users)).astype(np.int64)
    np.add.at(counts, rng.choice(n_users, size=n_interactions - int(counts.sum()), replace=True), 1)
    return counts


def item_popularity(n_items: int, rng: np.random.Generator) -> np.ndarray:
    """(n_items,) probabilities, Zipf over a seeded permutation of the item ids."""
    ranks = np.arange(1, n_items + 1, dtype=np.float64)
    p = ranks ** -ZIPF_EXPONENT
    return (p / p.sum())[rng.permutation(n_items)]


def write_log(path: Path, n_interactions: int, n_users: int, n_items: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    counts = user_activity(n_interactions, n_users, rng)
    cumulative = np.cumsum(item_popularity(n_items, rng))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        for first in range(0, n_users, CHUNK_USERS):
            chunk = counts[first:first + CHUNK_USERS]
            users = np.repeat(np.arange(first, first + len(chunk)) + 1, chunk)
            items = np.minimum(np.searchsorted(cumulative, rng.random(len(users))), n_items - 1) + 1
            ratings = rng.integers(1, 6, len(users))
            starts = np.repeat(rng.integers(800_000_000, 1_400_000_000, len(chunk)), chunk)
            elapsed = np.cumsum(rng.integers(1, 86_400, len(users)))  # seconds between a user's interactions
            first_of_user = np.cumsum(chunk) - chunk
            since_start = elapsed - np.repeat(elapsed[first_of_user], chunk)
            table = np.column_stack([users, items, ratings, starts + since_start])
            np.savetxt(out, table, fmt="%d", delimiter="\t")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("interactions", type=int)
    parser.add_argument("path", type=Path)
    parser.add_argument("--users", type=int, default=138_000)
    parser.add_argument("--items", type=int, default=27_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    write_log(args.path, args.interactions, args.users, args.items, args.seed)


if __name__ == "__main__":
    main()
