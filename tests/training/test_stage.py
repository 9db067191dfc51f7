"""Which checkpoints a training stage resumes from."""

import gc
import weakref

import numpy as np
import pandas as pd
import torch
from kedro.pipeline import Node
from more_itertools import interleave

from convncf_kedro.config.params import PhaseParams, TrainingParams
from convncf_kedro.interactions.lineage import content_hash
from convncf_kedro.interactions.prepare import positives_matrix
from convncf_kedro.models import MF, MFConfig
from convncf_kedro.training.stage import fingerprint, train_stage

TRAINING = TrainingParams(epochs=2, patience=5, select_start=True, threads=1)
SCHEDULE = (64, [PhaseParams(lr_embedding=0.05)])


def tiny_data():
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"user": rng.integers(0, 20, 300), "item": rng.integers(0, 30, 300)}).drop_duplicates()
    matrix = positives_matrix([train], 20, 30)
    valid = pd.DataFrame({"user": np.arange(20), "item": np.full(20, 29)})
    negatives = pd.DataFrame({"user": np.repeat(np.arange(20), 3), "item": np.tile([26, 27, 28], 20)})
    return matrix, valid, negatives


def data(matrix, valid, negatives) -> str:
    """The data fingerprint a training stage is given (ingestion's manifest hashes every output like this)."""
    return "-".join(content_hash(x) for x in (matrix, valid, negatives))


def model(seed=0):
    torch.manual_seed(seed)
    return MF(MFConfig(20, 30, 8))


def test_a_matching_checkpoint_is_resumed_and_a_stale_one_is_not():
    matrix, valid, negatives = tiny_data()
    first_epoch, *_ = next(train_stage("mf", model(), matrix, valid, negatives, None, *SCHEDULE, TRAINING, data(matrix, valid, negatives)))
    resumed = [c["epoch"] for c, _, _ in train_stage("mf", model(), matrix, valid, negatives, first_epoch, *SCHEDULE, TRAINING, data(matrix, valid, negatives))]
    assert resumed == [2]
    stale = {**first_epoch, "fingerprint": "made-elsewhere"}
    restarted = [c["epoch"] for c, _, _ in train_stage("mf", model(), matrix, valid, negatives, stale, *SCHEDULE, TRAINING, data(matrix, valid, negatives))]
    assert restarted == [1, 2]


def test_fingerprint_follows_starting_weights_and_data_not_run_settings():
    matrix, valid, negatives = tiny_data()
    base = fingerprint(model(), *SCHEDULE, TRAINING, data(matrix, valid, negatives))
    run_only = TRAINING.model_copy(update={"epochs": 9, "threads": 2})
    assert fingerprint(model(), *SCHEDULE, run_only, data(matrix, valid, negatives)) == base
    assert fingerprint(model(seed=1), *SCHEDULE, TRAINING, data(matrix, valid, negatives)) != base  # e.g. a retrained MF
    other_valid = valid.assign(item=28)
    assert fingerprint(model(), *SCHEDULE, TRAINING, data(matrix, other_valid, negatives)) != base
    other_phases = [PhaseParams(lr_embedding=0.01)]
    assert fingerprint(model(), 64, other_phases, TRAINING, data(matrix, valid, negatives)) != base



def test_kedro_keeps_no_earlier_epoch_alive_once_it_asks_for_the_next():
    """Kedro splits a generator node's tuples with itertools.tee, which holds every item of a block of 57: an epoch's
    checkpoint must not stay in memory after the runner has saved it and moved on (it is three model copies)."""
    matrix, valid, negatives = tiny_data()
    training = TRAINING.model_copy(update={"epochs": 6, "patience": 10})

    def train(resume_checkpoint):
        yield from train_stage("mf", model(), matrix, valid, negatives, resume_checkpoint, *SCHEDULE, training,
                               data(matrix, valid, negatives))

    node = Node(train, "resume", ["checkpoint", "model", "history"])
    streams = node.run({"resume": None}).values()
    weights = []  # the user embedding of every epoch's checkpoint, as the runner saw it
    for output in interleave(*streams):  # what Kedro's sequential runner does between saves
        if isinstance(output, dict) and "optimizer_states" in output:
            weights.append(weakref.ref(output["model"]["state_dict"]["user_embedding.weight"]))
    gc.collect()
    assert len(weights) == 6
    assert [w() is None for w in weights] == [True] * 6
