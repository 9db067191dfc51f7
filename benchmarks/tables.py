"""Markdown tables of the results files, as the README and benchmarks/README.md quote them.

Run: python benchmarks/tables.py   (reads benchmarks/results/*.json; runs nothing else)
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _machine(r: dict) -> str:
    bf16 = "" if r["bf16_native"] else " (emulated: this CPU has no bf16 arithmetic, so no bf16 rows)"
    return (f"{r['machine']}, {r['threads']} threads, {r['date']}; GEMM fp32 "
            f"{r['gemm_gflops']['fp32']} GFLOP/s, bf16 {r['gemm_gflops']['bf16']} GFLOP/s{bf16}; {r['statistic']}.")


def training() -> str:
    r = load("training_throughput")
    head = _machine(r)
    rows = [[row["precision"], row["batch_size"], f"{row['triples_per_second']:,}",
             row[f"fraction_of_{row['precision']}_gemm_limit"], row["fraction_of_fp32_gemm_limit"]] for row in r["rows"]]
    return head + "\n\n" + table(["precision", "batch", "triples/s", "fraction of its precision's GEMM limit",
                                  "fraction of the fp32 limit"], rows)


def scoring() -> str:
    r = load("scoring")
    head = _machine(r)
    rows = [[row["engine"], row["precision"], row["batch_pairs"], f"{row['pairs_per_second']:,}",
             row[f"fraction_of_{row['precision']}_gemm_limit"]] for row in r["pair_scoring"]]
    ranking = r["full_ranking_ml100k_onnxruntime"]
    tail = (f"Full ranking of ml-100k with ONNX Runtime (fp32): {ranking['seconds']} s, "
            f"{ranking['pairs_per_second']:,} pairs/s = {ranking['fraction_of_fp32_gemm_limit']} of the fp32 limit; "
            f"projected for Gowalla: {ranking['projected_gowalla_hours']} h.")
    memory = [[m["items"], m["users"], m["seconds"], f"{m['pairs_per_second']:,}", f"{m['peak_rss_mib']:,} MiB"]
              for m in r["full_ranking_peak_rss_by_items"]]
    return "\n\n".join([head, table(["engine", "precision", "pairs per call", "pairs/s",
                                     "fraction of its precision's GEMM limit"], rows), tail,
                        table(["items", "users", "seconds", "pairs/s", "peak RSS"], memory)])


def recipes() -> str:
    r = load("convncf_recipes")
    mf = r["mf"]["valid"]
    rows = [["MF-BPR (pretraining)", r["mf"]["epoch"], f"{mf['ndcg@10']:.4f}", f"{mf['hr@10']:.4f}", "", ""]]
    for name, recipe in r["recipes"].items():
        best = recipe["best_valid"]
        curve = recipe["curve_ndcg@10"]
        rows.append([f"ConvNCF `{name}`", recipe["best_epoch"], f"{best['ndcg@10']:.4f}", f"{best['hr@10']:.4f}",
                     " → ".join(f"{v:.3f}" for v in curve), f"{recipe['seconds']:,.0f} s"])
    return f"{r['dataset']}; {r['precision']}; {r['epochs']} epochs per recipe; {r['date']}.\n\n" + table(
        ["model", "best epoch", "valid NDCG@10", "valid HR@10", "NDCG@10 by epoch (0 = start)", "time"], rows)


def train_default() -> str:
    r = load("train_default")
    s = r["seconds"]
    head = (f"{r['machine']}, {r['date']}: {s['total']:,.0f} s end to end (" +
            ", ".join(f"{k} {v:,.0f} s" for k, v in s.items() if k != "total") +
            f"); MF {r['mf_epochs_run']} epochs (best {r['best']['mf']['epoch']}), ConvNCF `{r['best']['convncf']['recipe']}` "
            f"{r['convncf_epochs_run']} epochs (best {r['best']['convncf']['epoch']}); peak RSS {r['peak_rss_mib']:,} MiB.")
    names = {"hr": "HR", "ndcg": "NDCG", "mrr": "MRR", "recall": "Recall"}
    rows = [[row["protocol"], f"{names[row['metric']]}@{int(float(row['k']))}",
             f"{row['MF']:.4f}", f"{row['ConvNCF']:.4f}", f"{row['ConvNCF - MF']:+.4f}",
             f"[{row['ci_low']:+.4f}, {row['ci_high']:+.4f}]", row["verdict"]]
            for row in r["metrics_table"]
            if row["metric"] in names and row["k"] not in (None, "<NA>")
            and float(row["k"]) == (20 if row["metric"] == "recall" else 10)]
    checks = ""
    if "onnx_validation" in r:
        v = r["onnx_validation"]
        checks = (f"\n\nExport: ONNX Runtime matches PyTorch within {v['largest_difference']:.1e} on {v['pairs']:,} "
                  f"pairs; fp32 graph {v['fp32']['pairs_per_second_1_thread']:,} pairs/s on one thread. ")
        for name, variant in v.get("variants", {}).items():
            checks += (f"{name.upper()} graph: validation NDCG@10 {variant['ndcg@10']:.4f} vs fp32's "
                       f"{v['fp32']['ndcg@10']:.4f}, HR@10 {variant['hr@10']:.4f} vs {v['fp32']['hr@10']:.4f}, "
                       f"{variant['speed_vs_fp32']}× fp32's speed: "
                       f"{'accepted' if variant['accepted'] else 'refused (not equal to 3 decimals), so never used'}. ")
    if "full_ranking_seconds" in r:
        f = r["full_ranking_seconds"]
        checks += f"Full ranking in `evaluation`: MF {f['mf']:.1f} s (PyTorch), ConvNCF {f['convncf']:.1f} s (fp32 graph, one process)."
    return head + "\n\n" + table(["protocol", "metric", "MF-BPR", "ConvNCF", "ConvNCF − MF", "95 % interval",
                                  "verdict"], rows) + checks


def study() -> str:
    """One table per dataset studied: each variant's test mean and its paired differences from MF and MF-longer."""
    out = []
    for path in sorted(RESULTS.glob("study_*.json")):
        if "smoke" in path.name:  # GPU smoke runs check the pipeline, they are not results
            continue
        r = json.loads(path.read_text())
        seconds = f"{r['seconds_this_run']:,.0f} s this run" if r.get("seconds_this_run") else ""
        out.append(f"**{r['dataset']}** — {len(r['seeds'])} seeds ({', '.join(map(str, r['seeds']))}), "
                   f"{r['extra_epochs']} extra epochs per variant, {len(r['members'])} members; {r['machine']}, "
                   f"{r['date']}; {seconds} (`{path.relative_to(RESULTS.parent.parent)}`).")

        def interval(row: dict, key: str) -> str:
            if row.get(key) is None or row.get(key) != row.get(key):  # None or NaN: no comparison
                return ""
            return f"{row[key]:+.4f} [{row[key + '_low']:+.4f}, {row[key + '_high']:+.4f}] {row[key + '_verdict']}"

        rows = [[f"{row['metric']} ({row['protocol']})", row["variant"],
                 f"{row['mean']:.4f} [{row['ci_low']:.4f}, {row['ci_high']:.4f}]", f"{row['seed_sd']:.4f}",
                 interval(row, "vs_mf"), interval(row, "vs_mf_longer")] for row in r["table"]]
        out.append(table(["test metric", "variant", "mean [95 % interval]", "sd over seeds",
                          "− MF [95 % interval] verdict", "− MF-longer [95 % interval] verdict"], rows))
        epochs = {}
        for member in r["members"]:
            if member["variant"] != "mf":
                epochs.setdefault(member["variant"], []).append(str(member["best_epoch"]))
        out.append("Best validation epoch per seed (0: no epoch improved on the start, which was kept): " +
                   "; ".join(f"{variant} {', '.join(best)}" for variant, best in epochs.items()) + ".")
    return "\n\n".join(out)


