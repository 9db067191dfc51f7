"""The scoring engine on MovieLens 100K's real interactions, at the shipped sizes (d = 64, C = 32): in this
process and on a Dask LocalCluster of two worker processes, with one worker killed mid-run."""

import os
import signal

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from distributed import Client, LocalCluster

from convncf_kedro.exporting.onnx_export import export_onnx
from convncf_kedro.models import ConvNCF, ConvNCFConfig
from convncf_kedro.serving.engine import RankSettings, partitions_of, rank_users

SETTINGS = RankSettings(k=10, batch_pairs=256, chunk_users=8, chunk_items=2048, device="cpu", log_every_seconds=60)
USERS = np.arange(0, 943, 10)  # 95 real users, in partitions of 8 (12 tasks)


@pytest.fixture(scope="module")
def seen(shared_datasets) -> sp.csr_matrix:
    log = np.loadtxt(shared_datasets / "ml-100k/u.data", dtype=np.int64, usecols=(0, 1))
    return sp.csr_matrix((np.ones(len(log), np.float32), (log[:, 0] - 1, log[:, 1] - 1)), shape=(943, 1682))


@pytest.fixture(scope="module")
def graph() -> bytes:
    torch.manual_seed(0)
    model = ConvNCF(ConvNCFConfig(943, 1682, 64, 32))  # the paper's tower; its weights do not matter here
    torch.nn.init.normal_(model.user_embedding.weight, std=0.3)
    torch.nn.init.normal_(model.item_embedding.weight, std=0.3)
    return export_onnx(model, 18, {}).SerializeToString()


@pytest.fixture(scope="module")
def in_process(graph, seen) -> dict[int, tuple]:
    return ranked_by_user(rank_users(graph, seen, USERS, SETTINGS, 8))


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as local, \
            Client(local) as client:
        yield local, client


def ranked_by_user(partitions) -> dict[int, tuple]:
    """user → (items, scores); fails if a user comes back twice."""
    out = {}
    for part in partitions:
        for user, items, scores in zip(part.users, part.top_items, part.top_scores, strict=True):
            assert user not in out, f"user {user} was ranked twice"
            out[int(user)] = (items, scores)
    return out


def assert_same_ranking(actual: dict, expected: dict) -> None:
    assert sorted(actual) == sorted(expected) == USERS.tolist()
    for user, (items, scores) in expected.items():
        assert (actual[user][0] == items).all(), f"user {user}: other items or order"
        np.testing.assert_allclose(actual[user][1], scores, atol=1e-6)


def test_in_process_ranking_masks_seen_items_and_keeps_the_k_best(in_process, seen):
    for user, (items, scores) in in_process.items():
        assert len(set(items)) == 10 and not seen[user, items].toarray().any()
        assert (np.diff(scores) <= 0).all()


def test_partitions_cover_every_user_once():
    parts = partitions_of(USERS, 8)
    assert len(parts) == 12 and np.array_equal(np.concatenate(parts), USERS)


def test_a_local_cluster_of_two_workers_ranks_exactly_as_one_process(graph, seen, in_process):
    assert_same_ranking(ranked_by_user(rank_users(graph, seen, USERS, SETTINGS, 8, cluster="local:2")), in_process)


def test_partitions_of_a_killed_worker_are_rerun_and_every_user_comes_back_once(graph, seen, in_process, cluster):
    local, client = cluster
    results = []
    killed = None
    for part in rank_users(graph, seen, USERS, SETTINGS, 8, cluster=local.scheduler_address):
        results.append(part)
        if killed is None:  # mid-run: one partition back, eleven to go
            pids = client.run(os.getpid)
            killed = next(iter(pids.values()))
            os.kill(killed, signal.SIGKILL)
    assert len(results) == 12 and killed not in client.run(os.getpid).values()
    assert_same_ranking(ranked_by_user(results), in_process)
