"""Named numpy arrays as one ``.npz`` file, read without pickle: a file from elsewhere cannot run code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from kedro.io import AbstractDataset, DatasetError

from ._atomic import atomic_path


class ArraysDataset(AbstractDataset[dict[str, np.ndarray], dict[str, np.ndarray]]):
    """``{name: array}`` saved with ``np.savez``; loaded with ``allow_pickle=False`` (object arrays are refused)."""

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None):
        self._filepath = Path(filepath)
        self.metadata = metadata

    def load(self) -> dict[str, np.ndarray]:
        try:
            with np.load(self._filepath, allow_pickle=False) as arrays:
                return {name: arrays[name] for name in arrays.files}
        except FileNotFoundError:
            raise
        except Exception as exc:  # a pickle inside, a truncated or foreign file: never run, named
            raise DatasetError(f"{self._filepath} is not a readable array file ({exc})") from exc

    def save(self, data: dict[str, np.ndarray]) -> None:
        with atomic_path(self._filepath) as tmp:
            with tmp.open("wb") as fh:  # an open handle: savez appends no ".npz"
                np.savez(fh, **data)

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
