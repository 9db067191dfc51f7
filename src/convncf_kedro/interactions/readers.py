"""Parsers for the four raw interaction formats, each returning one standard log table.

The standard log has one row per interaction, in file order, with columns
``user`` and ``item`` (raw ids as strings), ``rating`` (float) and ``timestamp`` (int64 where every stamp is
an integer, so nanosecond stamps keep their order; else float; NaN where the format has none) and ``split`` (``"all"`` for unsplit logs, ``"train"``/``"test"`` for pre-split
ones). Pre-split formats may also come with ``negatives`` (``user``, ``item``: raw ids).
Every malformed input raises :class:`InputDataError` naming the file, line and column.
"""

from __future__ import annotations

import io
import re
from itertools import chain

import numpy as np
import pandas as pd

from convncf_kedro.errors import InputDataError
from convncf_kedro.interactions.raw_file import RawFile

LOG_COLUMNS = ["user", "item", "rating", "timestamp", "split"]
_INTEGER = re.compile(r"\d+")
_NCF_PAIR = re.compile(r"\((\d+),(\d+)\)")
_COMPRESSED = {b"\x1f\x8b": "gzip", b"PK\x03\x04": "zip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz",
               b"\x28\xb5\x2f\xfd": "zstandard"}


def _check_text(raw: RawFile) -> None:
    """Stop at a compressed or binary file with what it is, before a parser reports a baffling line."""
    for magic, kind in _COMPRESSED.items():
        if raw.data.startswith(magic):
            raise InputDataError(raw.path, f"the file is {kind}-compressed, not text: decompress it and point the "
                                 "catalog's raw_interactions at the decompressed file")
    if (nul := raw.data.find(b"\x00", 0, 1 << 16)) >= 0:
        raise InputDataError(raw.path, f"the file is binary, not delimited text (a NUL byte at offset {nul})")


def canonical_integer_ids(values: pd.Series) -> pd.Series:
    """Integer ids as canonical strings ("007" → "7") of any length: a 20-digit id stays an id, not an overflow."""
    return values.str.lstrip("0").replace("", "0")


def _read_table(raw: RawFile, sep: str, header: bool, names: list[str] | None) -> tuple[pd.DataFrame, np.ndarray]:
    """Read a delimited file as strings; also return each row's 1-based line number in the file."""
    _check_text(raw)
    if not raw.data.strip():
        raise InputDataError(raw.path, "the file is empty")
    try:
        table = pd.read_csv(
            io.BytesIO(raw.data),
            sep=sep,
            header=0 if header else None,
            names=None if header else names,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            engine="c" if len(sep) == 1 else "python",
        )
    except pd.errors.ParserError as exc:
        line = re.search(r"line (\d+)", str(exc))
        raise InputDataError(
            raw.path, f"malformed line ({exc})", line=int(line.group(1)) if line else None
        ) from exc
    except UnicodeDecodeError as exc:
        raise InputDataError(raw.path, f"not valid UTF-8 text ({exc})") from exc
    if names and not header and len(sep) == 1:  # pandas pads short rows with '': say what the layout is instead
        first = raw.data.lstrip(b"\r\n").split(b"\n", 1)[0].decode("utf-8", "replace").rstrip("\r")
        fields = len(first.split(sep))
        if fields != len(names):
            raise InputDataError(raw.path, f"{fields} fields, expected {len(names)} ({', '.join(names)}) separated by "
                                 f"{sep!r}: set ingestion.delimited.sep and names to the file's layout", line=1)
    lines = np.arange(len(table)) + (2 if header else 1)
    blank = table.isna().all(axis=1) | (table.fillna("") == "").all(axis=1)
    table, lines = table.loc[~blank.to_numpy()].reset_index(drop=True), lines[~blank.to_numpy()]
    if table.empty:
        raise InputDataError(raw.path, "the file has no data rows")
    return table, lines


