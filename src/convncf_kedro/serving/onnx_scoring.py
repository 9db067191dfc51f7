"""The command line: top-K recommendations from the exported ConvNCF graph with ONNX Runtime — no Kedro, no torch.

    python -m convncf_kedro.serving.onnx_scoring --model data/06_models/convncf.onnx \\
        --user-map data/03_primary/user_map.parquet --item-map data/03_primary/item_map.parquet \\
        --seen data/05_model_input/known_interactions.npz --k 10 --out recommendations.parquet [--cluster local:2] \
        [--retrieval data/06_models/convncf_retrieval.onnx --shortlist 200]

``known_interactions.npz`` (written by the `matrix` stage) holds train, validation and test interactions: what
`kedro run --pipeline score` excludes too, so neither recommends an item the user already has.

The same engine as `kedro run --pipeline score` (:mod:`convncf_kedro.serving.engine`): in this process by
default, on Dask workers with ``--cluster``.
"""

from __future__ import annotations

import argparse
import logging
import sys

import pandas as pd
import scipy.sparse as sp

from .engine import RankSettings
from .recommend import recommend
from .session import check_seen, create_session

logger = logging.getLogger(__name__)


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
    parser.add_argument("--retrieval", help="the retrieval graph (convncf_retrieval.onnx) for two-stage ranking")
    parser.add_argument("--shortlist", type=int, help="with --retrieval: the model re-ranks each user's N best items "
                        "by its embeddings' dot product instead of every item")
    parser.add_argument("--out", required=True, help="output parquet")
    args = parser.parse_args(argv)
    if args.k < 1:
        parser.exit(2, f"{parser.prog}: error: --k must be at least 1, not {args.k}\n")
    if (args.shortlist is None) != (args.retrieval is None) or (args.shortlist is not None and args.shortlist < 1):
        parser.exit(2, f"{parser.prog}: error: two-stage ranking needs both --retrieval and --shortlist N (N ≥ 1)\n")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    users = None
    if args.users:
        with open(args.users, encoding="utf-8") as fh:
            users = [line.strip() for line in fh if line.strip()]
        if not users:
            parser.exit(2, f"{parser.prog}: error: --users {args.users} lists no user id\n")
    try:
        graph = _read(args.model)
        create_session(graph, args.device, source=args.model)  # a wrong file, signature or content stops here, named
        user_map, item_map = _read_map(args.user_map), _read_map(args.item_map)
        seen = _read_seen(args.seen)
        check_seen(seen, user_map, item_map, args.seen)
        retrieval = _read(args.retrieval) if args.retrieval else None
        partitions, report = recommend(graph, user_map, item_map, seen,
                                       RankSettings(args.k, device=args.device, shortlist=args.shortlist),
                                       users, args.unknown_users, args.cluster, retrieval=retrieval)
    except (OSError, ValueError) as exc:  # the project's refusals and unreadable files: one line, no traceback
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)  # noqa: T201 (the CLI's one-line error)
        sys.exit(2)
    recommendations = pd.concat(partitions.values(), ignore_index=True)
    recommendations.to_parquet(args.out, index=False)
    logger.info("wrote %d recommendations for %d users to %s; %d unknown user ids", len(recommendations),
                report["scored"], args.out, report["unknown_count"])


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise OSError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def _read_map(path: str) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow's own error types
        raise ValueError(f"{path}: not a readable id map ({type(exc).__name__}: {exc})") from None


def _read_seen(path: str) -> sp.csr_matrix:
    try:
        return sp.load_npz(path).tocsr()  # allow_pickle=False: a payload is refused, never run
    except Exception as exc:  # truncated, foreign or payload-bearing
        raise ValueError(f"{path}: not a readable sparse matrix of known interactions ({type(exc).__name__}: {exc}); "
                         "re-run the matrix stage that writes it (kedro run --pipeline matrix)") from None


if __name__ == "__main__":
    main()
