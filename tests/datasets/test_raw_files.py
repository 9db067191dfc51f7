"""Raw files load as bytes; a missing MovieLens file is downloaded from a (local) server and checked."""

import functools
import hashlib
import http.server
import threading
import zipfile
from pathlib import Path

import pytest
from kedro.io import DatasetError

from convncf_kedro.datasets import RawInteractionFiles

ML_100K_SHA256 = "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"


@pytest.fixture
def http_folder(tmp_path):
    """Serve a folder on 127.0.0.1 for the duration of a test; yields (folder, base_url)."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


def zip_ml_100k(source: Path, archive: Path, u_data: bytes | None = None) -> None:
    """The GroupLens archive's layout: every file under an ``ml-100k/`` folder."""
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(source.iterdir()):
            data = u_data if (path.name == "u.data" and u_data is not None) else path.read_bytes()
            zf.writestr(f"ml-100k/{path.name}", data)


def movielens(tmp_path: Path, url: str) -> RawInteractionFiles:
    return RawInteractionFiles(
        path=str(tmp_path / "data/01_raw/ml-100k"),
        files={"log": "u.data"},
        sha256={"log": ML_100K_SHA256},
        download={"url": url, "archive_folder": "ml-100k"},
    )


def test_missing_file_is_downloaded_checked_and_extracted(tmp_path, http_folder, shared_datasets):
    folder, base = http_folder
    zip_ml_100k(shared_datasets / "ml-100k", folder / "ml-100k.zip")
    dataset = movielens(tmp_path, f"{base}/ml-100k.zip")
    assert not dataset.exists()

    loaded = dataset.load()

    u_data = tmp_path / "data/01_raw/ml-100k/u.data"
    assert hashlib.sha256(u_data.read_bytes()).hexdigest() == ML_100K_SHA256
    assert (tmp_path / "data/01_raw/ml-100k/u.item").is_file()  # the whole archive is extracted
    assert loaded["log"].data == (shared_datasets / "ml-100k/u.data").read_bytes()
    assert loaded["log"].path == str(u_data)
    assert dataset.exists()


def test_download_with_wrong_checksum_stops_and_says_where_to_put_the_file(tmp_path, http_folder, shared_datasets):
    folder, base = http_folder
    zip_ml_100k(shared_datasets / "ml-100k", folder / "ml-100k.zip", u_data=b"1\t2\t3\t4\n")
    with pytest.raises(DatasetError, match=r"expected 06416e59.*Place a good copy at .*data/01_raw/ml-100k/u.data"):
        movielens(tmp_path, f"{base}/ml-100k.zip").load()
    assert not (tmp_path / "data/01_raw/ml-100k/u.data").exists()  # nothing half-done is left behind


def test_failed_download_says_where_to_put_the_file(tmp_path, http_folder):
    _, base = http_folder
    with pytest.raises(DatasetError, match=r"could not download .*missing.zip.*place the file\(s\) at .*ml-100k/u.data"):
        movielens(tmp_path, f"{base}/missing.zip").load()


def test_missing_file_without_download_is_named(tmp_path):
    dataset = RawInteractionFiles(path=str(tmp_path), files={"train": "train.txt"})
    with pytest.raises(DatasetError, match=r"raw input file not found: .*train.txt"):
        dataset.load()


def test_a_truncated_copy_on_disk_is_named_before_use(tmp_path, shared_datasets):
    dataset = movielens(tmp_path, "http://127.0.0.1:1/never-fetched.zip")  # the file is there: no download
    folder = tmp_path / "data/01_raw/ml-100k"
    folder.mkdir(parents=True)
    (folder / "u.data").write_bytes((shared_datasets / "ml-100k/u.data").read_bytes()[:50_000])
    with pytest.raises(DatasetError, match=r"u.data has sha256 .*expected 06416e59.*truncated"):
        dataset.load()


def test_a_good_copy_on_disk_is_hashed_once_then_trusted_until_it_changes(tmp_path, shared_datasets, monkeypatch):
    dataset = movielens(tmp_path, "http://127.0.0.1:1/never-fetched.zip")
    folder = tmp_path / "data/01_raw/ml-100k"
    folder.mkdir(parents=True)
    (folder / "u.data").write_bytes((shared_datasets / "ml-100k/u.data").read_bytes())
    from convncf_kedro.datasets import raw_files

    hashed = []
    real_sha256 = raw_files.file_sha256
    monkeypatch.setattr(raw_files, "file_sha256", lambda path: hashed.append(path.name) or real_sha256(path))
    dataset.load()
    dataset.load()
    assert hashed == ["u.data"]  # checked once, then the cached result is used
    (folder / "u.data").write_bytes(b"1\t2\t3\t4\n")  # replaced by another file: checked again, and refused
    with pytest.raises(DatasetError, match="expected 06416e59"):
        dataset.load()
    assert hashed == ["u.data", "u.data"]
