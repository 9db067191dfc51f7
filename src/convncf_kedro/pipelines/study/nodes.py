"""Study nodes: MF, MF trained longer and each ConvNCF recipe on several seeds, paired over the same test users.

Every member is trained by the same library function as `train`'s stage, with its seed (and recipe) put into the
parameters; the statistics live in :mod:`convncf_kedro.evaluation.comparison`, the report in :mod:`convncf_kedro.evaluation.reporting`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import scipy.sparse as sp

from convncf_kedro.config.params import (
    BaselinesParams,
    ConvNCFParams,
    EvaluationParams,
    PretrainParams,
    StudyParams,
    parse_params,
)
from convncf_kedro.config.study_members import Member
from convncf_kedro.evaluation import reporting
from convncf_kedro.evaluation.comparison import MF_LONGER, compare_variants
from convncf_kedro.evaluation.protocols import evaluate_baselines, evaluate_model
from convncf_kedro.evaluation.reporting import plot_study
from convncf_kedro.interactions.lineage import check_same_run, check_trained_on
from convncf_kedro.models import load_model, saved_info
from convncf_kedro.tracking import MetricHistory, history_metrics, metric_key, value_metrics
from convncf_kedro.training.stage import (
    convncf_training,
    mf_training,
    seed_everything,
    train_stage,
)

__all__ = ["compare_members", "evaluate_member", "evaluate_study_baselines", "plot_study",
           "study_tracked_metrics", "train_convncf_member", "train_mf_longer", "train_mf_member", "write_study_report"]


def _member_budget(s: StudyParams, seed: int) -> dict:
    """What every variant beyond MF shares: its seed, and the study's epoch cap and early-stopping schedule."""
    return {"seed": seed, "epochs": s.extra_epochs, "validate_every": s.validate_every, "patience": s.patience,
            "min_epochs": s.min_epochs}


def train_mf_member(
    train_matrix: sp.csr_matrix, valid: pd.DataFrame, valid_negatives: pd.DataFrame, resume_checkpoint: dict | None,
    ingestion_manifest: dict, pretrain: dict, *, seed: int,
) -> Iterator[tuple[dict, dict, pd.DataFrame]]:
    """MF-BPR pretraining as `train` runs it, with this member's seed."""
    p = parse_params(PretrainParams, pretrain, "pretrain")
    p = p.model_copy(update={"training": p.training.model_copy(update={"seed": seed})})
    yield from mf_training(train_matrix, valid, valid_negatives, resume_checkpoint, ingestion_manifest, p)


def train_mf_longer(
    train_matrix: sp.csr_matrix, valid: pd.DataFrame, valid_negatives: pd.DataFrame, mf_model: dict,
    resume_checkpoint: dict | None, ingestion_manifest: dict, pretrain: dict, study: dict, *, seed: int,
) -> Iterator[tuple[dict, dict, pd.DataFrame]]:
    """The control: MF continued from its best epoch for the epochs ConvNCF gets, embeddings only."""
    p = parse_params(PretrainParams, pretrain, "pretrain")
    s = parse_params(StudyParams, study, "study")
    data = check_same_run(ingestion_manifest, "study", train_matrix=train_matrix, valid=valid,
                          valid_negatives=valid_negatives)
    check_trained_on(saved_info(mf_model), data, "study")
    model = load_model(mf_model)
    seed_everything(seed)
    training = p.training.model_copy(update=_member_budget(s, seed))
    yield from train_stage(f"MF trained longer (seed {seed})", model, train_matrix, valid, valid_negatives,
                           resume_checkpoint, s.mf_longer.batch_size, s.mf_longer.phases, training, data,
                           recipe=MF_LONGER)