def _require_columns(raw: RawFile, table: pd.DataFrame, wanted: dict[str, str | None]) -> None:
    """Check that every configured column exists, naming what the file does have."""
    for role, column in wanted.items():
        if column is not None and column not in table.columns:
            raise InputDataError(
                raw.path,
                f"no column '{column}' for the {role} (the file has columns {list(table.columns)}); "
                f"set the column names in parameters_ingestion.yml",
            )


def _text_column(raw: RawFile, table: pd.DataFrame, column: str, lines: np.ndarray) -> pd.Series:
    values = table[column]
    empty = values.isna() | (values.str.strip() == "")
    if empty.any():
        i = int(np.flatnonzero(empty.to_numpy())[0])
        raise InputDataError(
            raw.path, f"missing value in column '{column}'", line=int(lines[i]),
            column=table.columns.get_loc(column) + 1,
        )
    return values.str.strip()


def _numeric_column(raw: RawFile, table: pd.DataFrame, column: str | None, lines: np.ndarray,
                    keep_integers: bool = False) -> np.ndarray:
    """Floats; with ``keep_integers`` a column of integers stays int64 (float64 merges nanosecond stamps)."""
    if column is None:
        return np.full(len(table), np.nan)
    parsed = pd.to_numeric(table[column].str.strip(), errors="coerce")
    if keep_integers and parsed.dtype.kind == "i" and parsed.notna().all():
        return parsed.to_numpy(dtype=np.int64)
    values = parsed.to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputDataError(
            raw.path, f"'{table[column].iloc[i]}' in column '{column}' is not a number",
            line=int(lines[i]), column=table.columns.get_loc(column) + 1,
        )
    return values


def _standard_log(
    raw: RawFile,
    table: pd.DataFrame,
    lines: np.ndarray,
    user: str,
    item: str,
    rating: str | None,
    timestamp: str | None,
    split: str,
) -> pd.DataFrame:
    _require_columns(raw, table, {"user id": user, "item id": item, "rating": rating, "timestamp": timestamp})
    return pd.DataFrame(
        {
            "user": _text_column(raw, table, user, lines),
            "item": _text_column(raw, table, item, lines),
            "rating": _numeric_column(raw, table, rating, lines),
            "timestamp": _numeric_column(raw, table, timestamp, lines, keep_integers=True),
            "split": split,
        }
    )


def read_delimited(
    raw: RawFile,
    sep: str,
    header: bool,
    names: list[str] | None,
    user_column: str,
    item_column: str,
    rating_column: str | None,
    timestamp_column: str | None,
) -> pd.DataFrame:
    """A delimited log such as MovieLens ``u.data`` (``user item rating timestamp``)."""
    table, lines = _read_table(raw, sep, header, names)
    return _standard_log(raw, table, lines, user_column, item_column, rating_column, timestamp_column, "all")


def read_recbole(
    raw: RawFile, user_field: str, item_field: str, rating_field: str | None, timestamp_field: str | None
) -> pd.DataFrame:
    """A RecBole atomic ``.inter`` file: tab-separated, header cells ``name:type``."""
    table, lines = _read_table(raw, "\t", True, None)
    table.columns = [str(c).split(":", 1)[0] for c in table.columns]
    return _standard_log(raw, table, lines, user_field, item_field, rating_field, timestamp_field, "all")


def _read_ncf_ratings(raw: RawFile, split: str) -> tuple[pd.DataFrame, np.ndarray]:
    table, lines = _read_table(raw, "\t", False, None)
    if table.shape[1] not in (3, 4):
        raise InputDataError(
            raw.path, f"expected 3 or 4 tab-separated fields (user, item, rating[, timestamp]), found {table.shape[1]}",
            line=int(lines[0]),
        )
    table.columns = ["user", "item", "rating", "timestamp"][: table.shape[1]]
    for column in table.columns:
        bad = ~table[column].str.fullmatch(r"\s*-?\d+(\.\d*)?\s*").fillna(False).to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputDataError(
                raw.path, f"malformed line: '{table[column].iloc[i]}' is not a number ({column})",
                line=int(lines[i]), column=table.columns.get_loc(column) + 1,
            )
    for column in ("user", "item"):
        _check_integers(raw, table[column].str.strip(), lines, np.full(len(table), table.columns.get_loc(column) + 1),
                        f"{column} id")
    timestamp = "timestamp" if "timestamp" in table.columns else None
    log = _standard_log(raw, table, lines, "user", "item", "rating", timestamp, split)
    log["user"] = canonical_integer_ids(log["user"])  # "007" and "7" are the same NCF id
    log["item"] = canonical_integer_ids(log["item"])
    return log, lines


