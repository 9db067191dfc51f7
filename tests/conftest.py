"""Shared fixtures: the real datasets in ../shared/datasets and throwaway copies of the project."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from kedro_project import SHARED_DATASETS, KedroProject


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    if not SHARED_DATASETS.is_dir():
        pytest.fail(f"the real datasets are expected at {SHARED_DATASETS} (see its README)")
    return SHARED_DATASETS


@pytest.fixture
def kedro_project(tmp_path: Path) -> Callable[..., KedroProject]:
    def make(dataset: str | None = None) -> KedroProject:
        project = KedroProject(tmp_path / "project")
        if dataset:
            project.use_dataset(dataset)
        return project

    return make
