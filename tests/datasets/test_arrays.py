"""Saved baselines are .npz files of named arrays: read without pickle, and each array only when it is used."""

import numpy as np
import pytest
from kedro.io import DatasetError

from convncf_kedro.datasets import ArraysDataset


def test_arrays_come_back_by_name_each_read_when_first_used(tmp_path, monkeypatch):
    dataset = ArraysDataset(str(tmp_path / "model.npz"))
    dataset.save({"described": np.array('{"model_class": "ease"}'), "item_side": np.eye(3, dtype=np.float32)})
    loaded = dataset.load()
    reads = []
    real_load = np.load
    monkeypatch.setattr(np, "load", lambda *a, **k: reads.append(a[0]) or real_load(*a, **k))
    assert str(loaded["described"]) == '{"model_class": "ease"}'
    assert "item_side" in loaded and "user_side" not in loaded
    assert len(reads) == 1  # the description alone: the matrix is not read, not even to ask whether it is there
    np.testing.assert_array_equal(loaded["item_side"], np.eye(3))
    assert sorted(loaded) == ["described", "item_side"] and dict(loaded).keys() == {"described", "item_side"}


def test_an_array_that_needs_pickle_is_refused_at_load_naming_the_file(tmp_path):
    """Refused from its header, before any array is read: nothing in the file runs."""
    path = tmp_path / "model.npz"
    np.savez(path, described=np.array("{}"), payload=np.array([{"code": "runs on load"}], dtype=object))
    with pytest.raises(DatasetError, match=r"model\.npz is not a readable array file \(array 'payload' holds Python"):
        ArraysDataset(str(path)).load()