def _split_lines(raw: RawFile) -> tuple[list[list[str]], np.ndarray]:
    """Whitespace-split each non-blank line; also return the lines' 1-based numbers."""
    _check_text(raw)
    try:
        text = raw.data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputDataError(raw.path, f"not valid UTF-8 text ({exc})") from exc
    rows = [line.split() for line in text.splitlines()]
    numbers = np.array([i + 1 for i, row in enumerate(rows) if row], dtype=np.int64)
    rows = [row for row in rows if row]
    if not rows:
        raise InputDataError(raw.path, "the file is empty")
    return rows, numbers


def _check_integers(raw: RawFile, tokens: pd.Series, lines: np.ndarray, columns: np.ndarray, what: str) -> None:
    bad = ~tokens.str.fullmatch(_INTEGER.pattern).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputDataError(
            raw.path, f"malformed line: {what} '{tokens.iloc[i]}' is not a non-negative integer id",
            line=int(lines[i]), column=int(columns[i]),
        )


def _flatten_lists(raw: RawFile, rows: list[list[str]], numbers: np.ndarray, first_token: str) -> pd.DataFrame:
    """``head tail tail …`` lines as a long table ``head, item, line, column`` (vectorised past the split)."""
    heads = pd.Series([row[0] for row in rows], dtype=str)
    _check_integers(raw, heads, numbers, np.ones(len(rows), dtype=np.int64), first_token)
    lengths = np.array([len(row) - 1 for row in rows], dtype=np.int64)
    items = pd.Series(list(chain.from_iterable(row[1:] for row in rows)), dtype=str)
    item_lines = np.repeat(numbers, lengths)
    item_columns = np.arange(len(items)) - np.repeat(np.cumsum(lengths) - lengths, lengths) + 2
    _check_integers(raw, items, item_lines, item_columns, "item id")
    return pd.DataFrame(
        {
            "head": np.repeat(canonical_integer_ids(heads).to_numpy(), lengths),
            "item": canonical_integer_ids(items).to_numpy(),
            "line": item_lines,
            "column": item_columns,
        }
    )


def _pairs_in(left: pd.DataFrame, right: pd.DataFrame) -> np.ndarray:
    """(len(left),) booleans: does ``left``'s (user, item) pair also stand in ``right``?"""
    keys = pd.MultiIndex.from_frame(right[["user", "item"]])
    return pd.MultiIndex.from_frame(left[["user", "item"]]).isin(keys)


