"""The epoch loop: seeded runs repeat, resumed runs match uninterrupted ones, NaN stops with a clear error."""

import logging
import re
import time

import numpy as np
import pandas as pd
import pytest
import torch

from convncf_kedro.config.params import PhaseParams, TrainingParams
from convncf_kedro.interactions.prepare import positives_matrix, sample_negatives
from convncf_kedro.models import MF, MFConfig
from convncf_kedro.ranking.metrics import NonFiniteScoresError
from convncf_kedro.ranking.sampled import candidate_matrix
from convncf_kedro.training.loop import TrainingDivergedError, fit, phase_of_epoch
from convncf_kedro.training.stage import loop_phases, loop_settings

TRAINING = TrainingParams(epochs=4, patience=10, select_start=True, eval_batch_pairs=4096, seed=3)
BATCH = 256
PHASES = [PhaseParams(lr_embedding=0.05)]


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


def mf(**kwargs):
    return MF(MFConfig(100, 1682, 16, reg_embedding=1e-4, **kwargs))


def run(small_data, phases=PHASES, resume_from=None, model=None):
    matrix, users, items = small_data
    torch.manual_seed(TRAINING.seed)
    model = model or mf()
    return list(fit(model, matrix, users, items, BATCH, loop_phases(phases), loop_settings(TRAINING), torch.device("cpu"), "mf", resume_from))


def test_one_checkpoint_per_epoch_with_history_and_best(small_data):
    checkpoints = run(small_data)
    assert [c["epoch"] for c in checkpoints] == [1, 2, 3, 4]
    final = checkpoints[-1]
    assert [row["epoch"] for row in final["history"]] == [0, 1, 2, 3, 4]
    best_row = max(final["history"], key=lambda row: row["ndcg@10"])
    assert final["best"]["epoch"] == best_row["epoch"]
    assert final["history"][-1]["ndcg@10"] > final["history"][0]["ndcg@10"]  # it learns
    assert final["stopped"] == "reached the cap of 4 epochs"


def test_same_seed_same_result(small_data):
    first, second = run(small_data)[-1], run(small_data)[-1]
    assert [r["ndcg@10"] for r in first["history"]] == [r["ndcg@10"] for r in second["history"]]
    assert [r["loss"] for r in first["history"][1:]] == [r["loss"] for r in second["history"][1:]]
    for name, tensor in first["model"]["state_dict"].items():
        assert torch.equal(tensor, second["model"]["state_dict"][name]), name


@pytest.mark.parametrize("select_start", [True, False])
def test_a_start_no_epoch_improves_on_is_kept_only_when_the_start_may_be_selected(small_data, select_start):
    matrix, users, items = small_data
    trained = run(small_data)[-1]["best"]["model"]  # a good start, as MF is for ConvNCF
    model = mf()
    model.load_saved(trained)
    harmful = [PhaseParams(lr_embedding=5.0)]  # every step overshoots: no epoch beats the start
    training = TRAINING.model_copy(update={"select_start": select_start, "epochs": 2})
    final = list(fit(model, matrix, users, items, BATCH, loop_phases(harmful), loop_settings(training), torch.device("cpu"), "mf"))[-1]
    start, later = final["history"][0]["ndcg@10"], [row["ndcg@10"] for row in final["history"][1:]]
    assert max(later) < start
    if select_start:
        assert final["best"]["epoch"] == 0 and final["best"]["metric"] == start
        for name, tensor in trained["state_dict"].items():
            assert torch.equal(tensor, final["best"]["model"]["state_dict"][name]), name
    else:
        assert final["best"]["epoch"] >= 1 and final["best"]["metric"] == max(later) < start


TWO_PHASES = [PhaseParams(epochs=2, lr_embedding=0.01, regularised=False, adagrad_initial_accumulator=0.1),
              PhaseParams(lr_embedding=0.05)]


@pytest.mark.parametrize("phases", [PHASES, TWO_PHASES], ids=["one phase", "resumed at a phase change"])
def test_resuming_from_epoch_two_reaches_the_uninterrupted_result(small_data, phases):
    uninterrupted = run(small_data, phases)[-1]
    after_two = run(small_data, phases)[1]
    resumed = run(small_data, phases, resume_from=after_two)
    assert [c["epoch"] for c in resumed] == [3, 4]
    for name, tensor in uninterrupted["model"]["state_dict"].items():
        assert torch.equal(tensor, resumed[-1]["model"]["state_dict"][name]), name
    assert [r["ndcg@10"] for r in resumed[-1]["history"]] == [r["ndcg@10"] for r in uninterrupted["history"]]


