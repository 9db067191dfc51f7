"""Training beside other work: MF-BPR and ConvNCF triples/s alone and beside one CPU-bound process, with torch's
default threads (one per core) and with the project's choice (one per core other work leaves free,
``training.threads: null``).

Run: python -m benchmarks.busy_machine     (nothing else running: the benchmark starts its own busy process)
Each figure times the project's ``train_step`` (the step the training loop runs) in a fresh process per condition (so
one thread pool never carries into the next), for ``SECONDS`` after a warm-up; the busy process is a pure-Python loop
started before, and stopped after, each measurement. Workloads: MovieLens 100K's triples, and for MF also the
training matrix of benchmarks/scale.py's 20 M-row log (138,000 users × 27,000 items: embedding tables far larger
than the caches) where that run has left it. Writes benchmarks/results/busy_machine.json with the machine and commit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks._gemm import commit, machine

RESULTS = Path(__file__).resolve().parent / "results"
SECONDS = 8.0
MODELS = {"mf": 1024, "convncf": 256}  # batch sizes as shipped (conf/base/parameters_{pretrain,convncf}.yml)
LARGE_LOG = Path(__file__).resolve().parent / ".work" / "scale-20000000" / "data" / "05_model_input" / "train_matrix.npz"

MEASURE = """
import json, sys
import numpy as np, pandas as pd, scipy.sparse as sp, torch
from benchmarks.training_throughput import SHARED, shipped_chunk_triples
from convncf_kedro.interactions.prepare import positives_matrix
from convncf_kedro.models import MF, ConvNCF, ConvNCFConfig, MFConfig, Phase
from convncf_kedro.training import runtime
from benchmarks._steps import training_step, triples_per_second, warm_up
from convncf_kedro.training.sampler import sample_triples

model_name, batch_size, threads, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
workload = sys.argv[5]
runtime.configure(None if threads == "auto" else int(threads), torch.device("cpu"))
if workload == "ml-100k":
    raw = pd.read_csv(SHARED / "ml-100k/u.data", sep="\\t", names=["user", "item", "rating", "ts"])
    matrix = positives_matrix([pd.DataFrame({"user": raw["user"] - 1, "item": raw["item"] - 1})], 943, 1682)
else:
    matrix = sp.load_npz(workload).tocsr()
    matrix.sort_indices()
users, positives, negatives = sample_triples(matrix, np.random.default_rng(0))
n_users, n_items = matrix.shape
torch.manual_seed(0)
if model_name == "mf":
    model, chunk = MF(MFConfig(n_users, n_items, 64, reg_embedding=1e-4)), None
else:
    model = ConvNCF(ConvNCFConfig(n_users, n_items, 64, 32, reg_embedding=1e-4, reg_conv=1e-4, reg_out=1e-4))
    chunk = shipped_chunk_triples()
step = training_step(model, (users, positives, negatives), batch_size, Phase(lr_embedding=0.05, lr_tower=0.05),
                     "fp32", chunk)
warm_up(step, 5)
rate = triples_per_second(step, batch_size, seconds=seconds, first=5)
print(json.dumps({"triples_per_second": rate, "threads": torch.get_num_threads()}))
"""


def measure(model: str, threads: str, busy: bool, workload: str) -> dict:
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        if busy:
            time.sleep(1.0)  # let the scheduler see it
        run = subprocess.run([sys.executable, "-c", MEASURE, model, str(MODELS[model]), threads, str(SECONDS), workload],
                             check=True, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1],
                             env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"})
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> dict:
    cores = len(os.sched_getaffinity(0))
    workloads = [(model, "ml-100k") for model in MODELS]
    if LARGE_LOG.exists():
        workloads.append(("mf", str(LARGE_LOG)))
    rows = []
    for model, workload in workloads:
        name = "ml-100k" if workload == "ml-100k" else "20 M-row log (138k × 27k)"
        for busy in (False, True):
            for threads in (str(cores), "auto", "1"):
                figure = measure(model, threads, busy, workload)
                rows.append({"model": model, "workload": name, "beside": "one CPU-bound process" if busy else "nothing",
                             "threads_asked": {"auto": "null: one per free core", "1": "1"}.get(
                                 threads, "one per core (torch's default)"), "threads": figure["threads"],
                             "triples_per_second": round(figure["triples_per_second"])})
                print(rows[-1])  # noqa: T201
    alone = {(row["model"], row["workload"]): row["triples_per_second"] for row in rows
             if row["beside"] == "nothing" and row["threads_asked"].startswith("null")}
    for row in rows:
        row["fraction_of_alone"] = round(row["triples_per_second"] / alone[row["model"], row["workload"]], 3)
    result = {
        "benchmark": "training beside other work: train_step triples/s, fp32, shipped batch sizes",
        "seconds_per_figure": SECONDS, "cores": cores, "rows": rows, "machine": machine(), "commit": commit(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "busy_machine.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))  # noqa: T201
