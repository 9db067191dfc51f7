"""Each raw format parses into the standard log; each kind of bad input names file, line and column."""

import bz2
import gzip
import lzma

import numpy as np
import pytest

from convncf_kedro.errors import InputDataError
from convncf_kedro.interactions.readers import (
    RawFile,
    check_given_negatives,
    read_delimited,
    read_lightgcn,
    read_ncf,
    read_recbole,
)

UDATA = dict(sep="\t", header=False, names=["user", "item", "rating", "timestamp"], user_column="user",
             item_column="item", rating_column="rating", timestamp_column="timestamp")


def raw(text: str, path: str = "data/01_raw/u.data") -> RawFile:
    return RawFile(path, text.encode())


def test_delimited_log_keeps_string_ids_and_numbers():
    log = read_delimited(raw("u1\ti9\t4\t100\nu2\ti9\t5\t101\n"), **UDATA)
    assert log["user"].tolist() == ["u1", "u2"]
    assert log["item"].tolist() == ["i9", "i9"]
    assert log["rating"].tolist() == [4.0, 5.0]
    assert log["timestamp"].tolist() == [100.0, 101.0]
    assert set(log["split"]) == {"all"}


def test_delimited_log_with_header_and_no_timestamp():
    log = read_delimited(
        raw("userID,artistID,weight\n2,51,13883\n2,52,11690\n"), sep=",", header=True, names=None,
        user_column="userID", item_column="artistID", rating_column="weight", timestamp_column=None,
    )
    assert log["item"].tolist() == ["51", "52"]
    assert np.isnan(log["timestamp"]).all()


def test_empty_file_is_named():
    with pytest.raises(InputDataError, match=r"data/01_raw/u.data: the file is empty"):
        read_delimited(raw(""), **UDATA)


def test_missing_column_lists_the_columns_the_file_has():
    with pytest.raises(InputDataError, match=r"no column 'ts' for the timestamp.*\['userID', 'itemID'\]"):
        read_delimited(raw("userID,itemID\n1,2\n"), sep=",", header=True, names=None, user_column="userID",
                       item_column="itemID", rating_column=None, timestamp_column="ts")


def test_non_numeric_rating_names_line_and_column():
    with pytest.raises(InputDataError, match=r"u.data, line 2, column 3: 'five' in column 'rating' is not a number"):
        read_delimited(raw("1\t2\t4\t100\n1\t3\tfive\t101\n"), **UDATA)


def test_non_numeric_timestamp_names_line_and_column():
    with pytest.raises(InputDataError, match=r"line 3, column 4: 'yesterday' in column 'timestamp'"):
        read_delimited(raw("1\t2\t4\t100\n1\t3\t4\t101\n1\t4\t4\tyesterday\n"), **UDATA)


def test_short_line_is_a_missing_value():
    with pytest.raises(InputDataError, match=r"line 2, column 2: missing value in column 'item'"):
        read_delimited(raw("1\t2\t4\t100\n7\n"), **UDATA)


def test_line_with_too_many_fields_is_malformed():
    with pytest.raises(InputDataError, match=r"u.data, line 2: malformed line"):
        read_delimited(raw("1\t2\t4\t100\n1\t3\t4\t101\t9\n"), **UDATA)


def test_recbole_header_types_are_stripped():
    text = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n196\t242\t3\t881250949\n"
    log = read_recbole(raw(text, "x.inter"), "user_id", "item_id", "rating", "timestamp")
    assert log.iloc[0][["user", "item", "rating", "timestamp"]].tolist() == ["196", "242", 3.0, 881250949.0]


def test_recbole_misnamed_field():
    text = "uid:token\titem_id:token\n196\t242\n"
    with pytest.raises(InputDataError, match=r"x.inter: no column 'user_id' for the user id"):
        read_recbole(raw(text, "x.inter"), "user_id", "item_id", None, None)


NCF_TRAIN = "0\t10\t5\n0\t11\t4\n1\t10\t3\n1\t12\t3\n"
NCF_TEST = "0\t12\t1\n1\t11\t2\n"
NCF_NEGATIVES = "(0,12)\t13\t14\n(1,11)\t13\t15\n"


def test_ncf_files_keep_their_split_and_negatives():
    log, negatives = read_ncf(raw(NCF_TRAIN, "a.train.rating"), raw(NCF_TEST, "a.test.rating"),
                              raw(NCF_NEGATIVES, "a.test.negative"))
    assert (log["split"] == "train").sum() == 4
    assert log[log["split"] == "test"][["user", "item"]].values.tolist() == [["0", "12"], ["1", "11"]]
    assert negatives[["user", "item"]].values.tolist() == [["0", "13"], ["0", "14"], ["1", "13"], ["1", "15"]]


