"""The models, in plain PyTorch (no Kedro): MF-BPR and ConvNCF, on one contract (``base.py``)."""

from .base import (
    BPRLoss,
    BPRRecommender,
    ModelInfo,
    OutdatedModelError,
    Phase,
    load_model,
    saved_info,
)
from .convncf import ConvNCF, ConvNCFBPRLoss, ConvNCFConfig
from .mf import MF, MFConfig

__all__ = [
    "MF", "BPRLoss", "BPRRecommender", "ModelInfo", "ConvNCF", "ConvNCFBPRLoss", "ConvNCFConfig", "MFConfig", "OutdatedModelError",
    "Phase",
    "load_model", "saved_info",
]