def engine() -> str:
    """One section per machine measured (engine.json, engine-<label>.json)."""
    return "\n\n".join(_engine(json.loads(path.read_text())) for path in sorted(RESULTS.glob("engine*.json")))


def _engine(r: dict) -> str:
    head = (f"{r['machine']}, {r['date']}; fp32 GEMM {r['gemm_gflops_fp32']['1_thread']} GFLOP/s on 1 thread, "
            f"{r['gemm_gflops_fp32']['all_threads']} on all; {r['statistic']}.")
    pairs = [[row["precision"], row["threads"], f"{row['pairs_per_second']:,}",
              row["fraction_of_fp32_gemm_limit_1_thread"]] for row in r["pair_scoring"]]
    ranking = [[row["where"], row["partitions"], row["seconds"], f"{row['pairs_per_second']:,}"]
               for row in r["full_ranking_ml100k"]]
    tail = (f"`local:2` over `local:1`: {r['local_2_speedup_over_local_1']}× (scaling efficiency "
            f"{r['scaling_efficiency_local_2']}); one single-threaded worker ranks {r['per_worker_pairs_per_second']:,} "
            "pairs/s, so Gowalla's full ranking (1.22 billion pairs) would take " +
            ", ".join(f"{m:,} min on {n} worker{'' if n == '1' else 's'}" for n, m in r["gowalla_projected_minutes_by_workers"].items()) + ".")
    fp32 = next(row for row in r["pair_scoring"] if row["precision"] == "fp32")
    flop_per_pair = fp32["fraction_of_fp32_gemm_limit_1_thread"] * r["gemm_gflops_fp32"]["1_thread"] * 1e9 / fp32["pairs_per_second"]
    ranked = r["full_ranking_ml100k"][0]
    floor = ranked["seconds"] * ranked["pairs_per_second"] * flop_per_pair / (r["gemm_gflops_fp32"]["all_threads"] * 1e9)
    tail += (f" Arithmetic floor: the graph does {flop_per_pair / 1e6:.2f} MFLOP per pair, so ml-100k's full ranking "
             f"cannot take less than {floor:.0f} s in fp32 on this machine even at 100 % of its all-core GEMM rate.")
    return "\n\n".join([head, table(["graph", "threads", "pairs/s", "fraction of the 1-thread fp32 GEMM limit"], pairs),
                         table(["ml-100k full ranking (1.59 M pairs)", "partitions", "seconds", "pairs/s"], ranking),
                         tail])


if __name__ == "__main__":
    for title, make in (("training", training), ("scoring", scoring), ("recipes", recipes),
                        ("train (default)", train_default), ("study", study), ("engine", engine)):
        try:
            print(f"## {title}\n\n{make()}\n")  # noqa: T201
        except (TypeError, KeyError) as exc:  # a results file not yet written by the current script
            print(f"## {title}\n\n(no current results: {exc!r})\n")  # noqa: T201
