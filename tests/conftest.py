"""Shared fixtures: the real datasets in ../shared/datasets and throwaway copies of the project.

Two lanes: tests that read the real datasets are marked ``e2e`` (explicitly, or by asking for the
``shared_datasets`` fixture); ``python -m pytest -m "not e2e"`` runs the rest from the repository alone. Where the
datasets are absent, e2e tests are skipped with the reason, unless ``CONVNCF_REQUIRE_DATASETS=1`` (set by
``.ci/run``) turns that skip into a failure, so CI can never pass by skipping.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from kedro_project import SHARED_DATASETS, KedroProject

REQUIRE_DATASETS = os.environ.get("CONVNCF_REQUIRE_DATASETS") == "1"
MISSING = f"the real datasets are not at {SHARED_DATASETS} (see its README); run the unit lane: pytest -m 'not e2e'"


@pytest.hookimpl(tryfirst=True)  # before `-m` selects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "shared_datasets" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.e2e)
    if SHARED_DATASETS.is_dir() or REQUIRE_DATASETS:
        return
    for item in items:
        if item.get_closest_marker("e2e"):
            item.add_marker(pytest.mark.skip(reason=MISSING))


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    if not SHARED_DATASETS.is_dir():
        pytest.fail(MISSING + " (CONVNCF_REQUIRE_DATASETS=1: CI must not skip them)")
    return SHARED_DATASETS


@pytest.fixture
def kedro_project(tmp_path: Path) -> Callable[..., KedroProject]:
    def make(dataset: str | None = None) -> KedroProject:
        project = KedroProject(tmp_path / "project")
        if dataset:
            project.use_dataset(dataset)
        return project

    return make
