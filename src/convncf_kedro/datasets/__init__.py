"""The project's few custom Kedro datasets: raw files, sparse matrices, named arrays, torch checkpoints, ONNX models,
an atomic wrapper for kedro-datasets' file datasets and folders of parts replaced whole."""

from .arrays import ArraysDataset
from .atomic import AtomicDataset
from .onnx_model import OnnxModelDataset
from .partitioned import AtomicPartitionedDataset
from .raw_files import RawInteractionFiles
from .sparse_matrix import SparseMatrixDataset
from .torch_checkpoint import TorchCheckpointDataset
from .user_list import UserListDataset

__all__ = [
    "ArraysDataset", "AtomicDataset", "AtomicPartitionedDataset", "OnnxModelDataset", "RawInteractionFiles", "SparseMatrixDataset", "TorchCheckpointDataset",
    "UserListDataset",
]
