"""Evaluation pipeline wiring."""

from kedro.pipeline import Node, Pipeline

from .nodes import (
    compare_models,
    evaluate_baselines,
    evaluate_exported,
    evaluate_model,
    metrics_table,
    plot_metrics_at_k,
    plot_models,
    plot_training_curves,
    tracked_metrics,
    write_report,
)


def create_pipeline(**kwargs) -> Pipeline:
    split = ["train_matrix", "valid", "valid_negatives", "test", "test_negatives", "ingestion_manifest",
             "params:evaluation"]
    evaluate = [
        Node(evaluate_model, ["mf_model", *split], ["test_metrics_mf", "per_user_metrics_mf"], name="evaluate_mf"),
        # ConvNCF is ranked with the exported graph, as `score` ranks: evaluation runs after export
        Node(evaluate_exported, ["convncf_onnx", "convncf_model", *split[:-1], "convncf_retrieval_onnx",
                                 "retrieval_validation", "params:evaluation"],
             ["test_metrics_convncf", "per_user_metrics_convncf"], name="evaluate_convncf"),
        Node(evaluate_baselines, ["baseline_models", *split, "params:baselines"], ["baseline_test_metrics", "baseline_per_user_metrics"],
             name="evaluate_baselines"),
    ]
    report = [
        Node(
            metrics_table,
            ["test_metrics_mf", "test_metrics_convncf", "per_user_metrics_mf", "per_user_metrics_convncf",
             "params:evaluation"],
            "metrics_table",
            name="metrics_table",
        ),
        Node(
            compare_models,
            ["test_metrics_mf", "test_metrics_convncf", "per_user_metrics_mf", "per_user_metrics_convncf",
             "baseline_test_metrics", "baseline_per_user_metrics", "params:evaluation", "params:baselines"],
            ["model_table", "recommendation"],
            name="compare_every_model",
        ),
        Node(
            write_report,
            ["metrics_table", "test_metrics_mf", "test_metrics_convncf", "dataset_statistics", "model_table",
             "recommendation"],
            "evaluation_report",
            name="write_report",
        ),
        Node(
            plot_training_curves,
            ["mf_history", "convncf_history", "test_metrics_mf", "test_metrics_convncf"],
            "training_curves",
            name="plot_training_curves",
        ),
        Node(plot_metrics_at_k, "metrics_table", "metrics_at_k_plot", name="plot_metrics_at_k"),
        Node(plot_models, "model_table", "model_comparison_plot", name="plot_every_model"),
        Node(
            tracked_metrics,
            ["test_metrics_mf", "test_metrics_convncf"],
            "tracked_metrics",
            name="track_metrics",
        ),
    ]
    return Pipeline(evaluate + report, tags=["evaluation"])
