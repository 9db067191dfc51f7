"""What one validation check costs by each protocol: the held-out item against its sampled negatives (what epoch
selection and baseline tuning use) against full ranking of every unseen item, for MF-BPR and ConvNCF (d=64, C=32).

Run: python -m benchmarks.validation_cost
The cost of a check does not depend on the weights, so the models are untrained; the scorers, chunk sizes and batch
sizes are the project's own (`pair_scorer` with convncf.training.eval_batch_pairs for the sampled check, as the
training loop runs it; `block_scorer` + `top_k_unseen` with evaluation's chunk sizes for full ranking, as evaluation
runs MF). ml-100k: all 943 users, 99 negatives. Gowalla (LightGCN split, 40,981 items): the 1,000 validation users
of the authors'-budget configuration with 999 negatives; ConvNCF's full ranking there is timed on a seeded 20 of
them and scaled to 1,000 (stated in the results). Writes benchmarks/results/validation_cost.json.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
import yaml

from benchmarks._gemm import commit, machine
from convncf_kedro.models import MF, ConvNCF, ConvNCFConfig, MFConfig
from convncf_kedro.models.scoring import block_scorer, pair_scorer
from convncf_kedro.ranking.full import top_k_unseen
from convncf_kedro.ranking.sampled import evaluate_sampled
from convncf_kedro.training import runtime

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
RESULTS = Path(__file__).resolve().parent / "results"
CONF = {name: yaml.safe_load((ROOT / f"conf/base/parameters_{name}.yml").read_text())[name]
        for name in ("evaluation", "convncf", "pretrain")}


def ml_100k() -> sp.csr_matrix:
    log = np.loadtxt(SHARED / "ml-100k/u.data", dtype=np.int64, usecols=(0, 1))
    return sp.csr_matrix((np.ones(len(log), np.float32), (log[:, 0] - 1, log[:, 1] - 1)), shape=(943, 1682))


def gowalla() -> sp.csr_matrix:
    rows, cols = [], []
    for line in (SHARED / "gowalla/train.txt").read_text().splitlines():
        user, *items = map(int, line.split())
        rows += [user] * len(items)
        cols += items
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(max(rows) + 1, max(cols) + 1))


def seconds(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def costs(name: str, seen: sp.csr_matrix, users: np.ndarray, negatives: int, full_users: int) -> list[dict]:
    n_users, n_items = seen.shape
    rng = np.random.default_rng(0)
    candidates = rng.integers(0, n_items, size=(len(users), 1 + negatives))  # cost only: collisions do not matter
    timed_full = np.sort(rng.choice(users, size=min(full_users, len(users)), replace=False))
    e, device = CONF["evaluation"], torch.device("cpu")
    models = {"MF-BPR": (MF(MFConfig(n_users, n_items, 64, reg_embedding=0.0)), CONF["pretrain"]["training"]),
              "ConvNCF": (ConvNCF(ConvNCFConfig(n_users, n_items, 64, 32, reg_embedding=0.0, reg_conv=0.0,
                                                reg_out=0.0)), CONF["convncf"]["training"])}
    rows = []
    for model_name, (model, training) in models.items():
        sampled = seconds(lambda: evaluate_sampled(pair_scorer(model, device, "fp32", training["eval_batch_pairs"]),
                                                   users, candidates, [10], label=f"{model_name} sampled"))
        full = seconds(lambda: top_k_unseen(block_scorer(model, device, "fp32", e["batch_pairs"]), timed_full, seen,
                                            10, e["chunk_users"], e["chunk_items"], label=f"{model_name} full"))
        full_all = full * len(users) / len(timed_full)
        rows.append({"dataset": name, "model": model_name, "users": len(users), "items": n_items,
                     "sampled_candidates": 1 + negatives, "sampled_check_seconds": round(sampled, 2),
                     "full_users_timed": len(timed_full), "full_check_seconds": round(full_all, 1),
                     "full_over_sampled": round(full_all / sampled, 1)})
        print(rows[-1])  # noqa: T201
    return rows


def main() -> dict:
    runtime.configure(None, torch.device("cpu"))
    small = ml_100k()
    large = gowalla()
    large_users = np.sort(np.random.default_rng(2018).choice(large.shape[0], size=1000, replace=False))
    rows = costs("ml-100k", small, np.arange(small.shape[0]), 99, small.shape[0])
    rows += costs("gowalla (1,000 validation users)", large, large_users, 999, 20)
    result = {"benchmark": "one validation check: sampled protocol vs full ranking, untrained MF-BPR and ConvNCF",
              "threads": torch.get_num_threads(), "rows": rows, "machine": machine(), "commit": commit(),
              "date": datetime.now(UTC).strftime("%Y-%m-%d")}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "validation_cost.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))  # noqa: T201
