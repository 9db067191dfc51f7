"""The Gowalla study on one device, sized to a time budget from the step rates it measures first (issue 25).

Run: python -m benchmarks.gpu_study [--minutes 8] [--device cuda] [--dataset gowalla] [--seeds 2018 2019 2020]
                                    [--sample-users N] [--label -gpu] [--work DIR] [--results DIR]
(scripts/gpu_check.sh runs it after the CUDA checks; the test suite runs it on CPU at a tiny size.)
  1. `ingestion` and `matrix` of the study's work project (999 sampled negatives, 1,000 validation users);
  2. the loop's own ``train_step`` on the device for MF (the pretrain batch size), MF trained longer and each recipe
     (their batch sizes) on the real training triples: triples/s, and one validation check timed;
  3. prints what the authors' schedule (validation every 5 epochs, patience 5, at least 50 and at most 300 epochs)
     would cost at those rates, and splits ``--minutes`` (less ``OVERHEAD``) into the members' ``time_budget_minutes``
     so the whole study ends within it: a member stops at its share with its best epoch kept, and says so;
  4. `kedro run --pipeline study` on the device with every ConvNCF variant, 3 seeds and all users; ConvNCF is scored
     through ONNX Runtime on that device (its CUDA execution provider on a GPU).
Writes <results>/study_<dataset><label>.json with the projection, the measured time and the study's summary.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
import yaml

from benchmarks._gemm import commit, machine
from benchmarks._steps import training_step, triples_per_second, warm_up
from convncf_kedro.models import MF, ConvNCF, ConvNCFConfig, MFConfig, Phase
from convncf_kedro.models.scoring import pair_scorer
from convncf_kedro.ranking.sampled import candidate_matrix, evaluate_sampled
from convncf_kedro.training.sampler import sample_triples
from tests.kedro_project import KedroProject

WORK = Path(__file__).resolve().parent / ".work"
RESULTS = Path(__file__).resolve().parent / "results"
RECIPES = ["authors", "residual", "mf_identity"]  # every variant
SCHEDULE = {"validate_every": 5, "patience": 5, "min_epochs": 50, "extra_epochs": 300}  # Ferrari Dacrema et al.
OVERHEAD = 0.25  # of the budget kept for ingestion, baselines, export and evaluation (the rest trains)
TIMED_STEPS = 30


def parameters(args: argparse.Namespace) -> dict:
    """The study's parameters beyond conf/base: the split, the schedule, the device."""
    ingestion = {"n_negatives": 999, "validation_users": 1000, "sample_users": args.sample_users}
    return {"ingestion": ingestion, "evaluation": {"max_users": None, "device": args.device},
            "study": {**SCHEDULE}, "pretrain": {"training": {"device": args.device}},
            "convncf": {"training": {"device": args.device}},
            "baselines": {"time_budget_minutes": round(args.minutes * OVERHEAD / 2, 3)}}


def step_rate(model: torch.nn.Module, batch_size: int, triples: tuple[np.ndarray, ...], device: torch.device,
              chunk_triples: int | None) -> float:
    """Triples/s of the loop's own training step on ``device`` (after a warm-up of 3 steps)."""
    step = training_step(model, triples, batch_size, Phase(lr_embedding=0.01, lr_tower=0.01), "fp32", chunk_triples,
                         device)
    warm_up(step, 3)
    return triples_per_second(step, batch_size, steps=TIMED_STEPS, device=device)


