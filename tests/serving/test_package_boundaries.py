"""What each package may import: serving runs on ONNX Runtime alone (a user scores without torch installed), and no
pipeline's nodes.py builds on another pipeline's nodes.py (shared logic lives in library modules)."""

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "convncf_kedro"

WITHOUT_TORCH = """
import importlib.abc, sys
class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
sys.meta_path.insert(0, NoTorch())
import convncf_kedro.serving.engine, convncf_kedro.serving.recommend, convncf_kedro.serving.onnx_scoring
assert "torch" not in sys.modules
print("serving imported without torch")
"""


def test_serving_imports_with_torch_blocked():
    run = subprocess.run([sys.executable, "-c", WITHOUT_TORCH], check=False, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "serving imported without torch" in run.stdout


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}


def test_no_nodes_module_imports_another_pipelines_nodes():
    offenders = []
    for nodes in sorted((SRC / "pipelines").glob("*/nodes.py")):
        own = f"convncf_kedro.pipelines.{nodes.parent.name}.nodes"
        offenders += [f"{nodes.relative_to(SRC)} imports {module}" for module in imported_modules(nodes)
                      if module.startswith("convncf_kedro.pipelines.") and module != own]
    assert not offenders, offenders


def test_the_pipeline_registry_keeps_no_state_between_calls():
    """Pipelines are built from code and conf/<env>/study.yml on every call: no global, no module-level variable
    another module could set (the study's members once travelled that way, so commands disagreed on them)."""
    tree = ast.parse((SRC / "pipeline_registry.py").read_text())
    assert not [node for node in ast.walk(tree) if isinstance(node, ast.Global | ast.Nonlocal)]
    assigned = {target.id for node in tree.body if isinstance(node, ast.Assign | ast.AnnAssign)
                for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
                if isinstance(target, ast.Name)}
    assert assigned == {"STAGES", "TRAIN_STAGES"}  # constants only
