"""The model study on the shared datasets: `kedro run --pipeline study` per dataset, published as results.

Run: python -m benchmarks.study [dataset ...] [--members "{seeds: [2018, 2019], recipes: [authors]}"]
                                 [--params "{study: {extra_epochs: 5}}"] [--label=-x] [--replot]
     python -m benchmarks.study <dataset> --label=-long --progress   (how far an unfinished study got)
(default: ml-100k; --replot redraws the plots from the results files)
Each dataset gets its own work project (benchmarks/.work/study-<dataset>, kept between runs). A member
(variant, seed) whose checkpoint finished with the same parameters and data is not trained again, so an
interrupted study continues where it stopped and can be extended with seeds. Writes
benchmarks/results/study_<dataset>.json (the pipeline's study_summary.json, the wall time of this run and
the machine) and study_<dataset>.png (its forest plot); benchmarks/tables.py prints the README table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

from benchmarks._gemm import commit, machine
from tests.kedro_project import KedroProject

RESULTS = Path(__file__).resolve().parent / "results"
WORK = Path(__file__).resolve().parent / ".work"
NAMES = {  # export.dataset_name, which titles the report
    "ml-100k": "MovieLens 100K (ml-100k, leave-one-out by time)",
    "ml-100k-recbole": "MovieLens 100K (RecBole atomic files)",
    "ml-100k-ncf": "MovieLens 100K, the NCF authors' split (ml-100k-ncf, their 99 negatives)",
    "lastfm-hetrec": "Last.fm HetRec 2011 (lastfm-hetrec, random leave-one-out)",
    "gowalla": "Gowalla (LightGCN split)",
}


def run(dataset: str, params: dict, members: dict, label: str = "") -> dict:
    project = KedroProject(WORK / f"study-{dataset}{label}")
    project.use_dataset(dataset)
    if members:  # conf/local/study.yml over conf/base's
        project.write_conf("study.yml", members)
    started = time.perf_counter()
    project.run("study", params={"export": {"dataset_name": NAMES[dataset]}, **params})
    seconds = time.perf_counter() - started
    summary = json.loads((project.root / "data/08_reporting/study_summary.json").read_text())
    out = {"script": "benchmarks/study.py", "dataset_key": dataset, "params": params, "members": members,
           "commit": commit(),
           "seconds_this_run": round(seconds, 1), "machine": machine(),
           "date": datetime.now(UTC).strftime("%Y-%m-%d"), **summary}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"study_{dataset}{label}.json").write_text(json.dumps(out, indent=1) + "\n")
    shutil.copy(project.root / "data/08_reporting/study_forest.png", RESULTS / f"study_{dataset}{label}.png")
    return out


CONTINUE_WITH = {"-long": "bash scripts/long_study.sh", "-authors-budget": "bash scripts/gowalla_study.sh"}  # the scripts that run them


def progress(dataset: str, label: str = "") -> dict:
    """Where each member of a study that has not finished stands: epochs trained, best validation epoch and metric
    so far, why it stopped (if it did); written to results/study_<dataset><label>-progress.json."""
    import pandas as pd

    reporting = WORK / f"study-{dataset}{label}" / "data/08_reporting/study"
    members = []
    for path in sorted(reporting.glob("seed_*/*_history.csv")):
        history = pd.read_csv(path)
        metric = next(c for c in ("ndcg@10", "ndcg@20", "hr@10") if c in history)
        checked = history.dropna(subset=[metric])
        best = checked.loc[checked[metric].idxmax()]
        stopped = history["stopped"].dropna().iloc[-1] if "stopped" in history and history["stopped"].notna().any() else None
        members.append({"seed": int(path.parent.name.removeprefix("seed_")), "variant": path.stem.removesuffix("_history"),
                        "epochs_trained": int(history["epoch"].max()), "best_epoch": int(best["epoch"]),
                        f"best_valid_{metric}": round(float(best[metric]), 4),
                        f"start_valid_{metric}": round(float(history.iloc[0][metric]), 4),
                        "seconds": round(float(history["seconds"].sum()), 1), "stopped": stopped})
    out = {"script": "benchmarks/study.py --progress", "dataset_key": dataset, "label": label, "members": members,
           "machine": machine(), "commit": commit(), "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
           "continue_with": CONTINUE_WITH.get(label, f"python -m benchmarks.study {dataset} --label={label}")}
    (RESULTS / f"study_{dataset}{label}-progress.json").write_text(json.dumps(out, indent=1) + "\n")
    return out


def replot(dataset: str, label: str = "") -> None:
    """Draw study_<dataset>.png again from its results file (the plot node on the saved table), not rerunning."""
    import pandas as pd

    from convncf_kedro.pipelines.study.nodes import plot_study

    result = json.loads((RESULTS / f"study_{dataset}{label}.json").read_text())
    plot_study(pd.DataFrame(result["table"])).savefig(RESULTS / f"study_{dataset}{label}.png", dpi=110)  # as the catalog saves it


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*", default=["ml-100k"])
    parser.add_argument("--params", default="{}", help="YAML/JSON mapping of parameter overrides")
    parser.add_argument("--members", default="{}", help="YAML/JSON study.yml: seeds and recipes (default: conf/base's)")
    parser.add_argument("--label", default="", help="suffix of the work folder and results files, written --label=-gpu-smoke")
    parser.add_argument("--replot", action="store_true", help="only redraw the plots from the results files")
    parser.add_argument("--progress", action="store_true", help="only record how far an unfinished study got")
    args = parser.parse_args()
    for dataset in args.datasets:
        if args.replot:
            replot(dataset, args.label)
            continue
        if args.progress:
            print(json.dumps(progress(dataset, args.label)["members"], indent=1))  # noqa: T201
            continue
        out = run(dataset, yaml.safe_load(args.params), yaml.safe_load(args.members), args.label)
        print(f"{dataset}: {len(out['members'])} members, this run {out['seconds_this_run']:.0f} s")  # noqa: T201


if __name__ == "__main__":
    main()
