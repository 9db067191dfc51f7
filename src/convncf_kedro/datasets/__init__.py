"""The project's few custom Kedro datasets: raw files, sparse matrices, named arrays, torch checkpoints, ONNX models,
an atomic wrapper for kedro-datasets' file datasets, folders of parts replaced whole and MLflow metric histories
logged in one batch."""

from .arrays import ArraysDataset
from .atomic import AtomicDataset
from .mlflow_metrics import BatchedMetricsHistoryDataset
from .onnx_model import OnnxModelDataset
from .partitioned import AtomicPartitionedDataset
from .raw_files import RawInteractionFiles
from .sparse_matrix import SparseMatrixDataset
from .torch_checkpoint import TorchCheckpointDataset
from .user_list import UserListDataset

__all__ = [
    "ArraysDataset", "AtomicDataset", "AtomicPartitionedDataset", "BatchedMetricsHistoryDataset", "OnnxModelDataset", "RawInteractionFiles", "SparseMatrixDataset", "TorchCheckpointDataset",
    "UserListDataset",
]
