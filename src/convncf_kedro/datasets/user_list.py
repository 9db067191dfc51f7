"""A plain list of raw user ids, one per line; a missing file loads as None."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset

from ._atomic import atomic_path


class UserListDataset(AbstractDataset[list[str], list[str] | None]):
    """Raw user ids, one per line (blank lines and lines starting with '#' are ignored)."""

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None):
        self._filepath = Path(filepath)
        self.metadata = metadata

    def load(self) -> list[str] | None:
        if not self._filepath.exists():
            return None
        lines = self._filepath.read_text(encoding="utf-8").splitlines()
        return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]

    def save(self, data: list[str]) -> None:
        with atomic_path(self._filepath) as tmp:
            tmp.write_text("".join(f"{user}\n" for user in data), encoding="utf-8")

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
