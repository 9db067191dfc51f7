"""Any file dataset of kedro-datasets, saved atomically (kedro-datasets write in place).

An interrupted run must not leave a truncated report or recommendations file that the next stage
reads: the wrapped dataset saves to a temporary file beside the target, which replaces the target
only once the save has completed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset

from ._atomic import atomic_path


class AtomicDataset(AbstractDataset[Any, Any]):
    """``dataset`` (a kedro-datasets type name, or its config without ``filepath``) at ``filepath``, saved atomically."""

    def __init__(self, dataset: str | dict[str, Any], filepath: str, metadata: dict[str, Any] | None = None):
        self._spec = {"type": dataset} if isinstance(dataset, str) else dict(dataset)
        self._filepath = Path(filepath)
        self._target = self._at(self._filepath)
        self.metadata = metadata
        if hasattr(self._target, "preview"):  # kedro-viz previews tables and images through the wrapped dataset
            self.preview = self._target.preview

    def _at(self, path: Path) -> AbstractDataset:
        return AbstractDataset.from_config(path.name, {**self._spec, "filepath": str(path)})

    def load(self) -> Any:
        return self._target.load()

    def save(self, data: Any) -> None:
        with atomic_path(self._filepath) as tmp:
            self._at(tmp).save(data)

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "dataset": self._spec["type"]}
