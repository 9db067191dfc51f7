"""scipy.sparse matrices as ``.npz`` files (kedro-datasets has no such dataset)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import scipy.sparse as sp
from kedro.io import AbstractDataset, DatasetError

from ._atomic import atomic_path


class SparseMatrixDataset(AbstractDataset[sp.csr_matrix, sp.csr_matrix]):
    """A CSR matrix saved with ``scipy.sparse.save_npz``; loads back as CSR with sorted indices."""

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None):
        self._filepath = Path(filepath)
        self.metadata = metadata

    def load(self) -> sp.csr_matrix:
        try:
            matrix = sp.load_npz(self._filepath).tocsr()  # allow_pickle=False: a payload is refused, never run
        except FileNotFoundError:
            raise
        except Exception as exc:  # truncated, foreign or payload-bearing: name it and the stage that writes it
            raise DatasetError(f"{self._filepath} is not a readable sparse matrix ({type(exc).__name__}: {exc}); "
                               "re-run the matrix stage that writes it (kedro run --pipeline matrix)") from None
        matrix.sort_indices()
        return matrix

    def save(self, data: sp.spmatrix) -> None:
        with atomic_path(self._filepath) as tmp:
            with tmp.open("wb") as fh:  # an open handle stops save_npz from appending ".npz"
                sp.save_npz(fh, sp.csr_matrix(data), compressed=True)

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
