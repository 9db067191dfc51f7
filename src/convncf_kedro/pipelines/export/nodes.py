"""Export: the best ConvNCF as one ONNX graph, validated against PyTorch on real pairs, and its INT8 variant,
accepted only where it ranks the validation split like the fp32 graph."""

from __future__ import annotations

import logging
import time

import numpy as np
import onnx
import pandas as pd
import scipy.sparse as sp
import torch

import convncf_kedro
from convncf_kedro.config.params import EvaluationParams, ExportParams, parse_params
from convncf_kedro.exporting.onnx_export import (
    export_onnx,
    export_retrieval,
    largest_difference,
    model_digest,
)
from convncf_kedro.exporting.quantize import quantize_int8
from convncf_kedro.exporting.retrieval_check import ShortlistCheck, check_shortlists
from convncf_kedro.interactions.lineage import check_same_run, check_trained_on
from convncf_kedro.models import load_model, saved_info
from convncf_kedro.ranking.metrics import ranks_alike
from convncf_kedro.ranking.sampled import candidate_matrix, evaluate_sampled
from convncf_kedro.serving.engine import RankSettings
from convncf_kedro.serving.session import (
    check_same_weights,
    create_session,
    id_maps_hash,
    onnx_pair_scorer,
)

logger = logging.getLogger(__name__)


def export_convncf(
    convncf_model: dict, user_map: pd.DataFrame, item_map: pd.DataFrame, ingestion_manifest: dict, params: dict,
) -> onnx.ModelProto:
    """The ONNX graph (user, item → score) with what a scorer must know in its metadata."""
    p = parse_params(ExportParams, params, "export")
    return export_onnx(load_model(convncf_model), p.opset, _metadata(convncf_model, user_map, item_map,
                                                                     ingestion_manifest, p))


def export_convncf_retrieval(
    convncf_model: dict, user_map: pd.DataFrame, item_map: pd.DataFrame, ingestion_manifest: dict, params: dict,
) -> onnx.ModelProto:
    """The first stage of two-stage ranking: user → the dot products of ConvNCF's own embeddings with every item."""
    p = parse_params(ExportParams, params, "export")
    return export_retrieval(load_model(convncf_model), p.opset, _metadata(convncf_model, user_map, item_map,
                                                                          ingestion_manifest, p))


def _metadata(convncf_model: dict, user_map: pd.DataFrame, item_map: pd.DataFrame, ingestion_manifest: dict,
              p: ExportParams) -> dict:
    """What a scorer must know about a graph: where it came from, the ids it expects, the weights it holds."""
    data = check_same_run(ingestion_manifest, "export", user_map=user_map, item_map=item_map)
    info = saved_info(convncf_model)
    check_trained_on(info, data, "export")
    metadata = {
        "model_name": info.model_class,
        "recipe": info.recipe or "",
        "model_version": convncf_kedro.__version__,
        "embedding_size": info.config["embedding_size"],
        "n_users": info.config["n_users"],
        "n_items": info.config["n_items"],
        "training_dataset": p.dataset_name,
        "best_epoch": info.epoch,
        "opset": p.opset,
        "id_maps_sha256": id_maps_hash(user_map, item_map),
        "model_sha256": model_digest(convncf_model),
        "precision": "fp32",
    }
    return metadata


def quantize_convncf(
    convncf_onnx: onnx.ModelProto, valid: pd.DataFrame, valid_negatives: pd.DataFrame, params: dict
) -> onnx.ModelProto:
    """The INT8 variant, calibrated on the first ``export.calibration_pairs`` validation pairs."""
    p = parse_params(ExportParams, params, "export")
    users, items = _pairs(valid, valid_negatives, p.calibration_pairs)
    return quantize_int8(convncf_onnx, users, items, p.batch_pairs)


