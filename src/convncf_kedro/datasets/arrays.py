"""Named numpy arrays as one ``.npz`` file, read without pickle: a file from elsewhere cannot run code."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from kedro.io import AbstractDataset, DatasetError

from ._atomic import atomic_path


class NpzArrays(Mapping[str, np.ndarray]):
    """An ``.npz`` file's arrays, each read when first asked for: a model's description is read without its matrices
    (a kept EASE^R on Gowalla is 6.3 GB), and writing it out again holds one array at a time."""

    def __init__(self, filepath: Path, names: list[str]):
        self._filepath, self._names = filepath, names

    def __getitem__(self, name: str) -> np.ndarray:  # read on each use, never kept here
        if name not in self._names:
            raise KeyError(name)
        return _read(self._filepath, lambda arrays: arrays[name])

    def __contains__(self, name: object) -> bool:  # by name: Mapping's default would read the array
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def _read(filepath: Path, get):
    try:
        with np.load(filepath, allow_pickle=False) as arrays:
            return get(arrays)
    except FileNotFoundError:
        raise
    except Exception as exc:  # a pickle inside, a truncated or foreign file: never run, named
        raise DatasetError(f"{filepath} is not a readable array file ({exc})") from exc


def _names_of_plain_arrays(arrays) -> list[str]:
    """The arrays' names, from their headers alone; an array of Python objects (only pickle reads it) is refused
    here, at load, before anything asks for it."""
    for name in arrays.files:
        with arrays.zip.open(f"{name}.npy") as fh:
            version = np.lib.format.read_magic(fh)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            if read_header(fh)[2].hasobject:
                raise ValueError(f"array {name!r} holds Python objects, which only pickle reads")
    return list(arrays.files)


class ArraysDataset(AbstractDataset[dict[str, np.ndarray], Mapping[str, np.ndarray]]):
    """``{name: array}`` saved with ``np.savez``; loaded with ``allow_pickle=False`` (object arrays are refused), each
    array when first used."""

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None):
        self._filepath = Path(filepath)
        self.metadata = metadata

    def load(self) -> NpzArrays:
        return NpzArrays(self._filepath, _read(self._filepath, _names_of_plain_arrays))

    def save(self, data: dict[str, np.ndarray]) -> None:
        with atomic_path(self._filepath) as tmp:
            with tmp.open("wb") as fh:  # an open handle: savez appends no ".npz"
                np.savez(fh, **data)

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
