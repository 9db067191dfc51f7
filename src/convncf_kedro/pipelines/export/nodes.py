"""Export: the best ConvNCF as one ONNX graph, validated against PyTorch on real pairs."""

from __future__ import annotations

import numpy as np
import onnx
import pandas as pd
import scipy.sparse as sp
import torch

import convncf_kedro
from convncf_kedro.models import load_model, saved_info
from convncf_kedro.params import ExportParams, parse_params
from convncf_kedro.ranking.sampled import candidate_matrix
from convncf_kedro.serving.onnx_export import export_onnx, largest_difference, model_digest
from convncf_kedro.serving.session import create_session, id_maps_hash
from convncf_kedro.training.stage import check_trained_on


def export_convncf(
    convncf_model: dict, user_map: pd.DataFrame, item_map: pd.DataFrame, train_matrix: sp.csr_matrix,
    valid: pd.DataFrame, params: dict,
) -> onnx.ModelProto:
    """The ONNX graph (user, item → score) with what a scorer must know in its metadata."""
    p = parse_params(ExportParams, params, "export")
    check_trained_on(convncf_model, train_matrix, valid, "export")
    model = load_model(convncf_model)
    info = saved_info(convncf_model)
    metadata = {
        "model_name": info["model_class"],
        "recipe": info.get("recipe", ""),
        "model_version": convncf_kedro.__version__,
        "embedding_size": model.config.embedding_size,
        "n_users": model.config.n_users,
        "n_items": model.config.n_items,
        "training_dataset": p.dataset_name,
        "best_epoch": info["epoch"],
        "opset": p.opset,
        "id_maps_sha256": id_maps_hash(user_map, item_map),
        "model_sha256": model_digest(convncf_model),
    }
    return export_onnx(model, p.opset, metadata)


def validate_onnx(
    convncf_onnx: onnx.ModelProto, convncf_model: dict, test: pd.DataFrame, test_negatives: pd.DataFrame, params: dict
) -> dict:
    """ONNX Runtime's scores must equal PyTorch's on real (user, candidate) pairs, else the run fails."""
    p = parse_params(ExportParams, params, "export")
    users, items = candidate_matrix(test, test_negatives)
    real = items.reshape(-1) >= 0  # rows padded with -1 where given negatives were dropped
    pair_users = np.repeat(users, items.shape[1])[real][: p.validation_pairs].astype(np.int64)
    pair_items = items.reshape(-1)[real][: p.validation_pairs].astype(np.int64)
    with torch.no_grad():
        expected = load_model(convncf_model)(torch.from_numpy(pair_users), torch.from_numpy(pair_items)).numpy()
    session = create_session(convncf_onnx.SerializeToString(), device="cpu")
    actual = session.run(["score"], {"user": pair_users, "item": pair_items})[0]
    difference, worst = largest_difference(expected, actual)
    if not difference <= p.tolerance:
        raise ValueError(
            f"the ONNX graph disagrees with PyTorch: largest difference {difference:.3g} > export.tolerance "
            f"{p.tolerance:g} at user {pair_users[worst]}, item {pair_items[worst]} (PyTorch {expected[worst]:.6f}, "
            f"ONNX Runtime {actual[worst]:.6f})"
        )
    return {"pairs": len(pair_users), "largest_difference": difference, "tolerance": p.tolerance,
            "opset": p.opset, "onnx_bytes": convncf_onnx.ByteSize()}
