"""Batch scoring: top-K unseen items per user from the exported graph, with ONNX Runtime."""

from __future__ import annotations

import onnx
import pandas as pd
import scipy.sparse as sp

from convncf_kedro.config.params import ScoreParams, parse_params
from convncf_kedro.errors import ParameterError
from convncf_kedro.interactions.lineage import check_same_run
from convncf_kedro.serving.engine import RankSettings
from convncf_kedro.serving.recommend import recommend


def score_users(
    convncf_onnx: onnx.ModelProto,
    convncf_int8_onnx: onnx.ModelProto,
    onnx_validation: dict,
    convncf_retrieval_onnx: onnx.ModelProto,
    retrieval_validation: dict,
    user_map: pd.DataFrame,
    item_map: pd.DataFrame,
    known_interactions: sp.csr_matrix,
    users_to_score: list[str] | None,
    ingestion_manifest: dict,
    params: dict,
) -> tuple[dict[str, pd.DataFrame], dict]:
    """Recommendations (raw ids) for every user or a given list, one parquet part per partition of users; no
    item the user ever interacted with. ``score.cluster`` says where the partitions are ranked."""
    p = parse_params(ScoreParams, params, "score")
    if p.users == "list" and users_to_score is None:
        raise ParameterError("score.users", "is 'list', but the catalog's users_to_score file does not exist")
    check_same_run(ingestion_manifest, "score", user_map=user_map, item_map=item_map,
                   known_interactions=known_interactions)
    seen = known_interactions
    graph, precision = choose_graph(convncf_onnx, convncf_int8_onnx, onnx_validation, p.precision)
    shortlist = p.shortlist(retrieval_validation, "score")
    settings = RankSettings(**p.engine_fields(), k=p.k, device=p.device, shortlist=shortlist)
    partitions, report = recommend(
        graph.SerializeToString(), user_map, item_map, seen, settings,
        users_to_score if p.users == "list" else None, p.unknown_users, p.cluster, p.partition_users,
        retrieval=convncf_retrieval_onnx.SerializeToString() if shortlist else None,
    )
    candidates = f"two stages: shortlist of {shortlist} by the embeddings' dot product" if shortlist else "every unseen item"
    return partitions, {**report, "precision": precision, "candidates": candidates}


def choose_graph(
    fp32: onnx.ModelProto, int8: onnx.ModelProto, onnx_validation: dict, precision: str
) -> tuple[onnx.ModelProto, str]:
    """The graph ``score.precision`` asks for: INT8 only where export accepted it (and, for ``auto``, where it
    also ran faster than fp32 there)."""
    int8_check = onnx_validation.get("variants", {}).get("int8")
    if precision == "fp32" or (precision == "auto" and not (int8_check and int8_check["accepted"]
                                                            and int8_check["speed_vs_fp32"] > 1)):
        return fp32, "fp32"
    if not (int8_check and int8_check["accepted"]):
        raise ParameterError("score.precision", "is 'int8', but export did not accept the INT8 graph (it ranks "
                             "validation unlike fp32: see onnx_validation.json); use fp32 or auto")
    return int8, "int8"
