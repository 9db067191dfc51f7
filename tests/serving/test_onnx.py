"""ONNX export and ONNX Runtime scoring on a small random ConvNCF."""

import numpy as np
import onnx
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from convncf_kedro.datasets import OnnxModelDataset
from convncf_kedro.exporting.onnx_export import export_onnx
from convncf_kedro.models import ConvNCF, ConvNCFConfig
from convncf_kedro.ranking.full import top_k_unseen
from convncf_kedro.serving.engine import RankSettings
from convncf_kedro.serving.onnx_scoring import main
from convncf_kedro.serving.recommend import recommend
from convncf_kedro.serving.session import (
    ModelMismatchError,
    create_session,
    id_maps_hash,
    model_metadata,
)

N_USERS, N_ITEMS = 30, 80


@pytest.fixture(scope="module")
def maps():
    users = pd.DataFrame({"index": np.arange(N_USERS), "raw_id": [f"u{i}" for i in range(N_USERS)]})
    items = pd.DataFrame({"index": np.arange(N_ITEMS), "raw_id": [f"i{i}" for i in range(N_ITEMS)]})
    return users, items


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = ConvNCF(ConvNCFConfig(N_USERS, N_ITEMS, 16, 8))
    torch.nn.init.normal_(m.user_embedding.weight, std=0.5)
    torch.nn.init.normal_(m.item_embedding.weight, std=0.5)
    return m.eval()


@pytest.fixture(scope="module")
def exported(model, maps):
    return export_onnx(model, 18, {"id_maps_sha256": id_maps_hash(*maps), "n_users": N_USERS})


@pytest.fixture(scope="module")
def seen():
    rng = np.random.default_rng(0)
    m = sp.csr_matrix((np.ones(300, np.float32), (rng.integers(0, N_USERS, 300), rng.integers(0, N_ITEMS, 300))),
                      shape=(N_USERS, N_ITEMS))
    m.sum_duplicates()
    m.data[:] = 1
    return m


def session_of(proto):
    return create_session(proto.SerializeToString(), "auto")


@pytest.mark.parametrize("n", [1, 7, 4096])
def test_onnx_runtime_matches_pytorch_for_any_batch_size(model, exported, n):
    users = np.random.default_rng(n).integers(0, N_USERS, n)
    items = np.random.default_rng(n + 1).integers(0, N_ITEMS, n)
    (scores,) = session_of(exported).run(["score"], {"user": users, "item": items})
    with torch.no_grad():
        expected = model(torch.from_numpy(users), torch.from_numpy(items)).numpy()
    assert scores.shape == (n,) and scores.dtype == np.float32
    np.testing.assert_allclose(scores, expected, atol=1e-4, rtol=0)


def test_graph_is_one_checked_file_with_metadata(exported, tmp_path):
    onnx.checker.check_model(exported)
    assert [i.name for i in exported.graph.input] == ["user", "item"]
    assert [o.name for o in exported.graph.output] == ["score"]
    OnnxModelDataset(str(tmp_path / "m.onnx")).save(exported)
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]  # no external-data side file
    assert model_metadata(session_of(exported))["n_users"] == str(N_USERS)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: scripts/gpu_check.sh checks CUDA")
def test_cpu_provider_is_what_ran_on_a_machine_without_gpu(exported):
    session = create_session(exported.SerializeToString(), "auto")
    assert session.get_providers()[0] == "CPUExecutionProvider"
    with pytest.raises(RuntimeError, match="cannot use a GPU"):
        create_session(exported.SerializeToString(), "cuda")


def test_sessions_treat_denormal_floats_as_zero(exported):
    """Strongly regularised towers hold denormal weights; computed as such, they are several times slower."""
    session = create_session(exported.SerializeToString(), "cpu")
    assert session.get_session_options().get_session_config_entry("session.set_denormal_as_zero") == "1"


