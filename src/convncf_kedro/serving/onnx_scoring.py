"""Top-K recommendations from the exported ConvNCF graph with ONNX Runtime — no Kedro, no torch.

    python -m convncf_kedro.serving.onnx_scoring --model data/06_models/convncf.onnx \\
        --user-map data/03_primary/user_map.parquet --item-map data/03_primary/item_map.parquet \\
        --seen data/05_model_input/known_interactions.npz --k 10 --out recommendations.parquet [--cluster local:2]

``known_interactions.npz`` (written by the `matrix` stage) holds train, validation and test interactions: what
`kedro run --pipeline score` excludes too, so neither recommends an item the user already has.

The same engine as `kedro run --pipeline score` (:mod:`convncf_kedro.serving.engine`): in this process by
default, on Dask workers with ``--cluster``.
"""

from __future__ import annotations

import argparse
import logging
import sys

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .engine import RankSettings, rank_users
from .session import check_id_maps, check_seen, create_session

logger = logging.getLogger(__name__)


def recommend(
    graph: bytes,
    user_map: pd.DataFrame,
    item_map: pd.DataFrame,
    seen: sp.csr_matrix,
    settings: RankSettings,
    raw_user_ids: list[str] | None = None,
    unknown_users: str = "skip",
    cluster: str | None = None,
    partition_users: int = 256,
) -> tuple[dict[str, pd.DataFrame], dict]:
    """Top-K unseen items per user as ``user_id, rank, item_id, score`` (raw ids, rank from 1), one frame per
    partition of users (``part-00000``, …, and ``unknown`` for the popular fallback), and a report.

    ``raw_user_ids``: the users to score (None: all). Ids the model does not know are reported in the
    returned dict and either skipped or given the most popular unseen items (``unknown_users:
    popular``, score NaN). ``seen`` (users × items CSR) holds what each user already interacted with.
    ``cluster``: where the partitions run (see :mod:`convncf_kedro.serving.engine`).
    """
    check_id_maps(create_session(graph, "cpu", 1), user_map, item_map)
    check_seen(seen, user_map, item_map, "seen")
    if unknown_users not in ("skip", "popular"):
        raise ValueError(f"unknown_users must be 'skip' or 'popular', not '{unknown_users}'")
    if settings.k < 1:
        raise ValueError(f"k must be at least 1, not {settings.k}")
    index_of = pd.Series(user_map["index"].to_numpy(), index=user_map["raw_id"].astype(str))
    requested = pd.Series(list(map(str, raw_user_ids)) if raw_user_ids is not None else index_of.index)
    if requested.empty:
        raise ValueError("the list of users to score is empty")
    known = requested.isin(index_of.index).to_numpy()
    unknown = requested[~known].drop_duplicates().tolist()
    if not known.any() and unknown_users == "skip":
        raise ValueError(f"none of the {len(unknown)} users to score is known to the model (first: {unknown[0]!r}); "
                         "check the ids, or give them the most popular items with unknown users 'popular'")
    users = np.unique(index_of.loc[requested[known]].to_numpy()).astype(np.int64)
    raw_item = item_map.sort_values("index")["raw_id"].astype(str).to_numpy()
    raw_user = user_map.sort_values("index")["raw_id"].astype(str).to_numpy()
    partitions, providers = {}, set()
    for ranked in rank_users(graph, seen, users, settings, partition_users, cluster, label="scoring"):
        found = ranked.top_items >= 0
        partitions[f"part-{ranked.index:05d}"] = pd.DataFrame({
            "user_id": np.repeat(raw_user[ranked.users], settings.k)[found.ravel()],
            "rank": np.tile(np.arange(1, settings.k + 1), len(ranked.users))[found.ravel()],
            "item_id": raw_item[ranked.top_items[found]],
            "score": ranked.top_scores[found].astype(np.float32),
        })
        providers.add(ranked.provider)
    if unknown and unknown_users == "popular":
        popular = np.argsort(-np.asarray(seen.sum(axis=0)).ravel(), kind="stable")[:settings.k]
        partitions["unknown"] = pd.DataFrame({
            "user_id": np.repeat(unknown, len(popular)),
            "rank": np.tile(np.arange(1, len(popular) + 1), len(unknown)),
            "item_id": np.tile(raw_item[popular], len(unknown)),
            "score": np.float32(np.nan),
        })
    report = {"requested": len(requested), "scored": len(users), "unknown_count": len(unknown),
              "unknown_user_ids": unknown, "unknown_policy": unknown_users, "partitions": len(partitions),
              "cluster": cluster, "provider": ", ".join(sorted(providers)) or None}
    return dict(sorted(partitions.items())), report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Top-K recommendations from an exported ConvNCF ONNX model")
    parser.add_argument("--model", required=True)
    parser.add_argument("--user-map", required=True, help="parquet with columns index, raw_id")
    parser.add_argument("--item-map", required=True, help="parquet with columns index, raw_id")
    parser.add_argument("--seen", required=True, help=".npz users × items CSR of known interactions")
    parser.add_argument("--users", help="text file, one raw user id per line (default: every user)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--unknown-users", choices=["skip", "popular"], default="skip")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--cluster", help="Dask cluster: local:N (N worker processes), local-cuda, or a scheduler "
                        "address tcp://host:8786 (needs dask distributed); default: this process")
    parser.add_argument("--out", required=True, help="output parquet")
    args = parser.parse_args(argv)
    if args.k < 1:
        parser.exit(2, f"{parser.prog}: error: --k must be at least 1, not {args.k}\n")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    users = None
    if args.users:
        with open(args.users, encoding="utf-8") as fh:
            users = [line.strip() for line in fh if line.strip()]
        if not users:
            parser.exit(2, f"{parser.prog}: error: --users {args.users} lists no user id\n")
    with open(args.model, "rb") as fh:
        graph = fh.read()
    create_session(graph, args.device)  # a wrong file or signature stops here, named
    user_map, item_map = pd.read_parquet(args.user_map), pd.read_parquet(args.item_map)
    seen = sp.load_npz(args.seen).tocsr()
    check_seen(seen, user_map, item_map, args.seen)
    try:
        partitions, report = recommend(graph, user_map, item_map, seen, RankSettings(args.k, device=args.device),
                                       users, args.unknown_users, args.cluster)
    except ValueError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)  # noqa: T201 (the CLI's one-line error)
        sys.exit(2)
    recommendations = pd.concat(partitions.values(), ignore_index=True)
    recommendations.to_parquet(args.out, index=False)
    logger.info("wrote %d recommendations for %d users to %s; %d unknown user ids", len(recommendations),
                report["scored"], args.out, report["unknown_count"])


if __name__ == "__main__":
    main()
