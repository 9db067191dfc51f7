"""The project's few custom Kedro datasets: raw files, sparse matrices, torch checkpoints, ONNX models."""

from .raw_files import RawFile, RawInteractionFiles
from .sparse_matrix import SparseMatrixDataset

__all__ = ["RawFile", "RawInteractionFiles", "SparseMatrixDataset"]
