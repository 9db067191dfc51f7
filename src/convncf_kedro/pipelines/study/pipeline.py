"""Study wiring: one namespace per seed (`study.seed_<n>`) holding MF, MF trained longer and each ConvNCF
recipe, then one report over them all. Its members (seeds × recipes) come from conf/<env>/study.yml."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from kedro.pipeline import Node, Pipeline

from convncf_kedro.config.study_members import SEED_NAMESPACE, Member, StudyMembers
from convncf_kedro.evaluation.comparison import MF, MF_LONGER, variants

from .nodes import (
    compare_members,
    evaluate_member,
    evaluate_study_baselines,
    plot_study,
    study_tracked_metrics,
    train_convncf_member,
    train_mf_longer,
    train_mf_member,
    write_study_report,
)

SHARED = {"train_matrix", "valid", "valid_negatives", "test", "test_negatives", "ingestion_manifest"}
SPLIT = ["train_matrix", "valid", "valid_negatives"]


def _bound(func: Callable, **bound: object) -> Callable:
    """``func`` with this member's seed (and recipe), or the members it reports on, bound; its name kept for Kedro's
    logs."""
    return functools.update_wrapper(functools.partial(func, **bound), func)


def _seed_pipeline(seed: int, recipes: Sequence[str]) -> Pipeline:
    trained = [
        Node(_bound(train_mf_member, seed=seed), [*SPLIT, f"{MF}_resume_checkpoint", "ingestion_manifest", "params:pretrain"],
             [f"{MF}_checkpoint", f"{MF}_model", f"{MF}_history"], name="train_mf_bpr"),
        Node(_bound(train_mf_longer, seed=seed),
             [*SPLIT, f"{MF}_model", f"{MF_LONGER}_resume_checkpoint", "ingestion_manifest", "params:pretrain",
              "params:study"],
             [f"{MF_LONGER}_checkpoint", f"{MF_LONGER}_model", f"{MF_LONGER}_history"], name="train_mf_longer"),
        *[Node(_bound(train_convncf_member, seed=seed, recipe=recipe),
               [*SPLIT, f"{MF}_model", f"{recipe}_resume_checkpoint", "ingestion_manifest", "params:convncf",
                "params:study"],
               [f"{recipe}_checkpoint", f"{recipe}_model", f"{recipe}_history"], name=f"train_convncf_{recipe}")
          for recipe in recipes],
    ]
    evaluated = [
        Node(evaluate_member, [f"{variant}_model", *SPLIT, "test", "test_negatives", "ingestion_manifest",
                               "params:evaluation", "params:study"],
             [f"test_metrics_{variant}", f"per_user_metrics_{variant}"], name=f"evaluate_{variant}")
        for variant in variants(recipes)
    ]
    return Pipeline(trained + evaluated, namespace=f"{SEED_NAMESPACE}{seed}", inputs=SHARED,
                    parameters={"params:pretrain", "params:convncf", "params:evaluation", "params:study"})


def create_pipeline(members: StudyMembers | None = None, **kwargs) -> Pipeline:
    if members is None:
        return Pipeline([])
    members_run = [Member(seed, variant) for seed in members.seeds for variant in variants(members.recipes)]
    results = [member.dataset(kind) for kind in ("test_metrics", "per_user_metrics") for member in members_run]
    report = [
        Node(evaluate_study_baselines, ["baseline_models", *SPLIT, "test", "test_negatives", "ingestion_manifest",
                                        "params:evaluation", "params:study", "params:baselines"],
             ["study_baseline_test_metrics", "study_baseline_per_user_metrics"], name="evaluate_baselines",
             namespace="study"),
        Node(_bound(compare_members, members=members_run),
             ["params:study", "params:evaluation", "params:baselines", "study_baseline_test_metrics",
              "study_baseline_per_user_metrics", *results],
             ["study_table", "study_members", "study_recommendation"], name="compare_variants", namespace="study"),
        Node(write_study_report, ["study_table", "study_members", "study_recommendation", "params:export.dataset_name",
                                  "dataset_statistics", "params:study"],
             ["study_report", "study_summary"], name="write_study_report", namespace="study"),
        Node(plot_study, "study_table", "study_plot", name="plot_study", namespace="study"),
        Node(_bound(study_tracked_metrics, members=members_run),
             ["study_table", *[member.dataset("history") for member in members_run]], "study_tracked_metrics",
             name="track_study", namespace="study"),
    ]
    members_pipeline = sum((_seed_pipeline(seed, members.recipes) for seed in members.seeds), Pipeline([]))
    return Pipeline(members_pipeline.nodes + report, tags=["study"])
