"""The READMEs' result tables are what benchmarks/tables.py makes of the committed results files, never pasted."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_generated_block_of_both_readmes_matches_the_results_files():
    spec = importlib.util.spec_from_file_location("tables", ROOT / "benchmarks" / "tables.py")
    tables = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tables)
    for readme in tables.READMES:
        text = readme.read_text()
        assert tables.BLOCK.search(text), f"{readme.name} has no generated block"
        assert tables.render(text) == text, f"{readme} is stale: run python benchmarks/tables.py"