def _first_overlap(left: pd.DataFrame, right: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``left`` whose (user, item) pair also stands in ``right``."""
    return left[_pairs_in(left, right)]


def read_ncf(train: RawFile, test: RawFile, negatives: RawFile) -> tuple[pd.DataFrame, pd.DataFrame]:
    """NCF/ConvNCF pre-split files: ``X.train.rating``, ``X.test.rating`` and ``X.test.negative``.

    The negatives come back as written (``user, item, line, column``): published files often hold
    "negatives" that are positives of their user, or repeats; :func:`check_given_negatives` applies
    the configured policy to them.
    """
    train_log, _ = _read_ncf_ratings(train, "train")
    test_log, test_lines = _read_ncf_ratings(test, "test")
    overlap = _first_overlap(test_log.assign(line=test_lines), train_log)
    if not overlap.empty:
        row = overlap.iloc[0]
        raise InputDataError(
            test.path, f"test item {row['item']} of user {row['user']} is also in the training file {train.path}",
            line=int(row["line"]),
        )

    rows, numbers = _split_lines(negatives)
    pairs = [_NCF_PAIR.fullmatch(row[0]) for row in rows]
    bad = [i for i, match in enumerate(pairs) if match is None]
    if bad:
        raise InputDataError(
            negatives.path, f"malformed line: expected '(user,item)' first, found '{rows[bad[0]][0]}'",
            line=int(numbers[bad[0]]), column=1,
        )
    rows = [[match.group(1)] + row[1:] for match, row in zip(pairs, rows, strict=True)]
    table = _flatten_lists(negatives, rows, numbers, "user id").rename(columns={"head": "user"})
    log = pd.concat([train_log, test_log], ignore_index=True)[LOG_COLUMNS]
    return log, table[["user", "item", "line", "column"]].reset_index(drop=True)


def read_lightgcn(train: RawFile, test: RawFile) -> pd.DataFrame:
    """LightGCN/NGCF lists: each line ``user item item …``, one file for train and one for test."""
    logs = []
    for raw, split in ((train, "train"), (test, "test")):
        rows, numbers = _split_lines(raw)
        table = _flatten_lists(raw, rows, numbers, "user id").rename(columns={"head": "user"})
        logs.append(table.assign(split=split, rating=np.nan, timestamp=np.nan, path=raw.path))
    overlap = _first_overlap(logs[1], logs[0])
    if not overlap.empty:
        row = overlap.iloc[0]
        widths = {len(fields) for fields in _split_lines(test)[0][:1000]}
        likely = (f"every line of it has {widths.pop()} fields, like a delimited log (user item rating timestamp), "
                  "not a LightGCN list (user item item …): check ingestion.format; "
                  if len(widths) == 1 and next(iter(widths)) in (3, 4) else "")
        raise InputDataError(
            test.path, f"{likely}test item {row['item']} of user {row['user']} is also in the training file "
            f"{train.path}", line=int(row["line"]), column=int(row["column"]),
        )
    return pd.concat(logs, ignore_index=True)[LOG_COLUMNS]


def check_given_negatives(
    log: pd.DataFrame, negatives: pd.DataFrame, policy: str, rng: np.random.Generator, path: str
) -> tuple[pd.DataFrame, dict]:
    """Apply ``ingestion.given_negatives`` to given negatives that are positives of their user or repeats.

    ``strict`` stops at the first one (file, line, column); ``drop`` removes them; ``resample`` replaces
    each with a seeded uniform draw among the user's true negatives (items of the data set that are
    neither a positive of the user nor already among their negatives). Returns the negatives
    (``user, item``) and the counts for the cleaning report.
    """
    is_positive = _pairs_in(negatives, log)
    is_repeat = negatives.duplicated(["user", "item"]).to_numpy() & ~is_positive
    report = {"file": path, "policy": policy, "positives": int(is_positive.sum()), "repeats": int(is_repeat.sum())}
    if policy == "strict" and (is_positive.any() or is_repeat.any()):
        row = negatives[is_positive | is_repeat].iloc[0]
        problem = "is one of that user's positives" if is_positive[row.name] else "is repeated in that user's list"
        raise InputDataError(path, f"negative item {row['item']} of user {row['user']} {problem} (set "
                             "ingestion.given_negatives to resample or drop to accept such files)",
                             line=int(row["line"]), column=int(row["column"]))
    flagged = is_positive | is_repeat
    kept = negatives[~flagged][["user", "item"]]
    if policy == "drop" or not flagged.any():
        return kept.reset_index(drop=True), report
    universe = pd.unique(pd.concat([log["item"], negatives["item"]], ignore_index=True))
    positives_of = log.groupby("user")["item"].agg(set)
    kept_of = kept.groupby("user")["item"].agg(set)
    drawn = []
    for user, count in negatives[flagged].groupby("user").size().items():
        taken = positives_of.get(user, set()) | kept_of.get(user, set())
        pool = np.setdiff1d(universe, np.array(list(taken), dtype=object))
        if len(pool) < count:
            raise InputDataError(path, f"user {user} has only {len(pool)} items left to replace {count} bad negatives")
        drawn.append(pd.DataFrame({"user": user, "item": rng.choice(pool, size=count, replace=False)}))
    return pd.concat([kept, *drawn], ignore_index=True), report
