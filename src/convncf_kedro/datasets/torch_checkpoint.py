"""Torch checkpoints (plain dicts of tensors, numbers and strings), saved atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from kedro.io import AbstractDataset, DatasetError

from ._atomic import atomic_path

_REDO = "re-run the stage that trains it (kedro run --pipeline pretrain for mf_*, convncf for convncf_*)"


class TorchCheckpointDataset(AbstractDataset[dict, dict | None]):
    """A dict saved with ``torch.save`` and loaded with ``weights_only=True`` (no pickled code runs).

    With ``missing_ok: true`` a missing file loads as ``None``: the resume input of a training node,
    which starts fresh when there is nothing to resume from.
    """

    def __init__(self, filepath: str, missing_ok: bool = False, metadata: dict[str, Any] | None = None):
        self._filepath = Path(filepath)
        self._missing_ok = missing_ok
        self.metadata = metadata

    def load(self) -> dict | None:
        if self._missing_ok and not self._filepath.exists():
            return None
        if not self._filepath.exists():
            raise DatasetError(f"{self._filepath} does not exist: {_REDO}")
        try:
            return torch.load(self._filepath, map_location="cpu", weights_only=True)
        except Exception as exc:  # a truncated, foreign or code-bearing file: say which, and what to do
            what = (f"{self._filepath} is not a readable torch checkpoint ({type(exc).__name__}: "
                    f"{str(exc).splitlines()[0] if str(exc) else ''})")
            redo = "delete it to train from scratch" if self._missing_ok else _REDO
            raise DatasetError(f"{what}; {redo}") from None

    def save(self, data: dict) -> None:
        with atomic_path(self._filepath) as tmp:
            torch.save(data, tmp)

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "missing_ok": self._missing_ok}
