"""Test-split ranking quality of any trained model — MF and ConvNCF (PyTorch or their exported graph) and the
baselines — by the sampled and the full-ranking protocol, on the same users and candidates, with each user's metrics
kept for paired comparisons. Used by the `evaluation` and `study` pipelines."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence

import numpy as np
import onnx
import pandas as pd
import scipy.sparse as sp
import torch
from kedro.io import DatasetError

from convncf_kedro.baselines.models import load_baseline, saved_description
from convncf_kedro.config.params import EvaluationParams
from convncf_kedro.errors import ParameterError, StaleInputError
from convncf_kedro.exporting.onnx_export import check_exported_from
from convncf_kedro.exporting.retrieval_check import accepted_shortlists
from convncf_kedro.interactions.lineage import (
    check_data_fingerprint,
    check_same_run,
    check_trained_on,
)
from convncf_kedro.interactions.prepare import positives_matrix
from convncf_kedro.models import BPRRecommender, ModelInfo, load_model, saved_info
from convncf_kedro.models.scoring import block_scorer, pair_scorer
from convncf_kedro.ranking.full import ScorePairs, clamp_shortlist, hits_against, top_k_unseen
from convncf_kedro.ranking.metrics import (
    by_user,
    full_ranking_metrics_per_user,
    mean_metrics,
    paired_difference,
    ranks_alike,
    sampled_metrics_per_user,
    sampled_metrics_random_ties,
)
from convncf_kedro.ranking.sampled import candidate_matrix, evaluate_sampled, rank_sampled
from convncf_kedro.serving.engine import RankSettings, rank_users, session_for
from convncf_kedro.serving.session import check_same_weights, onnx_pair_scorer
from convncf_kedro.training import runtime

logger = logging.getLogger(__name__)


def evaluate_model(
    saved_model: dict,
    train_matrix: sp.csr_matrix,
    valid: pd.DataFrame,
    valid_negatives: pd.DataFrame,
    test: pd.DataFrame,
    test_negatives: pd.DataFrame,
    ingestion_manifest: dict,
    p: EvaluationParams,
) -> tuple[dict, pd.DataFrame]:
    """Test metrics of one trained model, scored by PyTorch (MF, and every member of the study), by the sampled
    protocol and by full ranking, in one precision: their means, and each user's (for paired comparisons)."""
    data = _same_run(ingestion_manifest, train_matrix, valid, valid_negatives, test, test_negatives)
    info = saved_info(saved_model)
    check_trained_on(info, data, "evaluation")
    device = runtime.resolve_device(p.device)
    runtime.configure(p.threads, device)
    runtime.warn_if_emulated(p.precision, device)
    model = load_model(saved_model).to(device)
    name = f"{info.model_class} (epoch {info.epoch})"
    precision, precision_check = _checked_precision(model, device, p, valid, valid_negatives, name)

    def rank_full(users: np.ndarray, seen: sp.csr_matrix, relevant: sp.csr_matrix) -> np.ndarray:
        top_items, _ = top_k_unseen(
            block_scorer(model, device, precision, p.batch_pairs), users, seen, max(p.ks), p.chunk_users,
            p.chunk_items, p.log_every_seconds, label=f"{name} full ranking", ties_last=relevant,
        )
        return top_items

    scored_by = {"precision": precision, "precision_check": precision_check, "engine": "pytorch"}
    return _evaluate(info, name, pair_scorer(model, device, precision, p.batch_pairs), rank_full, scored_by, p,
                     train_matrix, valid, test, test_negatives)