def test_phases_follow_each_other_by_epoch_and_each_starts_fresh_optimisers(small_data):
    assert [phase_of_epoch(loop_phases(TWO_PHASES), e) for e in (1, 2, 3, 9)] == [0, 0, 1, 1]
    checkpoints = run(small_data, TWO_PHASES)
    assert [c["phase"] for c in checkpoints] == [0, 0, 1, 1]
    assert [row["phase"] for row in checkpoints[-1]["history"]] == [0, 0, 0, 1, 1]
    # the unregularised first phase: same steps without L2 give a different model than with it
    regularised = run(small_data, [PhaseParams(epochs=2, lr_embedding=0.01, adagrad_initial_accumulator=0.1),
                                   PhaseParams(lr_embedding=0.05)])
    assert regularised[0]["history"][1]["loss"] > checkpoints[0]["history"][1]["loss"]


class ExplodingMF(MF):
    """An MF whose loss turns NaN at one chosen step of one epoch."""

    def __init__(self, config, explode_at: tuple[int, int]):
        super().__init__(config)
        self.explode_at, self.calls = explode_at, 0

    def calculate_loss(self, interaction, regularised=True, weights_reg=True):
        epoch, step = self.explode_at
        steps_per_epoch = -(-self.steps_total // BATCH)
        loss = super().calculate_loss(interaction, regularised, weights_reg)
        self.calls += 1
        if self.calls == (epoch - 1) * steps_per_epoch + step + 1:
            return loss * float("nan")
        return loss


def test_nan_loss_stops_with_epoch_and_step_and_keeps_the_last_good_checkpoint(small_data):
    matrix, _, _ = small_data
    model = ExplodingMF(MFConfig(100, 1682, 16), explode_at=(2, 5))
    model.steps_total = matrix.nnz
    saved = []
    with pytest.raises(TrainingDivergedError, match=r"loss is nan at epoch 2, step 5; the last good checkpoint \(epoch 1\)"):
        for checkpoint in fit(model, *small_data, BATCH, loop_phases(PHASES), loop_settings(TRAINING), torch.device("cpu"), "mf"):
            saved.append(checkpoint)
    assert [c["epoch"] for c in saved] == [1]


class NaNScoringMF(MF):
    """Trains normally, but its scores turn NaN from epoch 2 on (weights gone bad after the last step)."""

    def forward(self, user, item):
        scores = super().forward(user, item)
        return scores * float("nan") if not self.training and self.epochs_trained >= 2 else scores

    def train(self, mode=True):
        if mode:
            self.epochs_trained = getattr(self, "epochs_trained", 0) + 1
        return super().train(mode)


def test_nan_scores_at_validation_stop_the_run_instead_of_validating_as_best(small_data):
    model = NaNScoringMF(MFConfig(100, 1682, 16))
    model.epochs_trained = -1  # fit's own model.train() calls count from 0 at epoch 1
    saved = []
    with pytest.raises(NonFiniteScoresError, match=r"mf at epoch 2 \(validation\): .* scores are NaN"):
        for checkpoint in fit(model, *small_data, BATCH, loop_phases(PHASES), loop_settings(TRAINING), torch.device("cpu"), "mf"):
            saved.append(checkpoint)
    assert [c["epoch"] for c in saved] == [1]


def overshooting_from_a_trained_start(small_data, training):
    """A trained MF that every further step makes worse, so validation never improves: patience decides."""
    matrix, users, items = small_data
    model = mf()
    model.load_saved(run(small_data)[-1]["best"]["model"])
    return fit(model, matrix, users, items, BATCH, loop_phases([PhaseParams(lr_embedding=5.0)]), loop_settings(training), torch.device("cpu"), "mf")


def test_early_stopping_counts_checks_not_epochs_and_says_why(small_data):
    training = TRAINING.model_copy(update={"epochs": 20, "validate_every": 2, "patience": 2})
    checkpoints = list(overshooting_from_a_trained_start(small_data, training))
    final = checkpoints[-1]
    assert [c["epoch"] for c in checkpoints] == [1, 2, 3, 4]  # checks at 2 and 4 find nothing better: stop
    assert final["stopped"] == ("stopped early at epoch 4: no better validation ndcg@10 in 2 checks (every 2 "
                                "epochs) since epoch 0")
    history = pd.DataFrame(final["history"])
    assert history["ndcg@10"].notna().tolist() == [True, False, True, False, True]  # epoch 0, then every 2nd
    assert history["stopped"].tolist()[-1] == final["stopped"] and history["stopped"].iloc[:-1].isna().all()


def test_no_early_stop_before_min_epochs(small_data):
    training = TRAINING.model_copy(update={"epochs": 20, "validate_every": 2, "patience": 1, "min_epochs": 6})
    final = list(overshooting_from_a_trained_start(small_data, training))[-1]
    assert final["epoch"] == 6 and final["stopped"].startswith("stopped early at epoch 6")


def test_a_resumed_run_stops_where_the_uninterrupted_one_stops(small_data):
    training = TRAINING.model_copy(update={"epochs": 9, "validate_every": 2, "patience": 2})
    uninterrupted = list(overshooting_from_a_trained_start(small_data, training))
    matrix, users, items = small_data
    interrupted_at = uninterrupted[2]  # after epoch 3, between two checks
    resumed = list(fit(mf(), matrix, users, items, BATCH, loop_phases([PhaseParams(lr_embedding=5.0)]), loop_settings(training),
                       torch.device("cpu"), "mf", interrupted_at))
    assert [c["epoch"] for c in resumed] == [4] and resumed[-1]["stopped"] == uninterrupted[-1]["stopped"]
    same = ["epoch", "loss", "ndcg@10", "hr@10", "stopped"]  # all but the timings
    pd.testing.assert_frame_equal(pd.DataFrame(resumed[-1]["history"])[same], pd.DataFrame(uninterrupted[-1]["history"])[same])
    more_patience = training.model_copy(update={"patience": 3})  # a stopped run continues under a larger budget
    continued = list(fit(mf(), matrix, users, items, BATCH, loop_phases([PhaseParams(lr_embedding=5.0)]), loop_settings(more_patience),
                         torch.device("cpu"), "mf", resumed[-1]))
    assert [c["epoch"] for c in continued] == [5, 6]


def test_a_stage_announces_what_it_will_cost_before_spending_it(small_data, caplog):
    with caplog.at_level(logging.INFO, logger="convncf_kedro.training.loop"):
        run(small_data)
    messages = [record.getMessage() for record in caplog.records]
    projected = [n for n, message in enumerate(messages) if "triples/s over the first batches" in message]
    first_epoch_done = next(n for n, message in enumerate(messages) if message.startswith("mf epoch 1/4"))
    assert len(projected) == 1 and projected[0] < first_epoch_done
    assert "at most 4 more epochs and 4 validation checks" in messages[projected[0]]


def test_a_time_budget_reached_within_the_first_epoch_stops_it_there_and_keeps_the_best(small_data):
    matrix, users, items = small_data
    budget = TRAINING.model_copy(update={"time_budget_minutes": 1e-6})  # spent by the first step
    torch.manual_seed(TRAINING.seed)
    checkpoints = list(fit(mf(), matrix, users, items, BATCH, loop_phases(PHASES), loop_settings(budget),
                           torch.device("cpu"), "mf"))
    last = checkpoints[-1]
    assert [c["epoch"] for c in checkpoints] == [1]
    assert re.fullmatch(rf"stopped within epoch 1 at the time budget of 1e-06 min \(training.time_budget_minutes\): "
                        rf"{BATCH:,} of its {matrix.nnz:,} triples trained; the best epoch so far \([01]\) is kept",
                        last["stopped"])
    assert last["history"][-1]["stopped"] == last["stopped"] and "ndcg@10" in last["history"][-1]  # validated
    assert last["best"]["model"] is not None
    unlimited = run(small_data)[0]  # the whole first epoch trains on: a different model
    assert last["history"][-1]["loss"] != unlimited["history"][1]["loss"]


class BF16HurtsMF(MF):
    """Climbs the loss instead of descending it whenever it trains under bf16 autocast: bf16 then validates unlike
    fp32, whatever the machine's bf16 arithmetic."""

    def calculate_loss(self, interaction, regularised=True, weights_reg=True):
        loss = super().calculate_loss(interaction, regularised, weights_reg)
        return -loss if torch.is_autocast_enabled("cpu") else loss


class SlowIn(MF):
    """The same MF, its step made slower (a sleep) in one precision, so which one trains faster is known."""

    slow_in = "fp32"

    def calculate_loss(self, interaction, regularised=True, weights_reg=True):
        if ("bf16" if torch.is_autocast_enabled("cpu") else "fp32") == self.slow_in:
            time.sleep(0.02)  # ~40 batches an epoch: 0.8 s, more than bf16 and fp32 differ by on any CPU
        return super().calculate_loss(interaction, regularised, weights_reg)


class BF16FasterMF(SlowIn):
    slow_in = "fp32"


class BF16SlowerMF(SlowIn):
    slow_in = "bf16"


def run_in(small_data, precision, model_class=MF, resume_from=None):
    matrix, users, items = small_data
    torch.manual_seed(TRAINING.seed)
    training = TRAINING.model_copy(update={"precision": precision, "select_start": False})
    model = model_class(MFConfig(100, 1682, 16, reg_embedding=1e-4))
    return list(fit(model, matrix, users, items, BATCH, loop_phases(PHASES), loop_settings(training),
                    torch.device("cpu"), "mf", resume_from))


def test_precision_auto_trains_on_in_bf16_when_its_first_epoch_validates_like_fp32_and_trains_faster(small_data, caplog):
    with caplog.at_level(logging.INFO, logger="convncf_kedro.training.loop"):
        auto = run_in(small_data, "auto", model_class=BF16FasterMF)
    bf16, fp32 = run_in(small_data, "bf16", model_class=BF16FasterMF)[-1], run_in(small_data, "fp32")[-1]
    first = auto[0]["history"][1]
    assert first["bf16_ndcg@10"] == bf16["history"][1]["ndcg@10"] and first["fp32_ndcg@10"] == fp32["history"][1]["ndcg@10"]
    assert [row["precision"] for row in auto[-1]["history"][1:]] == ["bf16"] * 4
    assert auto[-1]["best"]["model"]["trained_in"] == "bf16"
    for name, tensor in bf16["model"]["state_dict"].items():  # bf16's first epoch kept, and bf16 from there
        assert torch.equal(auto[-1]["model"]["state_dict"][name], tensor), name
    assert first["bf16_triples_per_second"] > first["fp32_triples_per_second"]
    assert any("precision auto: the first epoch validates at ndcg@10" in r.message and "it trains in bf16" in r.message
               for r in caplog.records)
    resumed = run_in(small_data, "auto", model_class=BF16FasterMF, resume_from=auto[0])  # decided once: a resumed run keeps it
    assert [row["precision"] for row in resumed[-1]["history"][1:]] == ["bf16"] * 4
    assert "bf16_ndcg@10" not in resumed[-1]["history"][2]
    assert torch.equal(resumed[-1]["model"]["state_dict"]["user_embedding.weight"],
                       auto[-1]["model"]["state_dict"]["user_embedding.weight"])


def test_precision_auto_trains_in_fp32_when_bf16_validates_alike_but_is_not_faster(small_data):
    auto = run_in(small_data, "auto", model_class=BF16SlowerMF)[-1]
    fp32 = run_in(small_data, "fp32", model_class=BF16SlowerMF)[-1]
    first = auto["history"][1]
    assert round(first["bf16_ndcg@10"], 3) == round(first["fp32_ndcg@10"], 3)
    assert first["bf16_triples_per_second"] < first["fp32_triples_per_second"]
    assert [row["precision"] for row in auto["history"][1:]] == ["fp32"] * 4
    for name, tensor in fp32["model"]["state_dict"].items():
        assert torch.equal(auto["model"]["state_dict"][name], tensor), name


def test_precision_auto_trains_in_fp32_when_bf16_validates_otherwise(small_data):
    auto = run_in(small_data, "auto", model_class=BF16HurtsMF)[-1]
    fp32 = run_in(small_data, "fp32", model_class=BF16HurtsMF)[-1]
    first = auto["history"][1]
    assert round(first["bf16_ndcg@10"], 3) != round(first["fp32_ndcg@10"], 3)
    assert [row["precision"] for row in auto["history"][1:]] == ["fp32"] * 4
    assert [row["ndcg@10"] for row in auto["history"]] == [row["ndcg@10"] for row in fp32["history"]]
    for name, tensor in fp32["model"]["state_dict"].items():  # as if bf16 had never been tried
        assert torch.equal(auto["model"]["state_dict"][name], tensor), name
