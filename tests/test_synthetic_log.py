"""The seeded production-shaped log the scale benchmarks run on: its size, shape and determinism."""

import numpy as np
import pandas as pd

from benchmarks.synthetic_log import write_log


def test_the_synthetic_log_has_the_asked_size_a_zipf_head_and_ordered_time(tmp_path):
    write_log(tmp_path / "a" / "u.data", 50_000, 1_000, 2_000, seed=3)
    write_log(tmp_path / "b" / "u.data", 50_000, 1_000, 2_000, seed=3)
    assert (tmp_path / "a" / "u.data").read_bytes() == (tmp_path / "b" / "u.data").read_bytes()
    log = pd.read_csv(tmp_path / "a" / "u.data", sep="\t", names=["user", "item", "rating", "timestamp"])
    assert len(log) == 50_000 and log["user"].nunique() == 1_000 and log["item"].max() <= 2_000
    per_user = log.groupby("user").size()
    assert per_user.min() >= 5 and per_user.max() > 10 * per_user.median()  # log-normal activity: a heavy tail
    head = log["item"].value_counts().head(20).sum() / len(log)  # 1 % of the items
    assert head > 0.3  # Zipf popularity
    assert (log.groupby("user")["timestamp"].diff().dropna() > 0).all()
    assert log["rating"].between(1, 5).all() and np.issubdtype(log["timestamp"].dtype, np.integer)