def evaluate_exported(
    graph: onnx.ModelProto,
    saved_model: dict,
    train_matrix: sp.csr_matrix,
    valid: pd.DataFrame,
    valid_negatives: pd.DataFrame,
    test: pd.DataFrame,
    test_negatives: pd.DataFrame,
    ingestion_manifest: dict,
    retrieval_graph: onnx.ModelProto,
    retrieval_check: dict,
    p: EvaluationParams,
) -> tuple[dict, pd.DataFrame]:
    """:func:`evaluate_model` for the exported ConvNCF: ranked by the scoring engine with the very graph users
    score with (ONNX Runtime, fp32), on ``evaluation.cluster`` like `score`; with ``evaluation.candidates:
    {retrieve: …}`` its full ranking goes through two stages, and is labelled approximate."""
    shortlist = clamp_shortlist(p.shortlist(retrieval_check, "evaluation"), train_matrix.shape[1])
    if shortlist and shortlist not in (accepted := accepted_shortlists(retrieval_check)):
        raise ParameterError("evaluation.candidates.retrieve", f"a shortlist of {shortlist} was not checked to rank "
                             f"validation like every item (export accepted {accepted or 'none'}: "
                             "retrieval_validation.json), so pairing it with the exhaustively ranked models would mix "
                             "approximation error into their differences; use an accepted size, auto, or all")
    data = _same_run(ingestion_manifest, train_matrix, valid, valid_negatives, test, test_negatives)
    info = saved_info(saved_model)
    check_trained_on(info, data, "evaluation")
    check_exported_from(graph, saved_model)
    name = f"{info.model_class} (epoch {info.epoch}, ONNX)"
    serialized = graph.SerializeToString()
    device = p.device.split(":")[0]  # ONNX Runtime picks its GPU itself
    settings = RankSettings(**p.engine_fields(), k=max(p.ks), device=device, shortlist=shortlist)
    retrieval = None
    if shortlist:
        check_same_weights(graph, retrieval_graph)
        retrieval = retrieval_graph.SerializeToString()

    def rank_full(users: np.ndarray, seen: sp.csr_matrix, relevant: sp.csr_matrix) -> np.ndarray:
        parts = sorted(rank_users(serialized, seen, users, settings, p.partition_users, p.cluster, relevant,
                                  label=f"{name} full ranking", retrieval=retrieval), key=lambda part: part.index)
        return np.concatenate([part.top_items for part in parts]) if parts else np.empty((0, settings.k), np.int64)

    session = session_for(serialized, device, p.threads)
    scored_by = {"precision": "fp32", "precision_check": None, "engine": f"onnxruntime ({session.get_providers()[0]})",
                 "cluster": p.cluster, "full_ranking_candidates": f"two stages, shortlist {shortlist} (approximate; export found it ranks validation like every item)"
                 if shortlist else "every unseen item (exact)"}
    return _evaluate(info, name, onnx_pair_scorer(session, p.batch_pairs), rank_full, scored_by, p, train_matrix,
                     valid, test, test_negatives)


def evaluate_baselines(
    baseline_models: dict[str, Callable[[], dict]],
    train_matrix: sp.csr_matrix,
    valid: pd.DataFrame,
    valid_negatives: pd.DataFrame,
    test: pd.DataFrame,
    test_negatives: pd.DataFrame,
    ingestion_manifest: dict,
    p: EvaluationParams,
    configured: Sequence[str],
) -> tuple[dict[str, dict], dict[str, pd.DataFrame]]:
    """:func:`evaluate_model` for every ``configured`` baseline (one partition each): the same protocols, users,
    candidates, tie rule and metrics; their chosen parameters and the users scored by the popularity floor ride
    along. A configured baseline without a readable saved model stops the run before any work: a comparison never
    loses a model silently."""
    data = _same_run(ingestion_manifest, train_matrix, valid, valid_negatives, test, test_negatives)
    missing = [name for name in configured if name not in baseline_models]
    if missing:
        raise StaleInputError(
            f"evaluation: baselines.models lists {', '.join(missing)}, but data/06_models/baselines holds no saved "
            f"model for {'it' if len(missing) == 1 else 'them'}: re-run the baselines stage (kedro run --pipeline "
            "baselines), or take them out of baselines.models")
    saved_models = {name: _load_baseline(name, baseline_models[name]) for name in configured}
    metrics, per_user = {}, {}
    for name, (saved, described) in saved_models.items():
        check_data_fingerprint(f"baseline {name}", described.get("data_fingerprint"), data, "evaluation")
        if "left_out" in described:  # not fitted (over the memory budget): reported, never compared
            metrics[name] = {"model": name, "left_out": described["left_out"]}
            continue
        model = load_baseline(saved)
        info = ModelInfo(model_class=name, config=model.params, selection_metric=described["selection_metric"],
                         valid_metrics=described["valid_metrics"], validated_in="fp32", trained_in="fp32",
                         data_fingerprint=data)

        def rank_full(users: np.ndarray, seen: sp.csr_matrix, relevant: sp.csr_matrix, model=model, name=name) -> np.ndarray:
            top_items, _ = top_k_unseen(model.score_block, users, seen, max(p.ks), p.chunk_users, p.chunk_items,
                                        p.log_every_seconds, label=f"{name} full ranking", ties_last=relevant)
            return top_items

        scored_by = {"precision": "fp32", "precision_check": None, "engine": "numpy/scipy", "params": model.params,
                     "floor_users": model.floor_users, "trials": described["trials"],
                     "tuning_seconds": described["tuning_seconds"], "tuning_stopped": described.get("tuning_stopped")}
        metrics[name], per_user[name] = _evaluate(info, name, model.score_pairs, rank_full, scored_by, p, train_matrix,
                                                  valid, test, test_negatives)
    return metrics, per_user


