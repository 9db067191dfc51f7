"""The epoch loop: seeded runs repeat, resumed runs match uninterrupted ones, NaN stops with a clear error."""

import numpy as np
import pandas as pd
import pytest
import torch

from convncf_kedro.interactions.prepare import positives_matrix, sample_negatives
from convncf_kedro.models import MF
from convncf_kedro.ranking.sampled import candidate_matrix
from convncf_kedro.training.loop import TrainingDivergedError, TrainSettings, fit

SETTINGS = TrainSettings(
    name="mf", epochs=4, batch_size=256, optimizer="adagrad", lr_embedding=0.05, lr_tower=0.05, warmup_steps=0,
    patience=10, selection_metric="ndcg@10", eval_ks=(10,), eval_batch_pairs=4096, seed=3, precision="fp32",
    log_every_seconds=30,
)


@pytest.fixture(scope="module")
def small_data(shared_datasets):
    """The first 100 users of ml-100k: train matrix and validation candidates."""
    raw = pd.read_csv(shared_datasets / "ml-100k/u.data", sep="\t", names=["user", "item", "rating", "ts"])
    raw = raw[raw["user"] <= 100].assign(user=lambda f: f["user"] - 1, item=lambda f: f["item"] - 1)
    latest = raw.sort_values("ts").groupby("user").tail(1)
    train = raw.drop(latest.index)
    matrix = positives_matrix([train], 100, 1682)
    negatives = sample_negatives(latest["user"].to_numpy(), positives_matrix([raw], 100, 1682), 50, np.random.default_rng(0))
    users, items = candidate_matrix(latest[["user", "item"]], negatives)
    return matrix, users, items


def run(small_data, settings=SETTINGS, resume_from=None, model=None):
    matrix, users, items = small_data
    torch.manual_seed(settings.seed)
    model = model or MF(100, 1682, 16, reg_embedding=1e-4)
    return list(fit(model, matrix, users, items, settings, torch.device("cpu"), resume_from))


def test_one_checkpoint_per_epoch_with_history_and_best(small_data):
    checkpoints = run(small_data)
    assert [c["epoch"] for c in checkpoints] == [1, 2, 3, 4]
    final = checkpoints[-1]
    assert [row["epoch"] for row in final["history"]] == [0, 1, 2, 3, 4]
    best_row = max(final["history"][1:], key=lambda row: row["ndcg@10"])
    assert final["best"]["epoch"] == best_row["epoch"]
    assert final["history"][-1]["ndcg@10"] > final["history"][0]["ndcg@10"]  # it learns
    assert final["finished"]


def test_same_seed_same_result(small_data):
    first, second = run(small_data)[-1], run(small_data)[-1]
    assert [r["ndcg@10"] for r in first["history"]] == [r["ndcg@10"] for r in second["history"]]
    assert [r["loss"] for r in first["history"][1:]] == [r["loss"] for r in second["history"][1:]]
    for name, tensor in first["state_dict"].items():
        assert torch.equal(tensor, second["state_dict"][name]), name


def test_resuming_from_epoch_two_reaches_the_uninterrupted_result(small_data):
    uninterrupted = run(small_data)[-1]
    after_two = run(small_data)[1]
    resumed = run(small_data, resume_from=after_two)
    assert [c["epoch"] for c in resumed] == [3, 4]
    for name, tensor in uninterrupted["state_dict"].items():
        assert torch.equal(tensor, resumed[-1]["state_dict"][name]), name
    assert [r["ndcg@10"] for r in resumed[-1]["history"]] == [r["ndcg@10"] for r in uninterrupted["history"]]


class ExplodingMF(MF):
    """An MF whose loss turns NaN at one chosen step of one epoch."""

    def __init__(self, *args, explode_at: tuple[int, int], **kwargs):
        super().__init__(*args, **kwargs)
        self.explode_at, self.calls = explode_at, 0

    def calculate_loss(self, interaction):
        epoch, step = self.explode_at
        steps_per_epoch = -(-self.steps_total // SETTINGS.batch_size)
        loss = super().calculate_loss(interaction)
        self.calls += 1
        if self.calls == (epoch - 1) * steps_per_epoch + step + 1:
            return loss * float("nan")
        return loss


def test_nan_loss_stops_with_epoch_and_step_and_keeps_the_last_good_checkpoint(small_data):
    matrix, _, _ = small_data
    model = ExplodingMF(100, 1682, 16, explode_at=(2, 5))
    model.steps_total = matrix.nnz
    saved = []
    with pytest.raises(TrainingDivergedError, match=r"loss is nan at epoch 2, step 5; the last good checkpoint \(epoch 1\)"):
        for checkpoint in fit(model, *small_data, SETTINGS, torch.device("cpu")):
            saved.append(checkpoint)
    assert [c["epoch"] for c in saved] == [1]
