"""ONNX models as single self-contained ``.onnx`` files, saved atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx
from kedro.io import AbstractDataset, DatasetError

from ._atomic import atomic_path


class OnnxModelDataset(AbstractDataset[onnx.ModelProto, onnx.ModelProto]):
    """An ``onnx.ModelProto`` with its weights inside the file (no external-data side files)."""

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None):
        self._filepath = Path(filepath)
        self.metadata = metadata

    def load(self) -> onnx.ModelProto:
        try:
            return onnx.load(str(self._filepath))
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise DatasetError(f"{self._filepath} is not a readable ONNX model ({exc})") from exc

    def save(self, data: onnx.ModelProto) -> None:
        with atomic_path(self._filepath) as tmp:
            tmp.write_bytes(data.SerializeToString())

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