def test_recommendations_are_the_pytorch_top_k_of_unseen_items_with_raw_ids(model, exported, maps, seen):
    parts, report = recommend(exported.SerializeToString(), *maps, seen,
                              RankSettings(5, batch_pairs=37, chunk_users=4, chunk_items=23), partition_users=7)
    assert report["scored"] == N_USERS and report["unknown_count"] == 0
    assert list(parts) == [f"part-0000{i}" for i in range(5)]  # 30 users in partitions of at most 7
    recs = pd.concat(parts.values(), ignore_index=True)
    with torch.no_grad():
        dense = model(torch.arange(N_USERS).repeat_interleave(N_ITEMS), torch.arange(N_ITEMS).repeat(N_USERS))
    dense = dense.numpy().reshape(N_USERS, N_ITEMS)
    expected, _ = top_k_unseen(lambda u, i: dense[np.ix_(u, i)], np.arange(N_USERS), seen, 5, N_USERS, N_ITEMS)
    got = recs.pivot(index="user_id", columns="rank", values="item_id").loc[[f"u{u}" for u in range(N_USERS)]]
    assert (got.to_numpy() == np.vectorize(lambda i: f"i{i}")(expected)).all()
    seen_pairs = {(f"u{u}", f"i{i}") for u, i in zip(*seen.nonzero(), strict=True)}
    assert not seen_pairs & set(zip(recs["user_id"], recs["item_id"], strict=True))


def test_unknown_users_are_reported_and_skipped_or_given_popular_items(exported, maps, seen):
    graph = exported.SerializeToString()
    parts, report = recommend(graph, *maps, seen, RankSettings(3), raw_user_ids=["u1", "nobody", "u2", "ghost"])
    assert sorted(pd.concat(parts.values())["user_id"].unique()) == ["u1", "u2"]
    assert report["unknown_count"] == 2 and report["unknown_user_ids"] == ["nobody", "ghost"]
    parts, _ = recommend(graph, *maps, seen, RankSettings(3), raw_user_ids=["nobody"], unknown_users="popular")
    recs = parts["unknown"]
    popular = np.argsort(-np.asarray(seen.sum(axis=0)).ravel(), kind="stable")[:3]
    assert recs["item_id"].tolist() == [f"i{i}" for i in popular]


def test_id_maps_that_do_not_match_the_model_are_rejected(exported, maps, seen):
    users, items = maps
    shuffled = items.assign(raw_id=items["raw_id"].sample(frac=1, random_state=0).to_numpy())
    with pytest.raises(ModelMismatchError, match="id maps do not match the model"):
        recommend(exported.SerializeToString(), users, shuffled, seen, RankSettings(3))


def test_a_file_that_is_not_a_model_gets_a_clear_error(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"certainly not protobuf")
    with pytest.raises(ModelMismatchError, match="not a usable ONNX model"):
        create_session(str(bad))


def test_a_seen_matrix_of_the_wrong_shape_is_named_with_what_was_expected(exported, maps, seen, tmp_path, capsys):
    wrong = sp.csr_matrix((N_USERS, N_ITEMS - 1), dtype=np.float32)
    with pytest.raises(ModelMismatchError, match=rf"seen: the seen-items matrix is 30 × 79, but the id maps have 30 users × {N_ITEMS} items"):
        recommend(exported.SerializeToString(), *maps, wrong, RankSettings(3))
    users, items = maps
    paths = {"model": tmp_path / "m.onnx", "user-map": tmp_path / "u.parquet", "item-map": tmp_path / "i.parquet",
             "seen": tmp_path / "seen.npz"}
    OnnxModelDataset(str(paths["model"])).save(exported)
    users.to_parquet(paths["user-map"])
    items.to_parquet(paths["item-map"])
    sp.save_npz(paths["seen"], wrong)
    args = [a for name, path in paths.items() for a in (f"--{name}", str(path))]
    with pytest.raises(SystemExit) as stopped:
        main([*args, "--out", str(tmp_path / "out.parquet")])
    assert stopped.value.code == 2
    assert "seen.npz: the seen-items matrix is 30 × 79" in capsys.readouterr().err


def test_a_graph_with_other_inputs_is_refused_naming_the_file(tmp_path):
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Cast", ["user"], ["score"], to=TensorProto.FLOAT)], "not-convncf",
        [helper.make_tensor_value_info("user", TensorProto.INT32, ["N"])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N"])],
    )
    path = tmp_path / "other.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10), str(path))
    with pytest.raises(ModelMismatchError, match=r"other.onnx: the graph takes \{'user': 'tensor\(int32\)'\}"):
        create_session(str(path))
