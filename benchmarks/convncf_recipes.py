"""Each ConvNCF recipe against its MF pretraining on MovieLens 100K: validation curves, same budget.

Run: python -m benchmarks.convncf_recipes [epochs]   (default 8 epochs per recipe; --plot redraws the figure)
Ingests ml-100k from ../shared/datasets in a work folder (benchmarks/.work, kept between runs), pretrains
MF with the shipped parameters once, then trains ConvNCF from that MF with each recipe of
conf/base/parameters_convncf.yml for the same number of epochs (no early stopping), fp32, and records
every epoch's validation metrics. A recipe already in the results file with the same parameters,
epochs and MF is not trained again, so an interrupted run continues where it stopped.
Writes benchmarks/results/convncf_recipes.json and convncf_recipes.png (curves against MF's best).
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import matplotlib
import yaml

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from benchmarks._gemm import commit
from convncf_kedro.models import saved_info
from tests.kedro_project import PROJECT_ROOT, KedroProject

RESULTS = Path(__file__).resolve().parent / "results"
WORK = Path(__file__).resolve().parent / ".work"


def run(epochs: int) -> dict:
    path = RESULTS / "convncf_recipes.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    project = KedroProject(WORK / "ml-100k")  # keeps data/ and checkpoints between runs
    project.use_dataset("ml-100k")
    for pipeline in ("ingestion", "matrix", "pretrain"):  # pretrain resumes its finished checkpoint: no retraining
        project.run(pipeline)
    mf = saved_info(project.load("mf_model"))
    out = {
        "script": "benchmarks/convncf_recipes.py", "dataset": "ml-100k, leave-one-out by time, 99 sampled negatives",
        "epochs": epochs, "precision": "fp32",
        "mf": {"epoch": mf.epoch, "valid": mf.valid_metrics, "curve_ndcg@10": project.load("mf_history")["ndcg@10"].round(5).tolist()},
        "recipes": {},
    }
    recipes = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_convncf.yml").read_text())["convncf"]["recipes"]
    for name, recipe in recipes.items():
        done = previous.get("recipes", {}).get(name)
        if done and done["params"] == recipe and previous.get("epochs") == epochs and previous.get("mf") == out["mf"]:
            out["recipes"][name] = done
            continue
        started = time.perf_counter()
        project.run("convncf", params={"convncf": {"recipe": name, "training": {"epochs": epochs, "patience": epochs}}})
        history, best = project.load("convncf_history"), saved_info(project.load("convncf_model"))
        out["recipes"][name] = {
            "params": recipe,
            "best_epoch": best.epoch,
            "best_valid": best.valid_metrics,
            "seconds": round(time.perf_counter() - started, 1),
            "curve_ndcg@10": history["ndcg@10"].round(5).tolist(),
            "curve_hr@10": history["hr@10"].round(5).tolist(),
            "curve_loss": history["loss"].round(5).tolist(),
        }
        out["date"], out["commit"] = datetime.now(UTC).strftime("%Y-%m-%d"), commit()
        RESULTS.mkdir(exist_ok=True)
        path.write_text(json.dumps(out, indent=2) + "\n")
        print(f"{name}: best valid ndcg@10 {best.valid_metrics['ndcg@10']:.4f} at epoch {best.epoch}")  # noqa: T201
    plot(out)
    return out


def plot(results: dict) -> None:
    """Left: every epoch of every recipe; right: the same, zoomed around MF's best."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    mf_best = results["mf"]["valid"]["ndcg@10"]
    for ax in axes:
        for name, recipe in results["recipes"].items():
            curve = recipe["curve_ndcg@10"]
            ax.plot(range(len(curve)), curve, marker="o", label=f"ConvNCF, {name}")
        ax.axhline(mf_best, color="black", linestyle="--", label=f"MF-BPR, best epoch ({results['mf']['epoch']})")
        ax.set(xlabel="ConvNCF epoch (0 = the start, from MF's best epoch)", ylabel="validation NDCG@10 (99 negatives)")
        ax.legend(fontsize=8)
    axes[0].set_title(f"ConvNCF recipes on MovieLens 100K, fp32, {results['epochs']} epochs each")
    axes[1].set_title("zoomed around MF's best")
    axes[1].set_ylim(mf_best - 0.04, mf_best + 0.01)
    fig.tight_layout()
    fig.savefig(RESULTS / "convncf_recipes.png", dpi=110)


if __name__ == "__main__":
    if sys.argv[1:] == ["--plot"]:  # redraw from the saved results
        plot(json.loads((RESULTS / "convncf_recipes.json").read_text()))
        sys.exit()
    result = run(int(sys.argv[1]) if len(sys.argv) > 1 else 8)
    print(f"{result['mf']['valid']['ndcg@10']:.4f}  MF-BPR")  # noqa: T201
