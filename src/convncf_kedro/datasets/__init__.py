"""The project's few custom Kedro datasets: raw files, sparse matrices, torch checkpoints, ONNX models."""

from .onnx_model import OnnxModelDataset
from .raw_files import RawFile, RawInteractionFiles
from .sparse_matrix import SparseMatrixDataset
from .torch_checkpoint import TorchCheckpointDataset
from .user_list import UserListDataset

__all__ = [
    "OnnxModelDataset", "RawFile", "RawInteractionFiles", "SparseMatrixDataset", "TorchCheckpointDataset",
    "UserListDataset",
]
