"""Outputs are written atomically: an interrupted save leaves the earlier file intact."""

import pandas as pd
import pytest
from kedro_datasets.pandas import ParquetDataset

from convncf_kedro.datasets import AtomicDataset


def test_an_interrupted_save_leaves_the_old_file_intact_and_no_debris(tmp_path, monkeypatch):
    target = tmp_path / "recommendations.parquet"
    dataset = AtomicDataset({"type": "pandas.ParquetDataset"}, str(target))
    old = pd.DataFrame({"user_id": ["a"], "item_id": ["x"]})
    dataset.save(old)

    def write_half_then_die(self, data):
        with open(self._filepath, "wb") as fh:  # what an in-place writer leaves when killed mid-file
            fh.write(b"PAR1 half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(ParquetDataset, "save", write_half_then_die)
    with pytest.raises(KeyboardInterrupt):
        dataset.save(pd.DataFrame({"user_id": ["b"], "item_id": ["y"]}))
    monkeypatch.undo()
    pd.testing.assert_frame_equal(dataset.load(), old)
    assert [p.name for p in tmp_path.iterdir()] == ["recommendations.parquet"]


def test_wrapped_datasets_keep_their_save_args_suffix_and_preview(tmp_path):
    csv = AtomicDataset({"type": "pandas.CSVDataset", "save_args": {"index": False}}, str(tmp_path / "t.csv"))
    csv.save(pd.DataFrame({"a": [1, 2]}))
    assert (tmp_path / "t.csv").read_text() == "a\n1\n2\n"
    assert csv.preview(nrows=1)["data"] == [[1]] and csv.exists()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = plt.figure()
    AtomicDataset("matplotlib.MatplotlibDataset", str(tmp_path / "plot.png")).save(figure)
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # format taken from the target's suffix
