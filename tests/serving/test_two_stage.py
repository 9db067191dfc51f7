"""Two-stage ranking on real data: the model's embeddings shortlist, the graph re-ranks. A ConvNCF that equals its MF
(the `mf_identity` start) is the model where the answer is known: its shortlist holds its exhaustive top-10 at any
N ≥ 10, so two stages rank exactly as scoring every item does — in one process and on a LocalCluster(2) alike."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from convncf_kedro.config.params import EvaluationParams
from convncf_kedro.errors import ParameterError
from convncf_kedro.exporting.onnx_export import export_onnx, export_retrieval
from convncf_kedro.exporting.retrieval_check import ShortlistCheck, check_shortlists
from convncf_kedro.interactions.prepare import positives_matrix
from convncf_kedro.models import MF, ConvNCF, ConvNCFConfig, MFConfig
from convncf_kedro.ranking.full import hits_against, shortlist_unseen
from convncf_kedro.ranking.metrics import full_ranking_metrics_per_user
from convncf_kedro.serving.engine import RankSettings, rank_users
from convncf_kedro.serving.session import ModelMismatchError, check_same_weights, create_session

USERS = np.arange(0, 943, 10)  # 95 real users, in partitions of 16
EXHAUSTIVE = RankSettings(k=10, batch_pairs=4096, chunk_users=8, chunk_items=1682, device="cpu", log_every_seconds=60)


@pytest.fixture(scope="module")
def seen(shared_datasets) -> sp.csr_matrix:
    log = np.loadtxt(shared_datasets / "ml-100k/u.data", dtype=np.int64, usecols=(0, 1))
    return sp.csr_matrix((np.ones(len(log), np.float32), (log[:, 0] - 1, log[:, 1] - 1)), shape=(943, 1682))


@pytest.fixture(scope="module")
def graphs() -> tuple[bytes, bytes]:
    """A ConvNCF that scores exactly as its MF, and its retrieval graph (same weights)."""
    torch.manual_seed(0)
    mf = MF(MFConfig(943, 1682, 16, init_std=0.3))
    convncf = ConvNCF(ConvNCFConfig(943, 1682, 16, 4))
    convncf.start_from(mf, "mf_identity")
    metadata = {"model_sha256": "same-weights"}
    return (export_onnx(convncf, 18, metadata).SerializeToString(),
            export_retrieval(convncf, 18, metadata).SerializeToString())


def top_items(partitions) -> dict[int, np.ndarray]:
    return {int(u): items for part in partitions for u, items in zip(part.users, part.top_items, strict=True)}


def test_the_shortlist_holds_the_exhaustive_top_10_when_the_model_is_its_mf(graphs, seen):
    graph, retrieval = graphs
    exhaustive = top_items(rank_users(graph, seen, USERS, EXHAUSTIVE, 16))
    retriever = create_session(retrieval, "cpu", role="retrieval")
    shortlist = shortlist_unseen(lambda u: retriever.run(["scores"], {"user": u})[0], USERS, seen, 10)
    for user, short in zip(USERS, shortlist, strict=True):
        assert set(exhaustive[int(user)]) == set(short)  # recall 1 at N = 10


@pytest.mark.parametrize("size", [10, 50, 5000])  # 5000 > 1,682 items: every item is a candidate
def test_two_stages_rank_as_every_item_does_for_a_model_equal_to_its_mf(graphs, seen, size):
    graph, retrieval = graphs
    exhaustive = top_items(rank_users(graph, seen, USERS, EXHAUSTIVE, 16))
    two_stage = top_items(rank_users(graph, seen, USERS, RankSettings(**{**EXHAUSTIVE.__dict__, "shortlist": size}), 16,
                                     retrieval=retrieval))
    for user in exhaustive:
        np.testing.assert_array_equal(two_stage[user], exhaustive[user])


def test_two_stages_on_a_local_cluster_equal_one_process(graphs, seen):
    graph, retrieval = graphs
    settings = RankSettings(**{**EXHAUSTIVE.__dict__, "shortlist": 40})
    here = list(rank_users(graph, seen, USERS, settings, 16, retrieval=retrieval))
    there = list(rank_users(graph, seen, USERS, settings, 16, cluster="local:2", retrieval=retrieval))
    scores_here = {int(u): s for p in here for u, s in zip(p.users, p.top_scores, strict=True)}
    scores_there = {int(u): s for p in there for u, s in zip(p.users, p.top_scores, strict=True)}
    items_here, items_there = top_items(here), top_items(there)
    assert sorted(items_here) == sorted(items_there) == USERS.tolist()
    for user in items_here:
        np.testing.assert_array_equal(items_there[user], items_here[user])
        np.testing.assert_allclose(scores_there[user], scores_here[user], atol=1e-6)


def test_a_retrieval_graph_of_other_weights_is_refused(graphs):
    graph, _ = graphs
    torch.manual_seed(1)
    other = export_retrieval(MF(MFConfig(943, 1682, 16)), 18, {"model_sha256": "other-weights"}).SerializeToString()
    with pytest.raises(ModelMismatchError, match="exported from other weights .*re-run export"):
        check_same_weights(graph, other)


EVALUATION = {"ks": [10], "protocols": ["full"], "chunk_users": 8, "chunk_items": 512, "batch_pairs": 256}


@pytest.mark.parametrize(("retrieve", "message"), [(0, "at least 1"), (2.5, "valid integer"), ("many", "valid integer")])
def test_a_shortlist_size_that_cannot_work_is_named(retrieve, message):
    from convncf_kedro.config.params import parse_params

    with pytest.raises(ParameterError, match=rf"parameter 'evaluation.candidates.retrieve': .*{message}"):
        parse_params(EvaluationParams, {**EVALUATION, "candidates": {"retrieve": retrieve}}, "evaluation")


def test_auto_takes_exports_choice_and_stops_when_there_is_none():
    params = EvaluationParams.model_validate({**EVALUATION, "candidates": {"retrieve": "auto"}})
    assert params.shortlist({"chosen": 200}, "evaluation") == 200
    with pytest.raises(ParameterError, match="evaluation.candidates.retrieve.*found no shortlist"):
        params.shortlist({"chosen": None}, "evaluation")
    assert EvaluationParams.model_validate(EVALUATION).shortlist(None, "evaluation") is None


def test_the_export_check_ranks_every_shortlist_as_the_engine_does(seen):
    """The check scores each sampled user's items once and re-ranks every shortlist from those scores: its NDCG@10
    differences are the engine's own two-stage rankings' (a tower that is not its MF, so sizes differ)."""
    torch.manual_seed(3)
    mf, convncf = MF(MFConfig(943, 1682, 16, init_std=1.0)), ConvNCF(ConvNCFConfig(943, 1682, 16, 4))
    convncf.start_from(mf, "truncated_normal")
    metadata = {"model_sha256": "same-weights"}
    graph = export_onnx(convncf, 18, metadata).SerializeToString()
    retrieval = export_retrieval(convncf, 18, metadata).SerializeToString()
    held_out = seen[USERS].tocoo()  # one seen item per user plays the validation item
    first = np.unique(held_out.row, return_index=True)[1]
    valid = pd.DataFrame({"user": USERS[held_out.row[first]], "item": held_out.col[first]})
    train = seen.tolil()
    train[valid["user"], valid["item"]] = 0
    train = train.tocsr()
    train.eliminate_zeros()
    check = ShortlistCheck(users=len(USERS), shortlists=[10, 400], min_recall=0.99, seed=0, engine=EXHAUSTIVE,
                           confidence=0.95, resamples=200, interval_seed=0)
    result = check_shortlists(graph, retrieval, train, valid, check)

    relevant = positives_matrix([valid], 943, 1682)

    def ndcg(partitions) -> np.ndarray:
        top = top_items(partitions)
        hits = hits_against(np.stack([top[int(u)] for u in USERS]), USERS, relevant)
        return full_ranking_metrics_per_user(hits, np.ones(len(USERS)), [10])["ndcg@10"]

    exhaustive = ndcg(rank_users(graph, train, USERS, EXHAUSTIVE, 16, ties_last=relevant))
    differences = [float(np.mean(ndcg(rank_users(graph, train, USERS, dataclasses.replace(EXHAUSTIVE, shortlist=size),
                                                 16, ties_last=relevant, retrieval=retrieval)) - exhaustive))
                   for size in (10, 400)]
    assert [row["difference"] for row in result["shortlists"]] == pytest.approx(differences, abs=1e-12)
    assert differences[0] != differences[1]  # the sizes rank differently: the comparison can fail
