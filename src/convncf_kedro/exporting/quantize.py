"""Low-precision variants of the exported graph, by ONNX Runtime's own quantization tools.

INT8: static QDQ quantization of the convolutions and the output layer (signed 8-bit weights per channel and
activations), calibrated on real (user, candidate) pairs. A variant is used only where it ranks like the
fp32 graph (see the export pipeline's check).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from .onnx_export import with_graph_digest


class _PairBatches(CalibrationDataReader):
    def __init__(self, batches: Iterator[tuple[np.ndarray, np.ndarray]]):
        self._batches = batches

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {"user": batch[0].astype(np.int64), "item": batch[1].astype(np.int64)}


def quantize_int8(graph: onnx.ModelProto, users: np.ndarray, items: np.ndarray, batch_pairs: int) -> onnx.ModelProto:
    """The INT8 (QDQ) graph of ``graph``, its activation ranges calibrated on the pairs ``(users, items)``."""
    batches = ((users[i:i + batch_pairs], items[i:i + batch_pairs]) for i in range(0, len(users), batch_pairs))
    with tempfile.TemporaryDirectory() as tmp:
        source, prepared, quantized = (str(Path(tmp) / name) for name in ("fp32.onnx", "pre.onnx", "int8.onnx"))
        onnx.save(graph, source)
        quant_pre_process(source, prepared)
        quantize_static(prepared, quantized, _PairBatches(batches), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=True,
                        op_types_to_quantize=["Conv", "Gemm", "MatMul"])
        result = onnx.load(quantized)
    del result.metadata_props[:]
    for prop in graph.metadata_props:
        result.metadata_props.add(key=prop.key, value="int8" if prop.key == "precision" else prop.value)
    return with_graph_digest(result)
