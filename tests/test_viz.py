"""kedro-viz as a person sees it: the static build, served on 127.0.0.1 and rendered by headless Chromium."""

import functools
import http.server
import json
import os
import shutil
import subprocess
import threading

import matplotlib.image
import numpy as np
import pytest

from convncf_kedro.pipeline_registry import register_pipelines

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--window-size=1600,1000", "--virtual-time-budget=15000",
]


@pytest.fixture(scope="module")
def viz_build(tmp_path_factory):
    """`kedro viz build` of a copy of the project; yields its build folder."""
    from kedro_project import KedroProject

    project = KedroProject(tmp_path_factory.mktemp("viz") / "project")
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}
    subprocess.run(["kedro", "viz", "build"], cwd=project.root, env=env, check=True, capture_output=True, timeout=300)
    return project.root / "build"


def test_build_lists_every_pipeline_with_layers(viz_build):
    main = json.loads((viz_build / "api" / "main").read_text())
    assert {p["id"] for p in main["pipelines"]} >= set(register_pipelines())
    assert set(main["layers"]) == {"raw", "intermediate", "primary", "model_input", "models", "model_output", "reporting"}
    assert all(n.get("layer") for n in main["nodes"] if n["type"] == "data")  # every dataset has a layer


@pytest.mark.skipif(CHROMIUM is None and os.environ.get("CI") != "true", reason="Debian's chromium is not installed")
def test_train_pipeline_renders_in_a_real_browser(viz_build, tmp_path):
    if CHROMIUM is None:
        pytest.fail("Debian's chromium is required in CI (.ci/run installs it with apt-get)")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(viz_build))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        run = functools.partial(subprocess.run, capture_output=True, text=True, timeout=120, check=True)
        dom = run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", url]).stdout
        screenshot = tmp_path / "kedro_viz.png"
        run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile2'}", f"--screenshot={screenshot}", url])
    finally:
        server.shutdown()
    for node in register_pipelines()["train"].nodes:
        assert node.name in dom, f"node {node.name} is not rendered"
    pixels = matplotlib.image.imread(screenshot)
    assert pixels.shape[:2] == (1000, 1600)  # the window that was asked for
    colours = np.unique((pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 50, "the page rendered blank"  # a drawn graph: nodes, edges, text
