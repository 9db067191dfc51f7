"""One raw input file as the readers take it, and the one way the project hashes a file's bytes. Standard library
only: reading a log needs neither Kedro nor torch."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RawFile:
    """The bytes of one raw input file and the path they came from (for error messages)."""

    path: str
    data: bytes


def file_sha256(path: Path) -> str:
    """The sha256 of a file, read in 1 MiB blocks (a raw log may not fit in memory twice)."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
