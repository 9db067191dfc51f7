"""A small sweep of ConvNCF training settings on MovieLens 100K: does ConvNCF beat its own MF?

Run: python benchmarks/convncf_sweep.py [config ...]   (default: every config below)
Ingests ml-100k from ../shared/datasets, pretrains MF with the default parameters once, then trains
ConvNCF from that MF under each setting. Writes benchmarks/results/convncf_sweep.json (best
validation NDCG@10 per setting, MF's, curves) and convncf_sweep.png (curves against MF's best).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from kedro_project import KedroProject  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
EPOCHS = 8

# Every setting starts from BASE (pinned here, so the sweep does not drift when conf/base changes)
BASE: dict = {
    "channels": 32, "kernel_sizes": None, "dropout": 0.0, "tower_init": "mf_identity", "reg_anchor": "zero",
    "reg_embedding": 0.0001, "reg_conv": 0.0001, "reg_out": 0.0001,
    "training": {"batch_size": 256, "optimizer": "adagrad", "warmup_steps": 0, "precision": "bf16", "seed": 2018},
}

# name → overrides of BASE
CONFIGS: dict[str, dict] = {
    "paper: random tower, Adagrad 0.05, L2 0.01/1/10": {
        "tower_init": "random", "reg_embedding": 0.01, "reg_conv": 1.0, "reg_out": 10.0,
        "training": {"lr_embedding": 0.05, "lr_tower": 0.05},
    },
    "identity, Adagrad 0.01": {"training": {"lr_embedding": 0.01, "lr_tower": 0.01}},
    "identity, Adagrad 0.01, warm-up 400 steps": {
        "training": {"lr_embedding": 0.01, "lr_tower": 0.01, "warmup_steps": 400},
    },
    "identity, Adagrad emb 0.001 / tower 0.01": {"training": {"lr_embedding": 0.001, "lr_tower": 0.01}},
    "identity, Adagrad emb 0.0001 / tower 0.01": {"training": {"lr_embedding": 0.0001, "lr_tower": 0.01}},
    "identity, Adam emb 1e-4 / tower 1e-3": {
        "training": {"optimizer": "adam", "lr_embedding": 0.0001, "lr_tower": 0.001},
    },
    "identity, Adagrad emb 0.001 / tower 0.001": {"training": {"lr_embedding": 0.001, "lr_tower": 0.001}},
    "identity, Adagrad emb 0.001 / tower 0.0001": {"training": {"lr_embedding": 0.001, "lr_tower": 0.0001}},
    "identity, Adagrad 0.01, fp32": {"training": {"lr_embedding": 0.01, "lr_tower": 0.01, "precision": "fp32"}},
    "identity, L2-SP 1 / 1 towards the initial tower, Adagrad emb 0.001 / tower 0.01, warm-up 400": {
        "reg_anchor": "init", "reg_conv": 1.0, "reg_out": 1.0,
        "training": {"lr_embedding": 0.001, "lr_tower": 0.01, "warmup_steps": 400},
    },
    "identity, L2-SP 10 / 10 towards the initial tower, Adagrad 0.01, warm-up 400": {
        "reg_anchor": "init", "reg_conv": 10.0, "reg_out": 10.0,
        "training": {"lr_embedding": 0.01, "lr_tower": 0.01, "warmup_steps": 400},
    },
    "identity, Adagrad emb 0.001 / tower 0.0001, warm-up 400 steps, 20 epochs": {
        "training": {"lr_embedding": 0.001, "lr_tower": 0.0001, "warmup_steps": 400, "epochs": 20, "patience": 20},
    },
}


def run(names: list[str]) -> dict:
    out: dict = {"date": datetime.now(UTC).strftime("%Y-%m-%d"), "epochs": EPOCHS, "configs": {}}
    previous = RESULTS / "convncf_sweep.json"
    if previous.exists():  # keep earlier configs' results when re-running a few
        out["configs"] = json.loads(previous.read_text()).get("configs", {})
    with tempfile.TemporaryDirectory() as tmp:
        project = KedroProject(Path(tmp) / "project")
        project.use_dataset("ml-100k")
        project.run("ingestion")
        project.run("matrix")
        project.run("pretrain")
        mf = project.load("mf_model")
        out["mf"] = {"epoch": mf["epoch"], "valid": mf["valid_metrics"]}
        for name in names:
            overrides = CONFIGS[name]
            training = {**BASE["training"], "epochs": EPOCHS, "patience": EPOCHS, "resume": False,
                        **overrides.get("training", {})}
            params = {"convncf": {**BASE, **overrides, "training": training}}
            started = time.perf_counter()
            project.run("convncf", params=params)
            history = project.load("convncf_history")
            best = project.load("convncf_model")
            out["configs"][name] = {
                "params": params["convncf"],
                "best_epoch": best["epoch"],
                "best_valid_ndcg@10": best["valid_metrics"]["ndcg@10"],
                "best_valid_hr@10": best["valid_metrics"]["hr@10"],
                "beats_mf": best["valid_metrics"]["ndcg@10"] >= mf["valid_metrics"]["ndcg@10"],
                "seconds": round(time.perf_counter() - started, 1),
                "curve_ndcg@10": history["ndcg@10"].round(5).tolist(),
                "curve_loss": history["loss"].round(5).tolist(),
            }
            RESULTS.mkdir(exist_ok=True)
            previous.write_text(json.dumps(out, indent=2) + "\n")
    plot(out)
    return out


def plot(results: dict) -> None:
    """Left: every setting; right: the MF-initialised ones, zoomed around MF's best."""
    fig, (full, zoom) = plt.subplots(1, 2, figsize=(13, 5))
    mf_best = results["mf"]["valid"]["ndcg@10"]
    for name, config in results["configs"].items():
        curve = config["curve_ndcg@10"]
        full.plot(range(len(curve)), curve, marker="o", label=name)
        if not name.startswith("paper"):
            zoom.plot(range(len(curve)), curve, marker="o", label=name)
    for ax in (full, zoom):
        ax.axhline(mf_best, color="black", linestyle="--", label="MF-BPR (best epoch)")
        ax.set(xlabel="ConvNCF epoch (0 = initialisation)", ylabel="validation NDCG@10 (99 sampled negatives)")
    full.set_title("ConvNCF on MovieLens 100K, every setting")
    zoom.set_title("MF-identity tower, around MF's best")
    zoom.set_ylim(mf_best - 0.015, mf_best + 0.01)
    zoom.legend(fontsize=7)
    full.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / "convncf_sweep.png", dpi=110)


if __name__ == "__main__":
    if sys.argv[1:] == ["--plot"]:  # redraw from the saved results
        plot(json.loads((RESULTS / "convncf_sweep.json").read_text()))
        sys.exit()
    chosen = sys.argv[1:] or list(CONFIGS)
    result = run(chosen)
    for name, config in result["configs"].items():
        print(f"{config['best_valid_ndcg@10']:.4f} @ {config['best_epoch']}  {name}")  # noqa: T201
    print(f"{result['mf']['valid']['ndcg@10']:.4f}  MF-BPR")  # noqa: T201