def _load_baseline(name: str, load: Callable[[], dict]) -> tuple[dict, dict]:
    """A saved baseline and its description, or one line naming it and the stage that writes it."""
    try:
        saved = load()
        return saved, saved_description(saved)
    except (DatasetError, ValueError) as exc:
        raise StaleInputError(f"evaluation: the saved baseline '{name}' cannot be used ({exc}); re-run the baselines "
                              "stage (kedro run --pipeline baselines)") from None


def _same_run(manifest: dict, train_matrix: sp.csr_matrix, valid: pd.DataFrame, valid_negatives: pd.DataFrame,
              test: pd.DataFrame, test_negatives: pd.DataFrame) -> str:
    """The split every evaluation reads must be the last completed ingestion run's; its fingerprint."""
    return check_same_run(manifest, "evaluation", train_matrix=train_matrix, valid=valid,
                          valid_negatives=valid_negatives, test=test, test_negatives=test_negatives)


def _evaluate(
    info: ModelInfo, name: str, score_pairs: ScorePairs, rank_full: Callable, scored_by: dict, p: EvaluationParams,
    train_matrix: sp.csr_matrix, valid: pd.DataFrame, test: pd.DataFrame, test_negatives: pd.DataFrame,
) -> tuple[dict, pd.DataFrame]:
    test = sample_test_users(test, p.max_users, p.seed)
    score_pairs, rank_full, floor_users = popularity_floor(score_pairs, rank_full, train_matrix, p)
    result: dict = {
        "model": info.model_class, "recipe": info.recipe, "best_epoch": info.epoch, "stopped": info.stopped,
        "selection_metric": info.selection_metric, "valid": info.valid_metrics,
        "valid_precision": info.validated_in, "trained_in": info.trained_in, **scored_by,
        "cold_test_users": int(np.isin(np.unique(test["user"].to_numpy()), floor_users).sum()),
    }
    per_user: list[pd.DataFrame] = []

    if "sampled" in p.protocols:
        users, items = candidate_matrix(test, test_negatives)
        if max(p.ks) > items.shape[1]:
            raise ParameterError("evaluation.ks", f"K={max(p.ks)} exceeds the {items.shape[1]} sampled candidates")
        started = time.perf_counter()
        ranked = rank_sampled(score_pairs, users, items, label=f"{name} on the test split")
        scored_users, rows = by_user(users, sampled_metrics_per_user(ranked.ranks, ranked.n_negatives, p.ks))
        _, random_ties = by_user(users, sampled_metrics_random_ties(ranked.ranks, ranked.ties, ranked.n_negatives,
                                                                    p.ks))
        per_user.append(pd.DataFrame({"protocol": "sampled", "user": scored_users, **rows}))
        result["sampled"] = {**mean_metrics(rows), "rows": len(users), "users": len(scored_users),
                             "tied_held_out": int(ranked.tied.sum()),
                             "random_ties": mean_metrics(random_ties),  # ties broken at random, beside the rule's
                             "seconds": round(time.perf_counter() - started, 2),
                             "candidates": _fingerprint(users, items)}

    if "full" in p.protocols:
        n_users, n_items = train_matrix.shape
        users = np.unique(test["user"].to_numpy())
        seen = (train_matrix + positives_matrix([valid], n_users, n_items)).tocsr()
        relevant = positives_matrix([test], n_users, n_items)
        started = time.perf_counter()
        top_items = rank_full(users, seen, relevant)
        seconds = time.perf_counter() - started
        hits = hits_against(top_items, users, relevant)
        rows = full_ranking_metrics_per_user(hits, np.diff(relevant.indptr)[users], p.ks)
        per_user.append(pd.DataFrame({"protocol": "full", "user": users, **rows}))
        pairs = len(users) * n_items
        result["full"] = {**mean_metrics(rows), "users": len(users), "seconds": round(seconds, 2),
                          "pairs_per_second": round(pairs / seconds), "candidates": _fingerprint(users, seen.indptr, seen.indices)}
    return result, pd.concat(per_user, ignore_index=True)


