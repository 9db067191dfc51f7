"""The catalog a user opens first: short, their data on top, and — however it is written — the same datasets."""

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CATALOG = ROOT / "conf" / "base" / "catalog.yml"


def relative(value, root: str):
    if isinstance(value, dict):
        return {key: relative(item, root) for key, item in value.items()}
    if isinstance(value, list):
        return [relative(item, root) for item in value]
    return value.replace(f"{root}/", "") if isinstance(value, str) else value


def test_the_catalog_is_short_and_starts_with_the_users_data():
    lines = CATALOG.read_text().splitlines()
    assert len(lines) < 200
    first_entry = next(line for line in lines if line and not line.startswith(("#", " ")))
    assert first_entry == "raw_interactions:"


def test_kedro_resolves_the_same_datasets_as_the_catalog_written_out_in_full():
    """Anchors and factories are only a way of writing: `kedro catalog resolve-patterns` (every dataset the pipelines
    use, in full) equals the snapshot taken of the catalog written entry by entry."""
    run = subprocess.run([sys.executable, "-m", "kedro", "catalog", "resolve-patterns"], cwd=ROOT, check=False,
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"})
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()  # Kedro's log lines come first on stdout, then the YAML
    start = next(n for n, line in enumerate(lines) if re.fullmatch(r"[a-z_][\w.]*:", line))
    resolved = relative(yaml.safe_load("\n".join(lines[start:])), str(ROOT))
    snapshot = yaml.safe_load((ROOT / "tests" / "snapshots" / "catalog_resolved.yml").read_text())
    assert sorted(resolved) == sorted(snapshot)
    assert resolved == snapshot


def test_the_registered_pipelines_keep_their_nodes():
    """Refactoring moves code, not nodes: every pipeline lists the nodes `kedro registry describe` listed before."""
    code = ("from pathlib import Path\n"
            "from kedro.framework.startup import bootstrap_project\n"
            f"bootstrap_project(Path({str(ROOT)!r}))\n"
            "from kedro.framework.project import pipelines\n"
            "import json\n"
            "print(json.dumps({name: [f'{n.name} ({n.func.__name__})' for n in pipelines[name].nodes]\n"
            "                  for name in pipelines}))")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=False, capture_output=True, text=True,
                         timeout=300, env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "KEDRO_ENV": "base"})
    assert run.returncode == 0, run.stderr[-2000:]
    registered = yaml.safe_load(run.stdout.splitlines()[-1])
    snapshot = yaml.safe_load((ROOT / "tests" / "snapshots" / "registry_nodes.yml").read_text())
    assert {name: registered[name] for name in snapshot} == snapshot
