"""ONNX Runtime sessions on the exported graph, and the checks that it is the graph its inputs belong to.

CUDA is used when ONNX Runtime can really run on a GPU: onnxruntime-gpu lists the CUDA provider even
on machines without one, so the provider that ran is read back from the session, never assumed.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd
import scipy.sparse as sp

from convncf_kedro.ranking.full import block_of_pairs

logger = logging.getLogger(__name__)

CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"
onnx_like = Any  # an onnx.ModelProto, or a serialized graph (bytes) — serving needs no onnx import


class ModelMismatchError(ValueError):
    """The id maps (or the model file) are not the ones the graph was exported with."""


def create_session(
    model: bytes | str, device: str = "auto", intra_op_threads: int | None = None, role: str = "ranking",
    source: str | None = None,
) -> ort.InferenceSession:
    """An inference session on CUDA when asked for (or 'auto') and really usable, else on CPU; ``role`` is the
    graph's signature: ``ranking`` (user, item → score) or ``retrieval`` (user → scores over every item). A graph
    this project exported must hold the weights export wrote (its ``graph_sha256``); ``source`` names it in errors."""
    source = source or _source(model)
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
    options.add_session_config_entry("session.set_denormal_as_zero", "1")  # denormal weights: no slow path
    try:
        session = ort.InferenceSession(model, options, providers=providers)
    except Exception as exc:  # ORT raises its own exception types for unreadable models
        raise ModelMismatchError(f"{source}: not a usable ONNX model ({type(exc).__name__}: {exc})") from exc
    check_signature(session, source, role)
    check_graph_intact(model, session, source)
    active = session.get_providers()[0]
    if device == "cuda" and active != CUDA:
        raise RuntimeError("device 'cuda' was asked for, but ONNX Runtime cannot use a GPU here")
    logger.info("ONNX Runtime %s scoring on %s", ort.__version__, active)
    return session


def _source(model: bytes | str) -> str:
    return model if isinstance(model, str) else "the ONNX model"


SIGNATURES = {  # role → (inputs, output), as the export pipeline writes them
    "ranking": ({"user": "tensor(int64)", "item": "tensor(int64)"}, "score"),
    "retrieval": ({"user": "tensor(int64)"}, "scores"),
}


def check_signature(session: ort.InferenceSession, source: str, role: str = "ranking") -> None:
    """The graph must have the inputs and output the export pipeline gives a graph of this ``role``."""
    expected_inputs, output = SIGNATURES[role]
    inputs = {i.name: i.type for i in session.get_inputs()}
    outputs = [o.name for o in session.get_outputs()]
    if inputs != expected_inputs or output not in outputs:
        raise ModelMismatchError(
            f"{source}: the graph takes {inputs} and returns {outputs}; a {role} graph takes {expected_inputs} and "
            f"returns '{output}' (a graph exported by this project's export pipeline)"
        )


def graph_digest(serialized: bytes) -> str:
    """sha256 of the graph as it lies in a serialized ONNX model (the ModelProto's field 7: nodes and weights, not
    the metadata that records this digest); read from the protobuf wire format, so serving needs no onnx import."""
    position, end = 0, len(serialized)
    while position < end:
        key, position = _varint(serialized, position)
        field, wire_type = key >> 3, key & 7
        if wire_type == 0:
            _, position = _varint(serialized, position)
        elif wire_type == 2:
            length, position = _varint(serialized, position)
            if field == 7:
                return hashlib.sha256(serialized[position:position + length]).hexdigest()
            position += length
        elif wire_type in (1, 5):
            position += 8 if wire_type == 1 else 4
        else:
            break
    raise ModelMismatchError("the ONNX model holds no graph")


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7


def check_graph_intact(model: bytes | str, session: ort.InferenceSession, source: str) -> None:
    """A graph exported by this project (it records ``model_sha256``) must hold the very graph export wrote: a copy
    corrupted in place, or weights edited, would otherwise score silently."""
    metadata = model_metadata(session)
    if "model_sha256" not in metadata:
        return  # not exported by this project: nothing recorded to check against
    expected = metadata.get("graph_sha256")
    if expected is None:
        raise ModelMismatchError(f"{source}: exported by an older version that recorded no graph_sha256; re-run "
                                 "export (kedro run --pipeline export)")
    serialized = model if isinstance(model, bytes) else open(model, "rb").read()  # noqa: SIM115 (read whole, once)
    if graph_digest(serialized) != expected:
        raise ModelMismatchError(f"{source}: the graph's content differs from what export wrote (graph_sha256 "
                                 f"{expected[:12]}…): the file is corrupted or was changed; re-run export (kedro run "
                                 "--pipeline export) or copy the file again")


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
            f"the id maps do not match the model (sha256 {actual[:12]}…, the model expects {expected[:12]}…): a "
            "later ingestion rewrote them, so re-run training and export on the new data (kedro run --pipeline "
            "train); or score with the user_map/item_map that were saved together with this model"
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


def check_same_weights(ranking: onnx_like, retrieval: onnx_like) -> None:
    """A retrieval graph must come from the same trained weights as the ranking graph it shortlists for."""
    ranked, retrieved = (_metadata_of(graph).get("model_sha256") for graph in (ranking, retrieval))
    if ranked != retrieved:
        raise ModelMismatchError(f"the retrieval graph was exported from other weights (model_sha256 {retrieved}) than "
                                 f"the ranking graph ({ranked}): re-run export (kedro run --pipeline export)")


def _metadata_of(graph: onnx_like) -> dict[str, str]:
    if isinstance(graph, bytes | str):
        return model_metadata(ort.InferenceSession(graph, providers=[CPU]))
    return {p.key: p.value for p in graph.metadata_props}  # an onnx.ModelProto
