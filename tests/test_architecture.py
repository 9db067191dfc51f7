"""What each package may import (docs/architecture.md draws it): the layers point one way, the configuration is
parsed once at the edge, and reading a raw log needs neither Kedro nor torch."""

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "convncf_kedro"

# package → the project packages it may import; a package not listed here fails the test until it is placed
MAY_IMPORT = {
    "errors": set(),
    "config": {"errors"},
    "ranking": set(),
    "models": set(),
    "tracking": set(),
    "interactions": {"errors"},
    "serving": {"errors", "ranking"},  # ONNX Runtime alone: no torch (tests/serving/test_package_boundaries.py)
    "datasets": {"errors", "interactions"},
    "training": {"config", "errors", "interactions", "models", "ranking"},
    "baselines": {"config", "errors", "ranking"},
    "exporting": {"errors", "interactions", "models", "ranking", "serving"},
    "evaluation": {"baselines", "config", "errors", "exporting", "interactions", "models", "ranking", "serving",
                   "training"},
    # the application layer: Kedro's nodes, hooks and registry may use every library package
    "pipelines": {"baselines", "config", "errors", "evaluation", "exporting", "interactions", "models", "ranking",
                  "serving", "tracking", "training"},
    "hooks": {"baselines", "config", "errors", "interactions"},
    "pipeline_registry": {"config", "pipelines"},
    "settings": {"config", "hooks"},
    "__main__": set(),
    "__init__": set(),
}
PARSES_PARAMETERS = ("pipelines/*/nodes.py", "hooks.py", "config/*.py")  # where a raw parameter dict is read


def package_of(path: Path) -> str:
    relative = path.relative_to(SRC)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def project_imports(path: Path) -> set[str]:
    """The top-level project packages a module imports (absolute imports; relative ones stay in the package)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names] if node.module == "convncf_kedro" \
                else [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found |= {name.split(".")[1] for name in names if name.startswith("convncf_kedro.")}
    return found


def test_every_package_imports_only_the_layers_below_it():
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        package = package_of(path)
        assert package in MAY_IMPORT, f"{path.relative_to(SRC)}: place package '{package}' in MAY_IMPORT and the doc"
        offenders += [f"{path.relative_to(SRC)} imports {other}" for other in project_imports(path) - {package}
                      if other not in MAY_IMPORT[package]]
    assert not offenders, offenders


def test_only_the_pipeline_layer_and_the_start_of_run_check_parse_parameters():
    allowed = {path for pattern in PARSES_PARAMETERS for path in SRC.glob(pattern)}
    callers = sorted(str(path.relative_to(SRC)) for path in SRC.rglob("*.py") if path not in allowed
                     and any(isinstance(node, ast.Call) and getattr(node.func, "id", None) == "parse_params"
                             for node in ast.walk(ast.parse(path.read_text()))))
    assert not callers, f"{callers} parse parameters: take the typed settings a node parsed instead"


def test_reading_a_raw_log_loads_neither_kedro_torch_nor_onnx():
    code = ("import sys, convncf_kedro.interactions.readers\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'kedro', 'torch', 'onnx', 'onnxruntime'}))")
    run = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "[]"
