"""A throwaway copy of the project, pointed at a shared dataset and run like `kedro run` (tests, benchmarks)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from unittest.mock import patch

import yaml

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.pop("MLFLOW_TRACKING_URI", None)  # runs record into the temporary project's own SQLite store, never a server

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = PROJECT_ROOT.parent / "shared" / "datasets"

# Catalog and parameter overrides that point the project at each shared dataset.
DATASET_CONFIGS: dict[str, tuple[dict, dict]] = {
    "ml-100k": ({"path": "ml-100k", "files": {"log": "u.data"}}, {}),
    "ml-100k-recbole": ({"path": "ml-100k-recbole", "files": {"log": "ml-100k.inter"}}, {"format": "recbole"}),
    "ml-100k-ncf": (
        {
            "path": "ml-100k-ncf",
            "files": {"train": "ml-100k.train.rating", "test": "ml-100k.test.rating", "negatives": "ml-100k.test.negative"},
        },
        {"format": "ncf"},
    ),
    "gowalla": ({"path": "gowalla", "files": {"train": "train.txt", "test": "test.txt"}}, {"format": "lightgcn"}),
    "lastfm-hetrec": (  # play counts, no timestamps: every (user, artist) pair is a positive, held out at random
        {"path": "lastfm-hetrec", "files": {"log": "user_artists.dat"}},
        {"format": "delimited", "delimited": {"sep": "\t", "header": True, "names": None, "user_column": "userID",
                                              "item_column": "artistID", "rating_column": None,
                                              "timestamp_column": None}},
    ),
}



class KedroProject:
    """A copy of this project's conf in a temp dir, run through KedroSession like `kedro run` does."""

    def __init__(self, root: Path):
        self.root = root
        shutil.rmtree(root / "conf", ignore_errors=True)  # the project's current conf; data/ is kept
        shutil.copytree(PROJECT_ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
        (root / "conf" / "local").mkdir()
        shutil.copy(PROJECT_ROOT / "pyproject.toml", root / "pyproject.toml")
        (root / "src").mkdir(exist_ok=True)  # `kedro` on the command line wants it; the package itself is installed
        for layer in ("01_raw", "02_intermediate", "03_primary", "05_model_input", "06_models", "07_model_output", "08_reporting"):
            (root / "data" / layer).mkdir(parents=True, exist_ok=True)

    def use_dataset(self, name: str) -> None:
        """Point `raw_interactions` at a shared dataset (read in place, never copied)."""
        catalog, params = DATASET_CONFIGS[name]
        entry = {
            "type": "convncf_kedro.datasets.RawInteractionFiles",
            "path": str(SHARED_DATASETS / catalog["path"]),
            "files": catalog["files"],
        }
        self.write_conf("catalog.yml", {"raw_interactions": entry})
        if params:
            self.write_conf("parameters_ingestion.yml", {"ingestion": params})

    @staticmethod
    def shared_path(relative: str) -> Path:
        return SHARED_DATASETS / relative

    def write_conf(self, file_name: str, content: dict) -> None:
        """Write an override into conf/local (parameters deep-merge over conf/base, catalog entries replace)."""
        (self.root / "conf" / "local" / file_name).write_text(yaml.safe_dump(content))

    def run(self, pipeline: str, params: dict | None = None, nodes: list[str] | None = None) -> dict:
        from kedro.framework.session import KedroSession
        from kedro.framework.startup import bootstrap_project

        bootstrap_project(PROJECT_ROOT)
        # from the project folder, as `kedro run` is: MLflow's SQLite store and artifacts land there. MLflow
        # keeps one store per URI string for the whole process, so the relative default would stay bound to
        # the first project a test ran: each run names its own store absolutely (the documented override).
        own_store = patch.dict(os.environ, {"MLFLOW_TRACKING_URI": self.tracking_uri})
        with contextlib.chdir(self.root), own_store, KedroSession.create(
            project_path=self.root, conf_source=str(self.root / "conf"), runtime_params=params or {}
        ) as session:
            return session.run(pipeline_names=[pipeline], node_names=nodes)

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.root / 'mlflow.db'}"

    def mlflow_client(self):
        """A client of the MLflow store that runs of this project record into (its own SQLite file)."""
        import mlflow

        return mlflow.MlflowClient(tracking_uri=self.tracking_uri)

    def mlflow_runs(self) -> list:
        """The MLflow runs recorded in this project's local store, newest first."""
        client = self.mlflow_client()
        return client.search_runs([e.experiment_id for e in client.search_experiments()], order_by=["start_time DESC"])

    def kill_9_after_epoch(self, pipeline: str, cli_params: str, checkpoint: str, epoch: int) -> int:
        """Run `kedro run` in a subprocess, SIGKILL it once ``checkpoint`` holds ``epoch``; the epoch it holds then."""
        import torch

        path = self.root / checkpoint
        path.unlink(missing_ok=True)
        run = subprocess.Popen(
            [sys.executable, "-m", "kedro", "run", "--pipeline", pipeline, "--params", cli_params],
            cwd=self.root, env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and run.poll() is None:
            if path.exists() and torch.load(path, weights_only=True)["epoch"] >= epoch:
                break
            time.sleep(0.05)
        run.send_signal(signal.SIGKILL)
        run.wait()
        return torch.load(path, weights_only=True)["epoch"]

    def catalog(self):
        from kedro.framework.session import KedroSession
        from kedro.framework.startup import bootstrap_project

        bootstrap_project(PROJECT_ROOT)
        own_store = patch.dict(os.environ, {"MLFLOW_TRACKING_URI": self.tracking_uri})  # never the caller's folder
        with own_store, KedroSession.create(project_path=self.root, conf_source=str(self.root / "conf")) as session:
            return session.load_context().catalog

    def load(self, name: str):
        return self.catalog().load(name)


def slice_project(root: Path, users: int = 30) -> KedroProject:
    """A project on MovieLens 100K's first ``users`` users (written into a temporary folder, read in place)."""
    import pandas as pd

    raw = pd.read_csv(SHARED_DATASETS / "ml-100k/u.data", sep="\t", names=["user", "item", "rating", "ts"], dtype=str)
    folder = root / "raw"
    folder.mkdir(parents=True)
    raw[raw["user"].astype(int) <= users].to_csv(folder / "u.data", sep="\t", header=False, index=False)
    project = KedroProject(root / "project")
    project.write_conf("catalog.yml", {"raw_interactions": {
        "type": "convncf_kedro.datasets.RawInteractionFiles", "path": str(folder), "files": {"log": "u.data"},
    }})
    return project
