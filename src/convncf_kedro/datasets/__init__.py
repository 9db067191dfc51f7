"""The project's few custom Kedro datasets: raw files, sparse matrices, torch checkpoints."""

from .raw_files import RawFile, RawInteractionFiles
from .sparse_matrix import SparseMatrixDataset
from .torch_checkpoint import TorchCheckpointDataset

__all__ = ["RawFile", "RawInteractionFiles", "SparseMatrixDataset", "TorchCheckpointDataset"]