def projection(project: KedroProject, args: argparse.Namespace) -> dict:
    """Step rates and one validation check on the device, and what the schedule and the budget make of them."""
    conf = {name: yaml.safe_load((project.root / "conf/base" / f"parameters_{name}.yml").read_text())[name]
            for name in ("pretrain", "convncf", "study")}
    device = torch.device(args.device)
    matrix = project.load("train_matrix")
    n_users, n_items = matrix.shape
    triples = sample_triples(matrix, np.random.default_rng(0))
    chunk = conf["convncf"]["training"]["chunk_triples"] if device.type == "cpu" else None
    d, channels = conf["pretrain"]["embedding_size"], conf["convncf"]["channels"]
    batches = {"mf": conf["pretrain"]["batch_size"], "mf_longer": conf["study"]["mf_longer"]["batch_size"],
               **{recipe: conf["convncf"]["recipes"][recipe]["batch_size"] for recipe in RECIPES}}
    rates = {name: step_rate(MF(MFConfig(n_users, n_items, d)), batch, triples, device, None)
             for name, batch in batches.items() if name.startswith("mf")}
    tower = ConvNCF(ConvNCFConfig(n_users, n_items, d, channels))
    rates |= {recipe: step_rate(tower, batches[recipe], triples, device, chunk) for recipe in RECIPES}
    users, items = candidate_matrix(project.load("valid"), project.load("valid_negatives"))
    begin = time.perf_counter()
    evaluate_sampled(pair_scorer(tower.eval(), device, "fp32", conf["convncf"]["training"]["eval_batch_pairs"]),
                     users, items, [10], label="timed validation check")
    check_seconds = time.perf_counter() - begin
    epoch_seconds = {name: matrix.nnz / rate for name, rate in rates.items()}
    seeds, members = len(args.seeds), ["mf", "mf_longer", *RECIPES]

    def minutes(epochs: int, name: str) -> float:
        return (epochs * epoch_seconds[name] + epochs / SCHEDULE["validate_every"] * check_seconds) / 60

    schedule = {bound: round(seeds * sum(minutes(epochs, name) for name in members), 1)
                for bound, epochs in (("at_least_50_epochs", SCHEDULE["min_epochs"]),
                                      ("at_most_300_epochs", SCHEDULE["extra_epochs"]))}
    share = args.minutes * (1 - OVERHEAD) / (seeds * len(members))  # each member's time budget
    return {"device": str(device), "triples_per_epoch": int(matrix.nnz), "users": n_users, "items": n_items,
            "triples_per_second": {name: round(rate) for name, rate in rates.items()},
            "validation_check_seconds": round(check_seconds, 2),
            "authors_schedule_minutes": schedule, "member_budget_minutes": round(share, 3),
            "epochs_within_budget": {name: int(share * 60 // (epoch_seconds[name]
                                                            + check_seconds / SCHEDULE["validate_every"]))
                                     for name in members}}


def main(args: argparse.Namespace) -> dict:
    label = args.label if args.sample_users is None else f"{args.label}-{args.sample_users}-users"
    project = KedroProject(Path(args.work) / f"study-{args.dataset}{label}")
    project.use_dataset(args.dataset)
    project.write_conf("study.yml", {"seeds": args.seeds, "recipes": RECIPES})
    params = parameters(args)
    started = time.perf_counter()
    project.run("ingestion", params=params)
    project.run("matrix", params=params)
    planned = projection(project, args)
    print(json.dumps(planned, indent=1))  # noqa: T201
    for stage in ("pretrain", "convncf"):  # MF trained longer runs on pretrain's training settings
        params[stage]["training"]["time_budget_minutes"] = planned["member_budget_minutes"]
    project.run("study", params=params)
    seconds = time.perf_counter() - started
    summary = json.loads((project.root / "data/08_reporting/study_summary.json").read_text())
    out = {"script": "benchmarks/gpu_study.py", "dataset_key": args.dataset, "params": params,
           "members": {"seeds": args.seeds, "recipes": RECIPES}, "projection": planned,
           "budget_minutes": args.minutes, "seconds_this_run": round(seconds, 1), "machine": machine(),
           "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "commit": commit(),
           "date": datetime.now(UTC).strftime("%Y-%m-%d"), **summary}
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    (results / f"study_{args.dataset}{label}.json").write_text(json.dumps(out, indent=1, default=str) + "\n")
    print(f"{args.dataset}: {len(summary['members'])} members in {seconds / 60:.1f} min "  # noqa: T201
          f"(budget {args.minutes:g} min, projected member budget {planned['member_budget_minutes']:g} min)")
    return out


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=8.0, help="the whole study's time budget")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dataset", default="gowalla")
    parser.add_argument("--seeds", type=int, nargs="+", default=[2018, 2019, 2020])
    parser.add_argument("--sample-users", type=int, default=None, help="a seeded sample of users (every item kept)")
    parser.add_argument("--label", default="-gpu")
    parser.add_argument("--work", default=str(WORK))
    parser.add_argument("--results", default=str(RESULTS))
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(arguments())
