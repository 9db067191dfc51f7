"""A folder of parts that is replaced whole: the previous version stays until every new part is written.

kedro-datasets' ``PartitionedDataset`` with ``overwrite: true`` removes the old folder before writing the new
parts, so a run killed while saving leaves a few parts that read back without complaint. Here the parts are
written into a hidden folder beside the target, a ``_SUCCESS`` file listing them is written last, and only then
does the new folder take the target's place (the old one is moved aside first and restored if a kill falls between
the two renames). A folder without its ``_SUCCESS`` list, or missing a listed part, is refused on load.
``pd.read_parquet`` on the folder ignores ``_SUCCESS`` (names starting with ``_`` are not data).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from kedro.io import DatasetError
from kedro_datasets.partitions import PartitionedDataset

SUCCESS = "_SUCCESS"  # the list of parts, written last


class AtomicPartitionedDataset(PartitionedDataset):
    """``PartitionedDataset`` (local folders) whose save replaces the whole folder only once it is complete."""

    def __init__(self, path: str, dataset: str | dict[str, Any], filename_suffix: str = "",
                 metadata: dict[str, Any] | None = None, missing_ok: bool = False):
        super().__init__(path=path, dataset=dataset, filename_suffix=filename_suffix, metadata=metadata)
        self._folder = Path(path)
        self._missing_ok = missing_ok  # a previous version to reuse, if any: none (or an incomplete one) loads as {}
        self._part_config = {"dataset": dataset, "filename_suffix": filename_suffix}

    @property
    def _aside(self) -> Path:
        return self._folder.with_name(f".{self._folder.name}.replaced")

    def save(self, data: dict[str, Any]) -> None:
        self._recover()
        self._folder.parent.mkdir(parents=True, exist_ok=True)
        for debris in self._folder.parent.glob(f".{self._folder.name}.*.partial"):  # left by a killed save
            shutil.rmtree(debris, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{self._folder.name}.", suffix=".partial", dir=self._folder.parent))
        try:
            PartitionedDataset(path=str(staging), **self._part_config).save(data)
            parts = sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())
            (staging / SUCCESS).write_text(json.dumps({"parts": parts}, indent=1))
            shutil.rmtree(self._aside, ignore_errors=True)
            if self._folder.exists():
                os.replace(self._folder, self._aside)
            os.replace(staging, self._folder)
            shutil.rmtree(self._aside, ignore_errors=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self._invalidate_caches()

    def load(self) -> dict[str, Any]:
        self._recover()
        marker = self._folder / SUCCESS
        if self._missing_ok and not self._exists():
            return {}
        if not marker.is_file():
            raise DatasetError(f"{self._folder} is incomplete (no {SUCCESS} list of its parts): a run was interrupted "
                               "while writing it, or an older version wrote it; re-run the stage that writes it")
        missing = [part for part in json.loads(marker.read_text())["parts"] if not (self._folder / part).is_file()]
        if missing:
            raise DatasetError(f"{self._folder} is incomplete: {len(missing)} of its parts are missing (first: "
                               f"{missing[0]}); re-run the stage that writes it")
        self._invalidate_caches()
        return super().load()

    def _exists(self) -> bool:
        self._recover()
        return (self._folder / SUCCESS).is_file()

    def _recover(self) -> None:
        """A save killed between its two renames left the previous version aside: put it back."""
        if not self._folder.exists() and self._aside.exists():
            os.replace(self._aside, self._folder)
