"""The project's few custom Kedro datasets: raw files, sparse matrices, torch checkpoints, ONNX models, and
an atomic wrapper for kedro-datasets' file datasets."""

from .atomic import AtomicDataset
from .onnx_model import OnnxModelDataset
from .raw_files import RawFile, RawInteractionFiles
from .sparse_matrix import SparseMatrixDataset
from .torch_checkpoint import TorchCheckpointDataset
from .user_list import UserListDataset

__all__ = [
    "AtomicDataset", "OnnxModelDataset", "RawFile", "RawInteractionFiles", "SparseMatrixDataset", "TorchCheckpointDataset",
    "UserListDataset",
]
