"""Export a trained model to a single self-contained ONNX graph, and check it against PyTorch."""

from __future__ import annotations

import numpy as np
import onnx
import torch

from convncf_kedro.models import BPRRecommender

INPUTS, OUTPUT = ("user", "item"), "score"


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
    return proto


def largest_difference(reference: np.ndarray, candidate: np.ndarray) -> tuple[float, int]:
    diff = np.abs(reference.astype(np.float64) - candidate.astype(np.float64))
    worst = int(diff.argmax())
    return float(diff[worst]), worst
