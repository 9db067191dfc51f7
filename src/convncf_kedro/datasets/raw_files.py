"""Raw interaction files, downloaded and checked on first use when a download is configured."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from convncf_kedro.interactions.raw_file import RawFile, file_sha256

logger = logging.getLogger(__name__)

VERIFIED_FILE = ".sha256-verified.json"  # beside the raw files: which (name, size, mtime) passed their check


class RawInteractionFiles(AbstractDataset[None, dict[str, RawFile]]):
    """A folder of raw interaction files, loaded as ``{role: RawFile}``.

    ``files`` maps a role (``log``; or ``train``, ``test``, ``negatives`` for pre-split data) to a
    file name inside ``path``. ``sha256`` (per role) is checked for files already on disk too, once per
    file version (the result is cached beside them), so a truncated manual copy is named before use.
    With ``download`` set (``url`` of a zip and ``archive_folder``, the folder inside it holding the
    files), missing files are fetched, checked, and only then moved into ``path``. Both places are
    resolved against ``path``, which Kedro makes absolute, so the working directory does not matter.
    """

    def __init__(
        self,
        path: str,
        files: dict[str, str],
        download: dict[str, Any] | None = None,
        sha256: dict[str, str] | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        self._path = Path(path)
        self._files = dict(files)
        self._download = download
        self._sha256 = dict(sha256 or {})
        unknown = sorted(set(self._sha256) - set(self._files))
        if unknown:
            raise DatasetError(f"raw_interactions: sha256 given for {unknown}, which are not among files {sorted(self._files)}")
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
        self._verify_on_disk(paths)
        return {role: RawFile(str(p), p.read_bytes()) for role, p in paths.items()}

    def save(self, data: None) -> None:
        raise DatasetError("RawInteractionFiles is read-only: raw data is never overwritten")

    def _exists(self) -> bool:
        return all(p.is_file() for p in self._file_paths().values())

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "files": self._files, "download": self._download, "sha256": self._sha256}

    def _verify_on_disk(self, paths: dict[str, Path]) -> None:
        """Check each file that has a sha256 against it, unless this very version (size, mtime) passed before."""
        cache_path = self._path / VERIFIED_FILE
        try:
            cache = json.loads(cache_path.read_text())
        except (OSError, ValueError):
            cache = {}
        changed = False
        for role, expected in self._sha256.items():
            path = paths[role]
            stat = path.stat()
            stamp = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": expected}
            if cache.get(path.name) == stamp:
                continue
            digest = file_sha256(path)
            if digest != expected:
                raise DatasetError(
                    f"{path} has sha256 {digest}, expected {expected} (catalog raw_interactions.sha256.{role}): the "
                    f"file is truncated, corrupt or another version. Replace it with a good copy"
                    + (" or delete it to download it again" if self._download else "")
                )
            cache[path.name] = stamp
            changed = True
        if changed:
            try:
                cache_path.write_text(json.dumps(cache, indent=1, sort_keys=True))
            except OSError:  # a read-only data folder: check again next time
                logger.debug("could not cache the checksum results in %s", cache_path)

    def _fetch(self, missing: list[Path]) -> None:
        url = self._download["url"]
        folder = PurePosixPath(self._download.get("archive_folder", self._path.name))
        place_hint = ", ".join(map(str, missing))
        self._path.parent.mkdir(parents=True, exist_ok=True)
        logger.info("Raw data missing; downloading %s", url)
        with tempfile.TemporaryDirectory(dir=self._path.parent, prefix=".download-") as tmp:
            archive = Path(tmp) / "archive.zip"
            try:
                with urllib.request.urlopen(url, timeout=60) as response, archive.open("wb") as out:
                    shutil.copyfileobj(response, out)
                with zipfile.ZipFile(archive) as zf:
                    zf.extractall(Path(tmp) / "extracted")
            except (OSError, ValueError, zipfile.BadZipFile) as exc:
                raise DatasetError(
                    f"could not download {url} ({exc}). Download it by hand and place the file(s) at "
                    f"{place_hint}"
                ) from exc
            extracted_dir = Path(tmp) / "extracted" / folder
            for role, name in self._files.items():
                candidate = extracted_dir / name
                if not candidate.is_file():
                    raise DatasetError(
                        f"{url} has no {folder / name}; place the file at {self._path / name}"
                    )
                if role in self._sha256 and (digest := file_sha256(candidate)) != self._sha256[role]:
                    raise DatasetError(
                        f"{name} from {url} has sha256 {digest}, expected {self._sha256[role]}; the "
                        f"download is corrupt or changed. Place a good copy at {self._path / name}"
                    )
            if self._path.exists():
                for name in self._files.values():
                    (extracted_dir / name).replace(self._path / name)
            else:
                extracted_dir.replace(self._path)
        logger.info("Downloaded and verified %s into %s", url, self._path)

