"""Export: the best ConvNCF as one ONNX graph, validated against PyTorch on real pairs."""

from __future__ import annotations

import numpy as np
import onnx
import pandas as pd
import torch

import convncf_kedro
from convncf_kedro.models import build_model
from convncf_kedro.params import ExportParams, parse_params
from convncf_kedro.ranking.sampled import candidate_matrix
from convncf_kedro.serving.onnx_export import export_onnx, largest_difference
from convncf_kedro.serving.onnx_scoring import create_session, id_maps_hash


def export_convncf(convncf_model: dict, user_map: pd.DataFrame, item_map: pd.DataFrame, params: dict) -> onnx.ModelProto:
    """The ONNX graph (user, item → score) with what a scorer must know in its metadata."""
    p = parse_params(ExportParams, params, "export")
    model = build_model(convncf_model)
    hyper = convncf_model["hyperparameters"]
    metadata = {
        "model_name": "ConvNCF",
        "model_version": convncf_kedro.__version__,
        "embedding_size": hyper["embedding_size"],
        "n_users": hyper["n_users"],
        "n_items": hyper["n_items"],
        "training_dataset": p.dataset_name,
        "best_epoch": convncf_model["epoch"],
        "opset": p.opset,
        "id_maps_sha256": id_maps_hash(user_map, item_map),
    }
    return export_onnx(model, p.opset, metadata)


def validate_onnx(
    convncf_onnx: onnx.ModelProto, convncf_model: dict, test: pd.DataFrame, test_negatives: pd.DataFrame, params: dict
) -> dict:
    """ONNX Runtime's scores must equal PyTorch's on real (user, candidate) pairs, else the run fails."""
    p = parse_params(ExportParams, params, "export")
    users, items = candidate_matrix(test, test_negatives)
    pair_users = np.repeat(users, items.shape[1])[: p.validation_pairs].astype(np.int64)
    pair_items = items.reshape(-1)[: p.validation_pairs].astype(np.int64)
    with torch.no_grad():
        expected = build_model(convncf_model)(torch.from_numpy(pair_users), torch.from_numpy(pair_items)).numpy()
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