def validate_onnx(
    convncf_onnx: onnx.ModelProto, convncf_int8_onnx: onnx.ModelProto, convncf_model: dict, valid: pd.DataFrame,
    valid_negatives: pd.DataFrame, test: pd.DataFrame, test_negatives: pd.DataFrame, ingestion_manifest: dict,
    params: dict,
) -> dict:
    """ONNX Runtime's scores must equal PyTorch's on real (user, candidate) pairs, else the run fails; each
    low-precision variant is accepted only if it ranks the validation split like the fp32 graph (NDCG@10 and
    HR@10 equal to 3 decimals), and its speed is measured beside fp32's on the same pairs."""
    p = parse_params(ExportParams, params, "export")
    data = check_same_run(ingestion_manifest, "export", valid=valid, valid_negatives=valid_negatives, test=test,
                          test_negatives=test_negatives)
    check_trained_on(saved_info(convncf_model), data, "export")
    pair_users, pair_items = _pairs(test, test_negatives, p.validation_pairs)
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
    users, items = candidate_matrix(valid, valid_negatives)
    measured = {name: _ranks_validation(graph, users, items, p.batch_pairs)
                for name, graph in (("fp32", convncf_onnx), ("int8", convncf_int8_onnx))}
    variants = {}
    for name in ("int8",):
        same = ranks_alike(measured[name], measured["fp32"], ("ndcg@10", "hr@10"))
        if not same:
            logger.warning("the %s graph ranks validation unlike fp32 (NDCG@10 %.4f vs %.4f, HR@10 %.4f vs %.4f): "
                           "not used", name, measured[name]["ndcg@10"], measured["fp32"]["ndcg@10"],
                           measured[name]["hr@10"], measured["fp32"]["hr@10"])
        variants[name] = {**measured[name], "accepted": same,
                          "speed_vs_fp32": round(measured[name]["pairs_per_second_1_thread"]
                                                / measured["fp32"]["pairs_per_second_1_thread"], 3)}
    return {"pairs": len(pair_users), "largest_difference": difference, "tolerance": p.tolerance,
            "opset": p.opset, "onnx_bytes": convncf_onnx.ByteSize(), "fp32": measured["fp32"], "variants": variants}


def _pairs(held_out: pd.DataFrame, negatives: pd.DataFrame, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``limit`` real (user, candidate) pairs of a split (rows padded with -1 skipped).

    Only the held-out rows that can hold them are expanded (each row has at least its held-out item): Gowalla's
    whole test split against 999 negatives would be 217 M pairs, 7 GiB, for a check of a few thousand."""
    held_out = held_out[held_out["user"].isin(negatives["user"])].head(limit)
    users, items = candidate_matrix(held_out, negatives[negatives["user"].isin(held_out["user"])])
    real = items.reshape(-1) >= 0
    return (np.repeat(users, items.shape[1])[real][:limit].astype(np.int64),
            items.reshape(-1)[real][:limit].astype(np.int64))


def _ranks_validation(graph: onnx.ModelProto, users: np.ndarray, items: np.ndarray, batch_pairs: int) -> dict:
    """Validation NDCG@10 and HR@10 of a graph, and its single-threaded pairs per second on the first 25,600
    validation pairs (the same pairs for every graph)."""
    serialized = graph.SerializeToString()
    metrics = evaluate_sampled(onnx_pair_scorer(create_session(serialized, "cpu"), batch_pairs), users, items, [10],
                               label=f"the {_precision(graph)} graph on validation")
    real = items >= 0
    pair_users, pair_items = np.repeat(users, items.shape[1])[real.ravel()][:25_600], items[real][:25_600]
    one_thread = onnx_pair_scorer(create_session(serialized, "cpu", 1), batch_pairs)
    one_thread(pair_users[:batch_pairs], pair_items[:batch_pairs])  # warm-up
    started = time.perf_counter()
    one_thread(pair_users, pair_items)
    return {"ndcg@10": metrics["ndcg@10"], "hr@10": metrics["hr@10"],
            "pairs_per_second_1_thread": round(len(pair_users) / (time.perf_counter() - started))}


def _precision(graph: onnx.ModelProto) -> str:
    return {p.key: p.value for p in graph.metadata_props}.get("precision", "fp32")


def check_retrieval(
    convncf_onnx: onnx.ModelProto, retrieval_onnx: onnx.ModelProto, train_matrix: sp.csr_matrix, valid: pd.DataFrame,
    ingestion_manifest: dict, params: dict, evaluation: dict,
) -> dict:
    """Does ranking a shortlist rank validation like ranking every item? (see :mod:`convncf_kedro.exporting.retrieval_check`)"""
    p = parse_params(ExportParams, params, "export")
    e = parse_params(EvaluationParams, evaluation, "evaluation")
    check_same_run(ingestion_manifest, "export", train_matrix=train_matrix, valid=valid)
    check_same_weights(convncf_onnx, retrieval_onnx)
    check = ShortlistCheck(**p.retrieval_check.model_dump(),
                           confidence=e.confidence, resamples=e.bootstrap_resamples, interval_seed=e.seed,
                           engine=RankSettings(**e.engine_fields(), k=10, device="cpu"))
    return check_shortlists(convncf_onnx.SerializeToString(), retrieval_onnx.SerializeToString(), train_matrix, valid,
                            check)
