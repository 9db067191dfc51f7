"""Study wiring: one namespace per seed (`study.seed_<n>`) holding MF, MF trained longer and each ConvNCF
recipe, then one report over them all. Its shape (seeds × recipes) comes from the `study` parameters."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence

from kedro.pipeline import Node, Pipeline

from convncf_kedro.comparison import MF, MF_LONGER, variants

from .nodes import (
    compare_variants,
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


def partial(func: Callable, *args: object, **kwargs: object) -> Callable:
    """``functools.partial`` that still looks like a function to Kedro (name, signature and type hints)."""
    bound = functools.partial(func, *args, **kwargs)

    if inspect.isgeneratorfunction(func):  # Kedro saves a generator node's outputs after each yield

        @functools.wraps(func)
        def node_function(*inputs: object) -> object:
            yield from bound(*inputs)
    else:

        @functools.wraps(func)
        def node_function(*inputs: object) -> object:
            return bound(*inputs)

    node_function.__signature__ = inspect.signature(bound)
    return node_function


def _seed_pipeline(seed: int, recipes: Sequence[str]) -> Pipeline:
    trained = [
        Node(partial(train_mf_member, seed=seed), [*SPLIT, f"{MF}_resume_checkpoint", "ingestion_manifest", "params:pretrain"],
             [f"{MF}_checkpoint", f"{MF}_model", f"{MF}_history"], name="train_mf_bpr"),
        Node(partial(train_mf_longer, seed=seed),
             [*SPLIT, f"{MF}_model", f"{MF_LONGER}_resume_checkpoint", "ingestion_manifest", "params:pretrain",
              "params:study"],
             [f"{MF_LONGER}_checkpoint", f"{MF_LONGER}_model", f"{MF_LONGER}_history"], name="train_mf_longer"),
        *[Node(partial(train_convncf_member, seed=seed, recipe=recipe),
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
    return Pipeline(trained + evaluated, namespace=f"study.seed_{seed}", inputs=SHARED,
                    parameters={"params:pretrain", "params:convncf", "params:evaluation", "params:study"})


def create_pipeline(seeds: Sequence[int] = (), recipes: Sequence[str] = (), **kwargs) -> Pipeline:
    members = [(seed, variant) for seed in seeds for variant in variants(recipes)]
    results = [name for seed, variant in members
               for name in (f"study.seed_{seed}.test_metrics_{variant}", f"study.seed_{seed}.per_user_metrics_{variant}")]
    histories = [f"study.seed_{seed}.{variant}_history" for seed, variant in members]
    report = [
        Node(evaluate_study_baselines, ["baseline_models", *SPLIT, "test", "test_negatives", "ingestion_manifest",
                                        "params:evaluation", "params:study"],
             ["study_baseline_test_metrics", "study_baseline_per_user_metrics"], name="evaluate_baselines",
             namespace="study"),
        Node(partial(compare_variants, members),
             ["params:study", "params:evaluation", "params:baselines", "study_baseline_test_metrics",
              "study_baseline_per_user_metrics", *results],
             ["study_table", "study_members", "study_recommendation"], name="compare_variants", namespace="study"),
        Node(write_study_report, ["study_table", "study_members", "study_recommendation", "params:export.dataset_name",
                                  "dataset_statistics", "params:study"],
             ["study_report", "study_summary"], name="write_study_report", namespace="study"),
        Node(plot_study, "study_table", "study_plot", name="plot_study", namespace="study"),
        Node(partial(study_tracked_metrics, members), ["study_table", *histories], "study_tracked_metrics",
             name="track_study", namespace="study"),
    ]
    members_pipeline = sum((_seed_pipeline(seed, recipes) for seed in seeds), Pipeline([]))
    return Pipeline(members_pipeline.nodes + report, tags=["study"]) if members else Pipeline([])