def test_ncf_test_item_in_train_is_rejected_with_its_line():
    with pytest.raises(InputDataError, match=r"a.test.rating, line 2: test item 10 of user 1 is also in the training"):
        read_ncf(raw(NCF_TRAIN, "a.train.rating"), raw("0\t12\t1\n1\t10\t2\n", "a.test.rating"),
                 raw(NCF_NEGATIVES, "a.test.negative"))


def test_ncf_negative_that_is_a_positive_is_rejected_with_line_and_column_when_strict():
    log, negatives = read_ncf(raw(NCF_TRAIN, "a.train.rating"), raw(NCF_TEST, "a.test.rating"),
                              raw("(0,12)\t13\t14\n(1,11)\t13\t12\n", "a.test.negative"))
    with pytest.raises(InputDataError, match=r"a.test.negative, line 2, column 3: negative item 12 of user 1 is one"):
        check_given_negatives(log, negatives, "strict", np.random.default_rng(0), "a.test.negative")


def test_ncf_malformed_negative_line():
    with pytest.raises(InputDataError, match=r"a.test.negative, line 2, column 1: malformed line: expected '\(user,item\)'"):
        read_ncf(raw(NCF_TRAIN, "a.train.rating"), raw(NCF_TEST, "a.test.rating"),
                 raw("(0,12)\t13\t14\n1,11\t13\t15\n", "a.test.negative"))


def test_ncf_malformed_rating_line():
    with pytest.raises(InputDataError, match=r"a.train.rating, line 3, column 2: malformed line: 'x' is not a number"):
        read_ncf(raw("0\t10\t5\n0\t11\t4\n1\tx\t3\n", "a.train.rating"), raw(NCF_TEST, "a.test.rating"),
                 raw(NCF_NEGATIVES, "a.test.negative"))


def test_lightgcn_lists_become_one_row_per_interaction():
    log = read_lightgcn(raw("0 1 2 3\n1 2\n", "train.txt"), raw("0 4\n1 3 5\n", "test.txt"))
    assert log[log["split"] == "train"][["user", "item"]].values.tolist() == [["0", "1"], ["0", "2"], ["0", "3"], ["1", "2"]]
    assert log[log["split"] == "test"][["user", "item"]].values.tolist() == [["0", "4"], ["1", "3"], ["1", "5"]]


def test_lightgcn_malformed_token_names_line_and_column():
    with pytest.raises(InputDataError, match=r"train.txt, line 2, column 3: malformed line: item id 'x7'"):
        read_lightgcn(raw("0 1 2 3\n1 2 x7 9\n", "train.txt"), raw("0 4\n", "test.txt"))


def test_lightgcn_test_item_in_train_names_line_and_column():
    with pytest.raises(InputDataError, match=r"test.txt, line 2, column 3: test item 2 of user 1 is also in the training"):
        read_lightgcn(raw("0 1 2 3\n1 2\n", "train.txt"), raw("0 4\n1 3 2\n", "test.txt"))


@pytest.mark.parametrize("compress, kind", [(gzip.compress, "gzip"), (bz2.compress, "bzip2"), (lzma.compress, "xz")])
def test_a_compressed_log_is_named_as_such(compress, kind):
    packed = RawFile("data/01_raw/u.data.gz", compress(b"1\t2\t3\t4\n" * 300))
    with pytest.raises(InputDataError, match=rf"u.data.gz: the file is {kind}-compressed, not text: decompress it"):
        read_delimited(packed, **UDATA)
    with pytest.raises(InputDataError, match=rf"the file is {kind}-compressed"):
        read_lightgcn(packed, packed)


def test_a_binary_file_is_named_as_such():
    with pytest.raises(InputDataError, match=r"u.data: the file is binary, not delimited text \(a NUL byte at offset 4\)"):
        read_delimited(RawFile("data/01_raw/u.data", b"1\t2\t\x00\x003\n"), **UDATA)


def test_ids_too_long_for_an_integer_stay_ids():
    long_user, long_item = "12345678901234567890", "98765432109876543210123"
    log = read_delimited(raw(f"{long_user}\t{long_item}\t4\t100\n7\t3\t5\t101\n"), **UDATA)
    assert log["user"].tolist() == [long_user, "7"]
    lists = read_lightgcn(raw(f"{long_user} {long_item} 0042\n", "train.txt"), raw("1 5\n", "test.txt"))
    assert lists["user"].tolist() == [long_user, long_user, "1"] and lists["item"].tolist() == [long_item, "42", "5"]
    ncf, _ = read_ncf(raw(f"{long_user}\t{long_item}\t1\n", "x.train.rating"), raw(f"{long_user}\t5\t1\n", "x.test.rating"),
                      raw(f"({long_user},5)\t007\n", "x.test.negative"))
    assert ncf["user"].tolist() == [long_user, long_user] and ncf["item"].tolist() == [long_item, "5"]