def popularity_floor(score_pairs: ScorePairs, rank_full: Callable, train_matrix: sp.csr_matrix,
                     p: EvaluationParams) -> tuple[ScorePairs, Callable, np.ndarray]:
    """Users with no training interaction scored by training popularity, whichever model is evaluated: MF and
    ConvNCF would otherwise rank them with untrained embeddings and the baselines with TopPop, so a comparison would
    measure the fallback, not the model. Returns the wrapped scorers and those users."""
    cold = np.diff(train_matrix.indptr) == 0
    if not cold.any():
        return score_pairs, rank_full, np.empty(0, dtype=np.int64)
    popularity = np.asarray(train_matrix.sum(axis=0), dtype=np.float32).ravel()

    def floored_pairs(users: np.ndarray, items: np.ndarray) -> np.ndarray:
        out = np.empty(len(users), dtype=np.float32)
        floor = cold[users]
        out[floor] = popularity[items[floor]]
        if (~floor).any():
            out[~floor] = score_pairs(users[~floor], items[~floor])
        return out

    def floored_full(users: np.ndarray, seen: sp.csr_matrix, relevant: sp.csr_matrix) -> np.ndarray:
        floor = cold[users]
        top = np.empty((len(users), max(p.ks)), dtype=np.int64)
        if (~floor).any():
            top[~floor] = rank_full(users[~floor], seen, relevant)
        if floor.any():
            top[floor], _ = top_k_unseen(lambda u, i: np.tile(popularity[i], (len(u), 1)), users[floor], seen,
                                         max(p.ks), p.chunk_users, p.chunk_items, p.log_every_seconds,
                                         label="popularity for users with no training interaction", ties_last=relevant)
        return top

    return floored_pairs, floored_full, np.flatnonzero(cold)


def _fingerprint(*arrays: np.ndarray) -> str:
    """What two models' results must share to be compared pair by pair: the users and their candidates."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array, dtype=np.int64).tobytes())
    return digest.hexdigest()[:16]


def _checked_precision(
    model: BPRRecommender, device: torch.device, p: EvaluationParams, valid: pd.DataFrame,
    valid_negatives: pd.DataFrame, name: str,
) -> tuple[str, dict | None]:
    """bf16 only where it ranks like fp32: validation NDCG@10 equal to 3 decimals, else fp32 with a warning."""
    if p.precision == "fp32":
        return "fp32", None
    users, items = candidate_matrix(valid, valid_negatives)
    ndcg = {precision: evaluate_sampled(pair_scorer(model, device, precision, p.batch_pairs), users, items, [10],
                                        label=f"{name} on the validation split")["ndcg@10"]
            for precision in ("fp32", p.precision)}
    same = ranks_alike({"ndcg@10": ndcg[p.precision]}, {"ndcg@10": ndcg["fp32"]})
    if not same:
        logger.warning("%s: validation NDCG@10 is %.4f in %s but %.4f in fp32; evaluating in fp32", name,
                       ndcg[p.precision], p.precision, ndcg["fp32"])
    return (p.precision if same else "fp32"), {"asked": p.precision, "valid_ndcg@10": ndcg}


def sample_test_users(test: pd.DataFrame, max_users: int | None, seed: int) -> pd.DataFrame:
    """All test users, or a seeded random ``max_users`` of them (quick looks at big datasets)."""
    users = np.unique(test["user"].to_numpy())
    if max_users is None or max_users >= len(users):
        return test
    chosen = np.random.default_rng(seed).choice(users, size=max_users, replace=False)
    return test[test["user"].isin(chosen)]


def metrics_table(
    mf_metrics: dict, convncf_metrics: dict, mf_per_user: pd.DataFrame, convncf_per_user: pd.DataFrame,
    p: EvaluationParams,
) -> pd.DataFrame:
    """Long table: protocol, metric, K, MF, ConvNCF, ConvNCF − MF with its paired bootstrap interval and verdict."""
    rows = []
    for protocol in ("sampled", "full"):
        if protocol not in mf_metrics or protocol not in convncf_metrics:
            continue
        mf_rows = mf_per_user[mf_per_user["protocol"] == protocol]
        convncf_rows = convncf_per_user[convncf_per_user["protocol"] == protocol]
        if not np.array_equal(mf_rows["user"].to_numpy(), convncf_rows["user"].to_numpy()):
            raise ValueError(f"{protocol}: the two models were evaluated on different users; re-run evaluation")
        for key, mf_value in mf_metrics[protocol].items():
            if "@" not in key and key != "auc":
                continue
            metric, _, k = key.partition("@")
            compared = paired_difference(convncf_rows[key].to_numpy(), mf_rows[key].to_numpy(), p.confidence,
                                         p.bootstrap_resamples, p.seed)
            rows.append({"protocol": protocol, "metric": metric, "k": int(k) if k else None, "MF": mf_value,
                         "ConvNCF": convncf_metrics[protocol][key], "ConvNCF - MF": compared["difference"],
                         "ci_low": compared["ci_low"], "ci_high": compared["ci_high"], "verdict": compared["verdict"]})
    return pd.DataFrame(rows).astype({"k": "Int64"})
