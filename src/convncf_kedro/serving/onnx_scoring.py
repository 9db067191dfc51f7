"""Top-K recommendations from the exported ConvNCF graph with ONNX Runtime — no Kedro, no torch.

    python -m convncf_kedro.serving.onnx_scoring --model data/07_model_output/convncf.onnx \\
        --user-map data/03_primary/user_map.parquet --item-map data/03_primary/item_map.parquet \\
        --seen data/05_model_input/train_matrix.npz --k 10 --out recommendations.parquet

CUDA is used when ONNX Runtime can really run on a GPU: onnxruntime-gpu lists the CUDA provider even
on machines without one, so the provider that ran is read back from the session, never assumed.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import logging
import sys
from collections.abc import Callable

import numpy as np
import onnxruntime as ort
import pandas as pd
import scipy.sparse as sp

from convncf_kedro.ranking.full import block_of_pairs, top_k_unseen

logger = logging.getLogger(__name__)

CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"


class ModelMismatchError(ValueError):
    """The id maps (or the model file) are not the ones the graph was exported with."""


def create_session(
    model: bytes | str, device: str = "auto", intra_op_threads: int | None = None
) -> ort.InferenceSession:
    """An inference session on CUDA when asked for (or 'auto') and really usable, else on CPU."""
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', not '{device}'")
    providers = [CPU]
    if device != "cpu" and CUDA in ort.get_available_providers() and _cuda_driver_present():
        if hasattr(ort, "preload_dlls"):
            ort.preload_dlls()  # CUDA/cuDNN from pip's nvidia packages, when torch has not loaded them
        providers = [CUDA, CPU]
    options = ort.SessionOptions()
    options.log_severity_level = 3  # a missing GPU is reported below, not as an ORT error
    if intra_op_threads:
        options.intra_op_num_threads = intra_op_threads
    try:
        session = ort.InferenceSession(model, options, providers=providers)
    except Exception as exc:  # ORT raises its own exception types for unreadable models
        raise ModelMismatchError(f"{_source(model)}: not a usable ONNX model ({type(exc).__name__}: {exc})") from exc
    check_signature(session, _source(model))
    active = session.get_providers()[0]
    if device == "cuda" and active != CUDA:
        raise RuntimeError("device 'cuda' was asked for, but ONNX Runtime cannot use a GPU here")
    logger.info("ONNX Runtime %s scoring on %s", ort.__version__, active)
    return session


def _source(model: bytes | str) -> str:
    return model if isinstance(model, str) else "the ONNX model"


EXPECTED_INPUTS = {"user": "tensor(int64)", "item": "tensor(int64)"}


def check_signature(session: ort.InferenceSession, source: str) -> None:
    """The graph must take ``user`` and ``item`` int64 vectors and return ``score``, as exported here."""
    inputs = {i.name: i.type for i in session.get_inputs()}
    outputs = [o.name for o in session.get_outputs()]
    if inputs != EXPECTED_INPUTS or "score" not in outputs:
        raise ModelMismatchError(
            f"{source}: the graph takes {inputs} and returns {outputs}; expected inputs {EXPECTED_INPUTS} and an "
            "output 'score' (a graph exported by this project's export pipeline)"
        )


def check_seen(seen: sp.csr_matrix, user_map: pd.DataFrame, item_map: pd.DataFrame, source: str) -> None:
    """The known-interactions matrix must be users × items of the id maps, or masking would be wrong."""
    expected = (len(user_map), len(item_map))
    if seen.shape != expected:
        raise ModelMismatchError(
            f"{source}: the seen-items matrix is {seen.shape[0]} × {seen.shape[1]}, but the id maps have "
            f"{expected[0]} users × {expected[1]} items; use the train_matrix saved with this model"
        )


def _cuda_driver_present() -> bool:
    """Whether an NVIDIA driver is installed: without one, asking ORT for CUDA only logs a load error."""
    try:
        ctypes.CDLL("libcuda.so.1" if sys.platform.startswith("linux") else "nvcuda.dll")
    except OSError:
        return False
    return True


def model_metadata(session: ort.InferenceSession) -> dict[str, str]:
    return dict(session.get_modelmeta().custom_metadata_map)


def id_maps_hash(user_map: pd.DataFrame, item_map: pd.DataFrame) -> str:
    """sha256 over the raw ids in index order (the same as at export)."""
    digest = hashlib.sha256()
    for frame in (user_map, item_map):
        digest.update("\n".join(frame.sort_values("index")["raw_id"].astype(str)).encode())
        digest.update(b"\0")
    return digest.hexdigest()


def check_id_maps(session: ort.InferenceSession, user_map: pd.DataFrame, item_map: pd.DataFrame) -> None:
    expected = model_metadata(session).get("id_maps_sha256")
    if expected is None:
        raise ModelMismatchError("the ONNX model carries no id_maps_sha256: it was not exported by this project")
    actual = id_maps_hash(user_map, item_map)
    if actual != expected:
        raise ModelMismatchError(
            f"the id maps do not match the model (sha256 {actual[:12]}…, the model expects {expected[:12]}…): "
            f"use the user_map/item_map saved beside the exported model"
        )


def onnx_pair_scorer(session: ort.InferenceSession, batch_pairs: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """(users (P,), items (P,)) → (P,) scores, ``batch_pairs`` pairs per session.run."""

    def score(users: np.ndarray, items: np.ndarray) -> np.ndarray:
        out = np.empty(len(users), dtype=np.float32)
        for start in range(0, len(out), batch_pairs):
            feed = {"user": users[start:start + batch_pairs].astype(np.int64),
                    "item": items[start:start + batch_pairs].astype(np.int64)}
            out[start:start + batch_pairs] = session.run(["score"], feed)[0]
        return out

    return score


def onnx_block_scorer(session: ort.InferenceSession, batch_pairs: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """(users (U,), items (I,)) → (U, I) scores, ``batch_pairs`` pairs per session.run."""
    return block_of_pairs(onnx_pair_scorer(session, batch_pairs))


def recommend(
    session: ort.InferenceSession,
    user_map: pd.DataFrame,
    item_map: pd.DataFrame,
    seen: sp.csr_matrix,
    k: int,
    raw_user_ids: list[str] | None = None,
    unknown_users: str = "skip",
    batch_pairs: int = 4096,
    chunk_users: int = 16,
    chunk_items: int = 2048,
    log_every_seconds: float = 30.0,
) -> tuple[pd.DataFrame, dict]:
    """Top-K unseen items per user as ``user_id, rank, item_id, score`` (raw ids, rank from 1).

    ``raw_user_ids``: the users to score (None: all). Ids the model does not know are reported in the
    returned dict and either skipped or given the most popular unseen items (``unknown_users:
    popular``, score NaN). ``seen`` (users × items CSR) holds what each user already interacted with.
    """
    check_id_maps(session, user_map, item_map)
    check_seen(seen, user_map, item_map, "seen")
    if unknown_users not in ("skip", "popular"):
        raise ValueError(f"unknown_users must be 'skip' or 'popular', not '{unknown_users}'")
    index_of = pd.Series(user_map["index"].to_numpy(), index=user_map["raw_id"].astype(str))
    requested = pd.Series(list(map(str, raw_user_ids)) if raw_user_ids is not None else index_of.index)
    known = requested.isin(index_of.index).to_numpy()
    unknown = requested[~known].drop_duplicates().tolist()
    users = np.unique(index_of.loc[requested[known]].to_numpy()).astype(np.int64)
    top_items, top_scores = top_k_unseen(
        onnx_block_scorer(session, batch_pairs), users, seen, k, chunk_users, chunk_items, log_every_seconds,
        label="scoring",
    )
    raw_item = item_map.sort_values("index")["raw_id"].astype(str).to_numpy()
    raw_user = user_map.sort_values("index")["raw_id"].astype(str).to_numpy()
    found = top_items >= 0
    recommendations = pd.DataFrame({
        "user_id": np.repeat(raw_user[users], k)[found.ravel()],
        "rank": np.tile(np.arange(1, k + 1), len(users))[found.ravel()],
        "item_id": raw_item[top_items[found]],
        "score": top_scores[found].astype(np.float32),
    })
    if unknown and unknown_users == "popular":
        popular = np.argsort(-np.asarray(seen.sum(axis=0)).ravel(), kind="stable")[:k]
        recommendations = pd.concat([recommendations, pd.DataFrame({
            "user_id": np.repeat(unknown, len(popular)),
            "rank": np.tile(np.arange(1, len(popular) + 1), len(unknown)),
            "item_id": np.tile(raw_item[popular], len(unknown)),
            "score": np.float32(np.nan),
        })], ignore_index=True)
    report = {"requested": len(requested), "scored": len(users), "unknown_count": len(unknown),
              "unknown_user_ids": unknown, "unknown_policy": unknown_users,
              "provider": session.get_providers()[0]}
    return recommendations, report


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
    parser.add_argument("--out", required=True, help="output parquet")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    users = None
    if args.users:
        with open(args.users, encoding="utf-8") as fh:
            users = [line.strip() for line in fh if line.strip()]
    session = create_session(args.model, args.device)
    user_map, item_map = pd.read_parquet(args.user_map), pd.read_parquet(args.item_map)
    seen = sp.load_npz(args.seen).tocsr()
    check_seen(seen, user_map, item_map, args.seen)
    recommendations, report = recommend(session, user_map, item_map, seen, args.k, users, args.unknown_users)
    recommendations.to_parquet(args.out, index=False)
    logger.info("wrote %d recommendations for %d users to %s; %d unknown user ids", len(recommendations),
                report["scored"], args.out, report["unknown_count"])


if __name__ == "__main__":
    main()