def train_convncf_member(
    train_matrix: sp.csr_matrix, valid: pd.DataFrame, valid_negatives: pd.DataFrame, mf_model: dict,
    resume_checkpoint: dict | None, ingestion_manifest: dict, convncf: dict, study: dict, *, seed: int, recipe: str,
) -> Iterator[tuple[dict, dict, pd.DataFrame]]:
    """ConvNCF as `train` trains it, with this member's recipe and seed, for the study's extra epochs."""
    s = parse_params(StudyParams, study, "study")
    p = parse_params(ConvNCFParams, {**convncf, "recipe": recipe}, "convncf")
    p = p.model_copy(update={"training": p.training.model_copy(update=_member_budget(s, seed))})
    yield from convncf_training(train_matrix, valid, valid_negatives, mf_model, resume_checkpoint, ingestion_manifest, p)


def evaluate_member(
    saved_model: dict, train_matrix: sp.csr_matrix, valid: pd.DataFrame, valid_negatives: pd.DataFrame,
    test: pd.DataFrame, test_negatives: pd.DataFrame, ingestion_manifest: dict, evaluation: dict, study: dict,
) -> tuple[dict, pd.DataFrame]:
    """`evaluation`'s test metrics by the study's protocols: every member on the same users and candidates."""
    return evaluate_model(saved_model, train_matrix, valid, valid_negatives, test, test_negatives, ingestion_manifest,
                          _study_protocols(evaluation, study))


def evaluate_study_baselines(
    baseline_models: dict, train_matrix: sp.csr_matrix, valid: pd.DataFrame, valid_negatives: pd.DataFrame,
    test: pd.DataFrame, test_negatives: pd.DataFrame, ingestion_manifest: dict, evaluation: dict, study: dict,
    baselines: dict,
) -> tuple[dict[str, dict], dict[str, pd.DataFrame]]:
    """The tuned baselines by the study's protocols, on the members' users and candidates (one fit: they are
    deterministic given the training matrix; iALS uses baselines.seed)."""
    b = parse_params(BaselinesParams, baselines, "baselines")
    return evaluate_baselines(baseline_models, train_matrix, valid, valid_negatives, test, test_negatives,
                              ingestion_manifest, _study_protocols(evaluation, study), b.models)


def _study_protocols(evaluation: dict, study: dict) -> EvaluationParams:
    """`evaluation`'s settings with the study's protocols."""
    e = parse_params(EvaluationParams, evaluation, "evaluation")
    return e.model_copy(update={"protocols": parse_params(StudyParams, study, "study").protocols})


def compare_members(study: dict, evaluation: dict, baselines: dict, baseline_metrics: dict, baseline_per_user: dict,
                    *results: dict | pd.DataFrame, members: list[Member]) -> tuple[pd.DataFrame, list[dict], str]:
    """The study's table, members and recommendation from every member's test metrics, then every member's per-user
    metrics (``results``, in the order of ``members``)."""
    metrics, per_user = results[:len(members)], results[len(members):]
    return compare_variants(dict(zip(members, zip(metrics, per_user, strict=True), strict=True)),
                            parse_params(StudyParams, study, "study"),
                            parse_params(EvaluationParams, evaluation, "evaluation"),
                            parse_params(BaselinesParams, baselines, "baselines"), baseline_metrics, baseline_per_user)


def write_study_report(table: pd.DataFrame, members: list[dict], recommended: str, dataset_name: str,
                       dataset_statistics: dict, study: dict) -> tuple[str, dict]:
    """The study's answer in words and in numbers."""
    return reporting.write_study_report(table, members, recommended, dataset_name, dataset_statistics,
                                        parse_params(StudyParams, study, "study"))


def study_tracked_metrics(table: pd.DataFrame, *histories: pd.DataFrame, members: list[Member]) -> MetricHistory:
    """MLflow metrics of the study run: each member's training curves (``histories``, in the order of ``members``),
    and the table's means and differences."""
    out: MetricHistory = {}
    for (seed, variant), history in zip(members, histories, strict=True):
        out |= history_metrics(f"{variant}/seed_{seed}", history)
    for row in table.to_dict(orient="records"):
        numbers = {key: value for key, value in row.items() if key not in ("protocol", "metric", "variant")}
        out |= value_metrics(metric_key("study", row["variant"], row["protocol"], row["metric"]), numbers)
    return out
