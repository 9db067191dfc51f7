"""Raw interaction files, downloaded and checked on first use when a download is configured."""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawFile:
    """The bytes of one raw input file and the path they came from (for error messages)."""

    path: str
    data: bytes


class RawInteractionFiles(AbstractDataset[None, dict[str, RawFile]]):
    """A folder of raw interaction files, loaded as ``{role: RawFile}``.

    ``files`` maps a role (``log``; or ``train``, ``test``, ``negatives`` for pre-split data) to a
    file name inside ``path``. With ``download`` set (``url`` of a zip, ``extract_to`` folder and
    ``sha256`` per role), missing files are fetched from the archive and checked before use.
    """

    def __init__(
        self,
        path: str,
        files: dict[str, str],
        download: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        self._path = Path(path)
        self._files = dict(files)
        self._download = download
        self.metadata = metadata

    def _file_paths(self) -> dict[str, Path]:
        return {role: self._path / name for role, name in self._files.items()}

    def load(self) -> dict[str, RawFile]:
        paths = self._file_paths()
        missing = [p for p in paths.values() if not p.is_file()]
        if missing and self._download:
            self._fetch(missing)
            missing = [p for p in paths.values() if not p.is_file()]
        if missing:
            raise DatasetError(
                f"raw input file not found: {', '.join(map(str, missing))}. Place the file(s) at that "
                f"path, or point the catalog entry at your data."
            )
        return {role: RawFile(str(p), p.read_bytes()) for role, p in paths.items()}

    def save(self, data: None) -> None:
        raise DatasetError("RawInteractionFiles is read-only: raw data is never overwritten")

    def _exists(self) -> bool:
        return all(p.is_file() for p in self._file_paths().values())

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "files": self._files, "download": self._download}

    def _fetch(self, missing: list[Path]) -> None:
        url = self._download["url"]
        extract_to = Path(self._download.get("extract_to", self._path.parent))
        expected = self._download.get("sha256", {})
        place_hint = ", ".join(map(str, missing))
        extract_to.mkdir(parents=True, exist_ok=True)
        logger.info("Raw data missing; downloading %s", url)
        with tempfile.TemporaryDirectory(dir=extract_to, prefix=".download-") as tmp:
            archive = Path(tmp) / "archive.zip"
            try:
                with urllib.request.urlopen(url, timeout=60) as response, archive.open("wb") as out:
                    shutil.copyfileobj(response, out)
                with zipfile.ZipFile(archive) as zf:
                    zf.extractall(Path(tmp) / "extracted")
            except (OSError, zipfile.BadZipFile) as exc:
                raise DatasetError(
                    f"could not download {url} ({exc}). Download it by hand and place the file(s) at "
                    f"{place_hint}"
                ) from exc
            extracted_dir = Path(tmp) / "extracted" / self._path.relative_to(extract_to)
            for role, name in self._files.items():
                candidate = extracted_dir / name
                if not candidate.is_file():
                    raise DatasetError(
                        f"{url} does not contain {name}; place the file at {self._path / name}"
                    )
                if role in expected:
                    digest = hashlib.sha256(candidate.read_bytes()).hexdigest()
                    if digest != expected[role]:
                        raise DatasetError(
                            f"{name} from {url} has sha256 {digest}, expected {expected[role]}; the "
                            f"download is corrupt or changed. Place a good copy at {self._path / name}"
                        )
            if self._path.exists():
                for name in self._files.values():
                    (extracted_dir / name).replace(self._path / name)
            else:
                extracted_dir.replace(self._path)
        logger.info("Downloaded and verified %s into %s", url, self._path)
