"""Export a trained model to a single self-contained ONNX graph, and check it against PyTorch."""

from __future__ import annotations

import hashlib

import numpy as np
import onnx
import torch

from convncf_kedro.errors import StaleModelError
from convncf_kedro.models import BPRRecommender, load_model
from convncf_kedro.serving.session import graph_digest

INPUTS, OUTPUT = ("user", "item"), "score"
RETRIEVAL_OUTPUT = "scores"  # the retrieval graph: user (B,) → scores (B, n_items)
GRAPH_DIGEST = "graph_sha256"  # metadata: the graph's hash, checked by every session (serving.session)


def export_onnx(model: BPRRecommender, opset: int, metadata: dict[str, str]) -> onnx.ModelProto:
    """user int64 [N], item int64 [N] → score float32 [N]; N dynamic; weights inside the graph."""
    model = model.float().eval()
    example = (torch.tensor([0, 1], dtype=torch.int64), torch.tensor([0, 1], dtype=torch.int64))
    batch = torch.export.Dim("N")
    program = torch.onnx.export(
        model.exportable().eval(), example, dynamo=True, opset_version=opset, input_names=list(INPUTS),
        output_names=[OUTPUT], dynamic_shapes={"user": {0: batch}, "item": {0: batch}}, external_data=False,
        verbose=False,
    )
    proto = program.model_proto
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=str(value))
    onnx.checker.check_model(proto)
    return with_graph_digest(proto)


def export_retrieval(model: BPRRecommender, opset: int, metadata: dict[str, str]) -> onnx.ModelProto:
    """user int64 [B] → scores float32 [B, n_items] by the model's own embeddings; B dynamic; weights inside."""
    module = model.float().eval().retrieval().eval()
    program = torch.onnx.export(
        module, (torch.tensor([0, 1], dtype=torch.int64),), dynamo=True, opset_version=opset, input_names=["user"],
        output_names=[RETRIEVAL_OUTPUT], dynamic_shapes={"user": {0: torch.export.Dim("B")}}, external_data=False,
        verbose=False,
    )
    proto = program.model_proto
    for key, value in {**metadata, "role": "retrieval"}.items():
        proto.metadata_props.add(key=key, value=str(value))
    onnx.checker.check_model(proto)
    return with_graph_digest(proto)


def with_graph_digest(proto: onnx.ModelProto) -> onnx.ModelProto:
    """``proto`` with ``graph_sha256`` (its graph's hash) in its metadata: what every scorer checks it against."""
    kept = [(p.key, p.value) for p in proto.metadata_props if p.key != GRAPH_DIGEST]
    del proto.metadata_props[:]
    for key, value in [*kept, (GRAPH_DIGEST, graph_digest(proto.SerializeToString()))]:
        proto.metadata_props.add(key=key, value=value)
    return proto


def largest_difference(reference: np.ndarray, candidate: np.ndarray) -> tuple[float, int]:
    diff = np.abs(reference.astype(np.float64) - candidate.astype(np.float64))
    worst = int(diff.argmax())
    return float(diff[worst]), worst


def model_digest(saved_model: dict) -> str:
    """Which trained weights a graph was exported from (recorded in its metadata as ``model_sha256``)."""
    return hashlib.sha256(load_model(saved_model).fingerprint_bytes()).hexdigest()[:16]


def check_exported_from(graph: onnx.ModelProto, saved_model: dict) -> None:
    """Stop when the graph was exported from other weights than the saved model (export not re-run)."""
    exported = {p.key: p.value for p in graph.metadata_props}.get("model_sha256")
    if exported != model_digest(saved_model):
        raise StaleModelError(
            f"the ONNX graph was exported from other weights (model_sha256 {exported}) than the saved ConvNCF "
            f"({model_digest(saved_model)}): re-run export (kedro run --pipeline export) before evaluation"
        )
