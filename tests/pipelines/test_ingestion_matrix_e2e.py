"""End to end on the real datasets: ingestion + matrix through Kedro, figures as the datasets' README states."""

import shutil

import numpy as np
import pandas as pd
import pytest
from kedro_project import SHARED_DATASETS, KedroProject

from convncf_kedro.errors import InputDataError

pytestmark = pytest.mark.e2e

# users, items, train (incl. validation), test, as ../shared/datasets/README.md gives them
EXPECTED = {
    "ml-100k": (943, 1682, 100_000 - 943, 943),
    "ml-100k-recbole": (943, 1682, 100_000 - 943, 943),
    "ml-100k-ncf": (943, 1682, 99_057, 943),
    "gowalla": (29_858, 40_981, 810_128, 217_242),
}


def pairs(frame: pd.DataFrame) -> set:
    return set(zip(frame["user"], frame["item"], strict=True))


@pytest.mark.parametrize("dataset", list(EXPECTED))
def test_ingestion_then_matrix_match_the_dataset_readme(kedro_project, dataset):
    users, items, train_and_valid, test_size = EXPECTED[dataset]
    project = kedro_project(dataset)
    project.run("ingestion")
    project.run("matrix")
    catalog = project.catalog()
    stats = catalog.load("dataset_statistics")
    assert (stats["users"], stats["items"]) == (users, items)
    assert stats["interactions"]["train"] + stats["interactions"]["valid"] == train_and_valid
    assert stats["interactions"]["test"] == test_size
    assert stats["evaluated_users"]["valid"] == users  # every user of these splits can be validated

    train, valid, test = (catalog.load(name) for name in ("train", "valid", "test"))
    assert valid.groupby("user").size().max() == 1
    assert not (pairs(train) & pairs(valid)) and not (pairs(train) & pairs(test)) and not (pairs(valid) & pairs(test))

    matrix = catalog.load("train_matrix")
    assert matrix.shape == (users, items) and matrix.nnz == len(train)
    user = int(train["user"].iloc[len(train) // 2])
    row = matrix.indices[matrix.indptr[user]:matrix.indptr[user + 1]]
    assert row.tolist() == sorted(train.loc[train["user"] == user, "item"])

    positives = pairs(train) | pairs(valid) | pairs(test)
    for negatives in (catalog.load("valid_negatives"), catalog.load("test_negatives")):
        assert negatives.groupby("user").size().unique().tolist() == [99]
        assert not pairs(negatives) & positives


def test_ncf_split_and_negatives_are_used_as_given(kedro_project, shared_datasets):
    project = kedro_project("ml-100k-ncf")
    project.run("ingestion")
    catalog = project.catalog()
    given_test = pd.read_csv(shared_datasets / "ml-100k-ncf/ml-100k.test.rating", sep="\t", header=None)
    item_map = catalog.load("item_map")
    assert (item_map["raw_id"].astype(int) == item_map["index"]).all()  # 0-based ids map to themselves
    assert pairs(catalog.load("test")) == set(zip(given_test[0], given_test[1], strict=True))
    first_line = (shared_datasets / "ml-100k-ncf/ml-100k.test.negative").read_text().splitlines()[0].split("\t")
    user0 = catalog.load("test_negatives").query("user == 0")["item"].tolist()
    assert user0 == sorted(int(i) for i in first_line[1:])


def test_leave_one_out_on_movielens_holds_out_each_users_latest(kedro_project, shared_datasets):
    project = kedro_project("ml-100k")
    project.run("ingestion")
    catalog = project.catalog()
    raw = pd.read_csv(shared_datasets / "ml-100k/u.data", sep="\t", names=["user", "item", "rating", "ts"])
    test, user_map = catalog.load("test"), catalog.load("user_map")
    latest_ts = raw.groupby("user")["ts"].max()
    raw_users = user_map.set_index("index").loc[test["user"], "raw_id"].astype(int).to_numpy()
    np.testing.assert_array_equal(test["timestamp"].to_numpy(), latest_ts.loc[raw_users].to_numpy())


def test_runtime_params_change_the_split(kedro_project, shared_datasets):
    project = kedro_project("ml-100k")
    project.run("ingestion", params={"ingestion": {"rating_threshold": 4, "n_negatives": 50}})
    raw = pd.read_csv(shared_datasets / "ml-100k/u.data", sep="\t", names=["user", "item", "rating", "ts"])
    report = project.load("cleaning_report")
    assert report["dropped_rows"]["below_rating_threshold"] == (raw["rating"] < 4).sum()
    assert project.load("valid_negatives").groupby("user").size().unique().tolist() == [50]


def test_validation_users_validates_a_sample_through_kedro_run_and_the_rest_trains(kedro_project):
    """A large dataset's validation checks on a seeded sample of users; nothing leaves the training data."""
    project = kedro_project("ml-100k")
    for stage in ("ingestion", "matrix"):
        project.run(stage, params={"ingestion": {"validation_users": 100}})
    stats = project.load("dataset_statistics")
    assert stats["evaluated_users"] == {"valid": 100, "test": 943}
    assert stats["interactions"]["train"] + stats["interactions"]["valid"] == 100_000 - 943
    assert project.load("split_report")["users_validated"] == 100
    assert project.load("valid_negatives")["user"].nunique() == 100  # negatives only where a check scores them


@pytest.fixture
def defective_ncf_copy(tmp_path):
    """ml-100k-ncf with user 0's negatives edited as published files often are: two positives, one repeat."""
    source = SHARED_DATASETS / "ml-100k-ncf"
    folder = tmp_path / "ncf"
    folder.mkdir()
    for name in ("ml-100k.train.rating", "ml-100k.test.rating"):
        shutil.copy(source / name, folder / name)
    lines = (source / "ml-100k.test.negative").read_text().splitlines()
    head, *items = lines[0].split("\t")
    user0_train = [line.split("\t")[1] for line in (source / "ml-100k.train.rating").read_text().splitlines()
                   if line.split("\t")[0] == "0"][:2]
    items[4], items[9], items[20] = user0_train[0], user0_train[1], items[3]  # columns 6, 11: positives; 22: a repeat
    lines[0] = "\t".join([head, *items])
    (folder / "ml-100k.test.negative").write_text("\n".join(lines) + "\n")
    return folder, set(user0_train)


def ncf_project(kedro_project, folder, policy):
    project = kedro_project()
    project.write_conf("catalog.yml", {"raw_interactions": {
        "type": "convncf_kedro.datasets.RawInteractionFiles", "path": str(folder),
        "files": {"train": "ml-100k.train.rating", "test": "ml-100k.test.rating", "negatives": "ml-100k.test.negative"},
    }})
    project.write_conf("parameters_ingestion.yml", {"ingestion": {"format": "ncf", "given_negatives": policy}})
    return project


def test_strict_stops_at_the_first_bad_given_negative_naming_file_line_and_column(kedro_project, defective_ncf_copy):
    folder, _ = defective_ncf_copy
    with pytest.raises(InputDataError, match=r"ml-100k.test.negative, line 1, column 6: negative item \d+ of user 0 is one"):
        ncf_project(kedro_project, folder, "strict").run("ingestion")


@pytest.mark.parametrize("policy, negatives_of_user0", [("resample", 99), ("drop", 96)])
def test_bad_given_negatives_are_resampled_or_dropped_and_counted(kedro_project, defective_ncf_copy, policy,
                                                                  negatives_of_user0):
    folder, positives = defective_ncf_copy
    project = ncf_project(kedro_project, folder, policy)
    project.run("ingestion")
    project.run("matrix")
    report = project.load("cleaning_report")["given_negatives"]
    assert (report["positives"], report["repeats"], report["policy"]) == (2, 1, policy)
    assert report["file"].endswith("ml-100k.test.negative")
    negatives = project.load("test_negatives")
    item_raw = project.load("item_map").set_index("index")["raw_id"]
    user0 = item_raw.loc[negatives.loc[negatives["user"] == 0, "item"]].tolist()
    assert len(user0) == len(set(user0)) == negatives_of_user0 and not set(user0) & positives
    assert negatives.groupby("user").size().drop(0).eq(99).all()
    stats = project.load("dataset_statistics")["negatives_per_user"]["test"]
    assert (stats["min"], stats["max"]) == (negatives_of_user0, 99)


def test_a_seeded_user_sample_keeps_every_item_and_those_users_whole(tmp_path):
    """ingestion.sample_users: Gowalla's catalog and sparsity at a fraction of its training cost."""
    full, sampled = KedroProject(tmp_path / "full"), KedroProject(tmp_path / "sampled")
    for project in (full, sampled):
        project.use_dataset("gowalla")
    full.run("ingestion")
    sampled.run("ingestion", params={"ingestion": {"sample_users": 2000, "validation_users": 1000}})
    users = sampled.load("user_map")
    assert len(users) == 2000 and users["index"].tolist() == list(range(2000))
    assert sampled.load("item_map").equals(full.load("item_map"))  # all 40,981 items, same indices
    to_full = dict(zip(full.load("user_map")["raw_id"], full.load("user_map")["index"], strict=True))
    in_full = users["raw_id"].map(to_full).to_numpy()
    everything = {split: full.load(split) for split in ("train", "valid", "test")}
    mine = {split: sampled.load(split).assign(user=lambda f: in_full[f["user"]]) for split in ("train", "valid", "test")}
    assert pairs(mine["test"]) == pairs(everything["test"][everything["test"]["user"].isin(in_full)])  # given test, whole
    kept = pd.concat(everything.values())
    assert pairs(pd.concat(mine.values())) == pairs(kept[kept["user"].isin(in_full)])  # nothing lost, nothing made up
    assert mine["valid"]["user"].nunique() == 1000
    report = sampled.load("cleaning_report")
    assert report["interactions"] + report["dropped_rows"]["users_not_sampled"] == full.load("cleaning_report")["interactions"]
