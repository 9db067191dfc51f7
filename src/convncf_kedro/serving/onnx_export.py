"""Export a trained ConvNCF to a single self-contained ONNX graph, and check it against PyTorch."""

from __future__ import annotations

import numpy as np
import onnx
import torch
from torch import nn

from convncf_kedro.models import ConvNCF

INPUTS, OUTPUT = ("user", "item"), "score"


class _Conv2dScorer(nn.Module):
    """The model's nn.Conv2d form (ONNX Runtime runs plain Conv nodes fastest)."""

    def __init__(self, model: ConvNCF):
        super().__init__()
        self.model = model

    def forward(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        return self.model.forward_conv2d(user, item)


def export_onnx(model: ConvNCF, opset: int, metadata: dict[str, str]) -> onnx.ModelProto:
    """user int64 [N], item int64 [N] → score float32 [N]; N dynamic; weights inside the graph."""
    model = model.float().eval()
    example = (torch.tensor([0, 1], dtype=torch.int64), torch.tensor([0, 1], dtype=torch.int64))
    batch = torch.export.Dim("N")
    program = torch.onnx.export(
        _Conv2dScorer(model).eval(), example, dynamo=True, opset_version=opset, input_names=list(INPUTS),
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
