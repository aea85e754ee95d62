"""Tests of the data stage: every bad input is a DataError with a clear message, and nothing half-written
is left behind. Downloads go to a real HTTP server on 127.0.0.1 that honours `Range: bytes=N-`."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import pickle
import re
import shutil
import socket
import tarfile
import threading
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest

from pipeline import data
from pipeline.data import DataError

REAL_ARCHIVE = Path(__file__).resolve().parents[2] / "shared/cifar10/cifar-10-python-rebuilt.tar.gz"
ARCHIVE_PATH = "/cifar-10-python.tar.gz"  # where the test server serves the tiny archive

# urllib honours http_proxy; the tests must talk to 127.0.0.1 directly.
direct_open = urllib.request.build_opener(urllib.request.ProxyHandler({})).open
ROW = data.ROW  # 3072 bytes per image


def md5_of(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def no_network(*args, **kwargs):
    raise AssertionError("this test must not download anything")


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")} if folder.exists() else set()


def write_pickle(path: Path, obj) -> Path:
    path.write_bytes(pickle.dumps(obj, protocol=2))
    return path


def copy_batch_dir(tiny_cifar, tmp_path: Path) -> Path:
    """A writable copy of the tiny extracted folder (the fixture is shared, so never modified)."""
    return Path(shutil.copytree(tiny_cifar.batch_dir, tmp_path / "cifar-10-batches-py"))


def make_tar(path: Path, members: dict, symlinks: dict | None = None) -> Path:
    """A .tar.gz holding `members` {name: bytes} and `symlinks` {name: target}."""
    with tarfile.open(path, "w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return path


def tiny_members(tiny_cifar, skip=()) -> dict:
    return {
        f"cifar-10-batches-py/{name}": (tiny_cifar.batch_dir / name).read_bytes()
        for name in tiny_cifar.md5s
        if name not in skip
    }


# ------------------------------------------------------------------------------------- local server


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves server.files; honours `Range: bytes=N-` with 206 when server.ranges is set;
    server.cut_at sends a full Content-Length but only that many bytes, then hangs up."""

    def do_GET(self):
        self.server.requests.append((self.path, self.headers.get("Range")))
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        start = int(match[1]) if match and self.server.ranges else 0
        if start >= len(body):
            self.send_error(416)
            return
        if start:
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        end = self.server.cut_at if self.server.cut_at is not None else len(body)
        self.wfile.write(body[start:end])

    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def server(tiny_cifar):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    httpd.files = {ARCHIVE_PATH: tiny_cifar.archive.read_bytes()}
    httpd.requests, httpd.ranges, httpd.cut_at = [], True, None
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}{ARCHIVE_PATH}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


# ----------------------------------------------------------------------------------------------- load


def test_load_data_tiny_shapes_layout_and_labels(tiny_cifar):
    x_train, y_train, x_test, y_test = data.load_data(tiny_cifar.batch_dir, expected_counts=tiny_cifar.counts)
    assert x_train.shape == (500, 32, 32, 3) and x_test.shape == (100, 32, 32, 3)
    assert x_train.dtype == np.uint8 and x_test.dtype == np.uint8
    assert y_train.dtype == np.int64 and y_test.dtype == np.int64
    assert x_train.flags.c_contiguous and x_test.flags.c_contiguous
    raw_train = np.concatenate([tiny_cifar.batches[name][0] for name in data.TRAIN_FILES])  # (500, 3072)
    labels_train = sum((tiny_cifar.batches[name][1] for name in data.TRAIN_FILES), [])
    np.testing.assert_array_equal(y_train, labels_train)
    np.testing.assert_array_equal(y_test, tiny_cifar.batches["test_batch"][1])
    # A row is 1024 red, 1024 green, 1024 blue values, each plane row-major 32x32.
    for i, h, w, c in [(0, 0, 0, 0), (7, 3, 17, 1), (123, 31, 30, 2), (499, 31, 31, 2)]:
        assert x_train[i, h, w, c] == raw_train[i, c * 1024 + h * 32 + w]
    np.testing.assert_array_equal(x_test.transpose(0, 3, 1, 2).reshape(100, ROW), tiny_cifar.batches["test_batch"][0])
    assert data.class_counts(y_train) == [50] * 10


def test_load_data_counts_mismatch(tiny_cifar):
    with pytest.raises(DataError, match=r"holds 500 training images, not 50000"):
        data.load_data(tiny_cifar.batch_dir)
    with pytest.raises(DataError, match=r"holds 100 test images, not 99"):
        data.load_data(tiny_cifar.batch_dir, expected_counts=(500, 99))


def test_load_batch_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        data.load_batch(tmp_path / "data_batch_1")


class Evil:
    """Unpickling this would run a shell command."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class EvalOnLoad:
    def __reduce__(self):
        return eval, ("__import__('os').getcwd()",)


class Rot13OnLoad:  # _codecs.encode is allowed only for latin1
    def __reduce__(self):
        import codecs

        return codecs.encode, ("abc", "rot13")


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = Path(f"/tmp/pwned-{uuid.uuid4().hex}")
    path = write_pickle(tmp_path / "data_batch_1", {b"data": Evil(f"touch {marker}"), b"labels": []})
    with pytest.raises(DataError, match=r"data_batch_1: refusing to unpickle (posix|os)\.system: .*may be malicious"):
        data.load_batch(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("payload", "refused"), [(EvalOnLoad(), "__builtin__.eval"), (Rot13OnLoad(), "_codecs.encode with 'rot13'")]
)
def test_other_globals_are_refused(tmp_path, payload, refused):
    path = write_pickle(tmp_path / "test_batch", payload)
    with pytest.raises(DataError, match=re.escape(f"refusing to unpickle {refused}")):
        data.load_batch(path)


def good_batch(n=4) -> dict:
    return {
        b"batch_label": b"x",
        b"labels": [0, 1, 2, 9][:n],
        b"data": np.zeros((n, ROW), np.uint8),
        b"filenames": [b"a"] * n,
    }


BAD_BATCHES = {
    "not a dict": ([1, 2, 3], "holds a list, not a dict"),
    "no data": ({b"labels": [0]}, "no 'data' entry"),
    "no labels": ({b"data": np.zeros((1, ROW), np.uint8)}, "no 'labels' entry"),
    "float data": (
        {**good_batch(), b"data": np.zeros((4, ROW), np.float32)},
        "data is a float32 array of shape (4, 3072), not a uint8",
    ),
    "wrong columns": ({**good_batch(), b"data": np.zeros((4, 3000), np.uint8)}, "shape (4, 3000)"),
    "1-D data": ({**good_batch(), b"data": np.zeros(4 * ROW, np.uint8)}, "shape (12288,)"),
    "data is a list": ({**good_batch(), b"data": [[0] * ROW] * 4}, "data is a list"),
    "label 10": ({**good_batch(), b"labels": [0, 1, 2, 10]}, "label 10, outside 0..9"),
    "label -1": ({**good_batch(), b"labels": [-1, 1, 2, 3]}, "label -1, outside 0..9"),
    "float labels": ({**good_batch(), b"labels": [0.0, 1.0, 2.0, 3.0]}, "labels are not a list of integers"),
    "labels not a list": ({**good_batch(), b"labels": b"0123"}, "labels are not a list of integers"),
    "too few labels": ({**good_batch(), b"labels": [0, 1, 2]}, "4 images but 3 labels"),
}


@pytest.mark.parametrize("case", BAD_BATCHES)
def test_bad_batch_content(tmp_path, case):
    obj, message = BAD_BATCHES[case]
    path = write_pickle(tmp_path / "data_batch_2", obj)
    with pytest.raises(DataError, match=re.escape(message)) as error:
        data.load_batch(path)
    assert str(path) in str(error.value)


def test_good_batch_loads(tmp_path):
    x, y = data.load_batch(write_pickle(tmp_path / "data_batch_1", good_batch()))
    assert x.shape == (4, ROW) and x.dtype == np.uint8
    assert y.tolist() == [0, 1, 2, 9] and y.dtype == np.int64


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_unreadable_pickle(tiny_cifar, tmp_path, damage):
    whole = (tiny_cifar.batch_dir / "data_batch_1").read_bytes()
    content = {"truncated": whole[: len(whole) // 2], "garbage": os.urandom(5000), "empty": b""}[damage]
    path = tmp_path / "data_batch_1"
    path.write_bytes(content)
    with pytest.raises(DataError, match="is not a readable pickle .*truncated or corrupt"):
        data.load_batch(path)


# -------------------------------------------------------------------------------------------- resolve


def test_resolve_source_order(tiny_cifar, tmp_path):
    cache = tmp_path / "cache"
    assert data.resolve_source(None, env={}, cache_dir=cache) is None  # no cache folder yet: download
    cache.mkdir()
    assert data.resolve_source(None, env={}, cache_dir=cache) is None
    shutil.copy(tiny_cifar.archive, cache / "cifar-10-python.tar.gz")
    assert data.resolve_source(None, env={}, cache_dir=cache) == cache / "cifar-10-python.tar.gz"
    shutil.copytree(tiny_cifar.batch_dir, cache / "cifar-10-batches-py")
    assert data.resolve_source(None, env={}, cache_dir=cache) == cache / "cifar-10-batches-py"  # extracted wins
    env = {"CIFAR10_PATH": str(tiny_cifar.archive)}
    assert data.resolve_source(None, env=env, cache_dir=cache) == tiny_cifar.archive  # env beats cache
    assert (
        data.resolve_source(str(tiny_cifar.batch_dir), env=env, cache_dir=cache) == tiny_cifar.batch_dir
    )  # explicit beats env
    assert data.resolve_source(None, env={"CIFAR10_PATH": ""}, cache_dir=cache) == cache / "cifar-10-batches-py"


def test_resolve_source_accepts_every_form(tiny_cifar):
    def resolve(source):
        return data.resolve_source(str(source), env={}, cache_dir=Path("/nonexistent"))

    assert resolve(tiny_cifar.archive) == tiny_cifar.archive
    assert resolve(tiny_cifar.batch_dir) == tiny_cifar.batch_dir
    assert resolve(tiny_cifar.root) == tiny_cifar.batch_dir  # a folder holding cifar-10-batches-py/
    assert resolve(tiny_cifar.batch_dir / "data_batch_3") == tiny_cifar.batch_dir  # a batch file: its folder


def test_resolve_source_missing_and_empty(tmp_path):
    with pytest.raises(DataError, match=r"--source .*nope does not exist; pass --source or set CIFAR10_PATH"):
        data.resolve_source(str(tmp_path / "nope"), env={}, cache_dir=tmp_path)
    with pytest.raises(DataError, match="--source is empty"):
        data.resolve_source("", env={}, cache_dir=tmp_path)
    with pytest.raises(DataError, match=r"CIFAR10_PATH .*gone does not exist"):
        data.resolve_source(None, env={"CIFAR10_PATH": str(tmp_path / "gone")}, cache_dir=tmp_path)
    with pytest.raises(DataError, match="holds neither cifar-10-batches-py/"):
        data.resolve_source(str(tmp_path), env={}, cache_dir=tmp_path)  # an existing but unrelated folder


# --------------------------------------------------------------------------------------------- verify


def test_verify_official(tiny_cifar, monkeypatch):
    monkeypatch.setattr(data, "OFFICIAL_MD5S", tiny_cifar.md5s)  # pretend the tiny files are the official ones
    assert data.verify_batches(tiny_cifar.batch_dir, allow_unofficial=False) == {
        "md5s": tiny_cifar.md5s,
        "official": True,
        "mismatched": [],
    }


def test_verify_mismatch_refused_without_flag_accepted_with_it(tiny_cifar):
    message = (
        r"data_batch_1 \(and 5 more files\) in .* has md5 [0-9a-f]{32}, which is not the official CIFAR-10 file; "
        r"pass --allow-unofficial-data \(or set CIFAR10_ALLOW_UNOFFICIAL=1\) to use it anyway"
    )
    with pytest.raises(DataError, match=message):
        data.verify_batches(tiny_cifar.batch_dir, allow_unofficial=False)
    info = data.verify_batches(tiny_cifar.batch_dir, allow_unofficial=True)
    assert info["official"] is False
    assert info["mismatched"] == list(data.BATCH_FILES)  # batches.meta is the official one
    assert info["md5s"] == tiny_cifar.md5s


def test_verify_single_mismatch_names_the_file(tiny_cifar, tmp_path, monkeypatch):
    batch_dir = copy_batch_dir(tiny_cifar, tmp_path)
    monkeypatch.setattr(data, "OFFICIAL_MD5S", tiny_cifar.md5s)
    write_pickle(batch_dir / "data_batch_3", good_batch())
    with pytest.raises(DataError, match=r"^data_batch_3 in .* has md5"):
        data.verify_batches(batch_dir, allow_unofficial=False)
    assert data.verify_batches(batch_dir, allow_unofficial=True)["mismatched"] == ["data_batch_3"]


def test_verify_missing_file(tiny_cifar, tmp_path):
    batch_dir = copy_batch_dir(tiny_cifar, tmp_path)
    (batch_dir / "test_batch").unlink()
    with pytest.raises(DataError, match="lacks test_batch"):
        data.verify_batches(batch_dir, allow_unofficial=True)


@pytest.mark.parametrize(
    ("flag", "env", "expected"),
    [
        (False, {}, False),
        (True, {}, True),
        (False, {"CIFAR10_ALLOW_UNOFFICIAL": "1"}, True),
        (False, {"CIFAR10_ALLOW_UNOFFICIAL": "Yes"}, True),
        (False, {"CIFAR10_ALLOW_UNOFFICIAL": "true"}, True),
        (False, {"CIFAR10_ALLOW_UNOFFICIAL": "0"}, False),
        (False, {"CIFAR10_ALLOW_UNOFFICIAL": ""}, False),
    ],
)
def test_allow_unofficial_from(flag, env, expected):
    assert data.allow_unofficial_from(flag, env) is expected


# -------------------------------------------------------------------------------------------- extract


def assert_nothing_left(dest: Path):
    assert files_under(dest) == set(), f"extraction left {files_under(dest)}"


def test_extract_archive(tiny_cifar, tmp_path):
    dest = tmp_path / "cache"
    batch_dir = data.extract_archive(tiny_cifar.archive, dest)
    assert batch_dir == dest / "cifar-10-batches-py"
    assert {name: md5_of(batch_dir / name) for name in tiny_cifar.md5s} == tiny_cifar.md5s
    assert files_under(dest) == {
        "cifar-10-batches-py",
        *(f"cifar-10-batches-py/{n}" for n in [*tiny_cifar.md5s, "readme.html"]),
    }
    assert data.extract_archive(tiny_cifar.archive, dest) == batch_dir  # again, over the old folder
    assert len(files_under(dest)) == 9


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "flipped"])
def test_extract_corrupt_archive(tiny_cifar, tmp_path, damage):
    whole = tiny_cifar.archive.read_bytes()
    middle = len(whole) // 2
    content = {
        "truncated": whole[:middle],
        "garbage": os.urandom(len(whole)),
        "empty": b"",
        "flipped": whole[:middle] + bytes([whole[middle] ^ 0xFF]) + whole[middle + 1 :],
    }[damage]
    archive = tmp_path / "cifar-10-python.tar.gz"
    archive.write_bytes(content)
    dest = tmp_path / "out"
    with pytest.raises(DataError, match=r"archive .* is truncated or corrupt; delete it and download again"):
        data.extract_archive(archive, dest)
    assert_nothing_left(dest)


def test_extract_archive_missing_member(tiny_cifar, tmp_path):
    archive = make_tar(tmp_path / "a.tar.gz", tiny_members(tiny_cifar, skip=["test_batch"]))
    with pytest.raises(
        DataError, match="lacks cifar-10-batches-py/test_batch; it is not the complete CIFAR-10 archive"
    ):
        data.extract_archive(archive, tmp_path / "out")
    assert_nothing_left(tmp_path / "out")


def test_extract_archive_refuses_links_and_skips_strangers(tiny_cifar, tmp_path):
    members = tiny_members(tiny_cifar)
    linked = make_tar(
        tmp_path / "linked.tar.gz",
        tiny_members(tiny_cifar, skip=["data_batch_1"]),
        {"cifar-10-batches-py/data_batch_1": "/etc/passwd"},
    )
    with pytest.raises(DataError, match="data_batch_1 as a link or special file"):
        data.extract_archive(linked, tmp_path / "out")
    assert_nothing_left(tmp_path / "out")
    # Members outside the whitelist (path traversal, absolute paths, extra files) are never written.
    absolute = f"/tmp/absolute-{uuid.uuid4().hex}"
    strangers = {"../escaped": b"x", absolute: b"x", "cifar-10-batches-py/extra.py": b"x"}
    sneaky = make_tar(tmp_path / "sneaky.tar.gz", {**strangers, **members}, {"cifar-10-batches-py/link": "/etc"})
    batch_dir = data.extract_archive(sneaky, tmp_path / "out2" / "deep")
    assert sorted(p.name for p in batch_dir.iterdir()) == sorted(tiny_cifar.md5s)
    assert not (tmp_path / "out2" / "escaped").exists() and not Path(absolute).exists()


# ------------------------------------------------------------------------------------------- download


def test_download_full_with_md5(server, tiny_cifar, tmp_path):
    dest = tmp_path / "dl" / "cifar-10-python.tar.gz"
    assert data.download(server.url, dest, tiny_cifar.archive_md5, opener=direct_open, progress=True) == dest
    assert md5_of(dest) == tiny_cifar.archive_md5
    assert not dest.with_name(dest.name + ".part").exists()
    assert server.requests == [(ARCHIVE_PATH, None)]


def test_download_resumes_a_part(server, tiny_cifar, tmp_path):
    whole = tiny_cifar.archive.read_bytes()
    dest = tmp_path / "cifar-10-python.tar.gz"
    dest.with_name(dest.name + ".part").write_bytes(whole[: len(whole) // 2])
    data.download(server.url, dest, tiny_cifar.archive_md5, opener=direct_open, progress=False)
    assert server.requests == [(ARCHIVE_PATH, f"bytes={len(whole) // 2}-")]
    assert md5_of(dest) == tiny_cifar.archive_md5


def test_download_restarts_when_server_ignores_range(server, tiny_cifar, tmp_path):
    server.ranges = False  # answers 200 with the whole file
    dest = tmp_path / "cifar-10-python.tar.gz"
    dest.with_name(dest.name + ".part").write_bytes(b"stale bytes that must not be kept")
    data.download(server.url, dest, tiny_cifar.archive_md5, opener=direct_open, progress=False)
    assert server.requests[0][1] is not None
    assert md5_of(dest) == tiny_cifar.archive_md5


def test_download_interrupted_then_resumed(server, tiny_cifar, tmp_path):
    dest = tmp_path / "cifar-10-python.tar.gz"
    part = dest.with_name(dest.name + ".part")
    server.cut_at = 1000  # the connection drops after 1000 bytes
    with pytest.raises(DataError, match=r"got 1000 of \d+ bytes; run again to resume"):
        data.download(server.url, dest, tiny_cifar.archive_md5, opener=direct_open, progress=False)
    assert part.stat().st_size == 1000 and not dest.exists()
    server.cut_at = None
    data.download(server.url, dest, tiny_cifar.archive_md5, opener=direct_open, progress=False)
    assert server.requests[-1] == (ARCHIVE_PATH, "bytes=1000-")
    assert md5_of(dest) == tiny_cifar.archive_md5 and not part.exists()


def test_download_complete_part_is_kept(server, tiny_cifar, tmp_path):
    """A part already whole (killed before the rename): the server answers 416 and the part is used."""
    dest = tmp_path / "cifar-10-python.tar.gz"
    shutil.copy(tiny_cifar.archive, dest.with_name(dest.name + ".part"))
    data.download(server.url, dest, tiny_cifar.archive_md5, opener=direct_open, progress=False)
    assert md5_of(dest) == tiny_cifar.archive_md5


def test_download_md5_mismatch(server, tmp_path):
    dest = tmp_path / "cifar-10-python.tar.gz"
    with pytest.raises(DataError, match=r"has md5 [0-9a-f]{32}, not 0{32}, so it was deleted"):
        data.download(server.url, dest, "0" * 32, opener=direct_open, progress=False)
    assert files_under(tmp_path) == set()


def test_download_404(server, tmp_path):
    url = server.url.replace(ARCHIVE_PATH, "/missing.tar.gz")
    with pytest.raises(
        DataError, match=rf"downloading {re.escape(url)} failed: HTTP 404 .*pass --source or set CIFAR10_PATH"
    ):
        data.download(url, tmp_path / "x.tar.gz", None, opener=direct_open, progress=False)
    assert files_under(tmp_path) == set()


def test_download_connection_refused(tmp_path):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/cifar-10-python.tar.gz"
    with pytest.raises(
        DataError, match=rf"downloading {re.escape(url)} failed \(.*refused.*\); run again to resume, or pass --source"
    ):
        data.download(url, tmp_path / "x.tar.gz", None, opener=direct_open, progress=False)


# ---------------------------------------------------------------------------------------------- split


def test_train_val_split():
    train, val = data.train_val_split(1000, val_size=100, seed=3)
    assert len(train) == 900 and len(val) == 100
    assert np.intersect1d(train, val).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(1000))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)
    again = data.train_val_split(1000, val_size=100, seed=3)
    np.testing.assert_array_equal(again[1], val)
    assert not np.array_equal(data.train_val_split(1000, val_size=100, seed=4)[1], val)
    train, val = data.train_val_split(50000)
    assert len(train) == 45000 and len(val) == 5000


@pytest.mark.parametrize("val_size", [0, -1, 10, 11])
def test_train_val_split_bad_sizes(val_size):
    with pytest.raises(DataError, match=rf"validation size {val_size} must be between 1 and 9"):
        data.train_val_split(10, val_size=val_size)


# -------------------------------------------------------------------------------------------- prepare


def test_prepare_downloads_extracts_and_reuses_the_cache(server, tiny_cifar, tmp_path):
    cache = tmp_path / "data"
    batch_dir, info = data.prepare(None, True, cache_dir=cache, env={}, url=server.url, opener=direct_open)
    assert batch_dir == cache / "cifar-10-batches-py"
    assert info == {
        "source": str(cache / "cifar-10-python.tar.gz"),
        "official": False,
        "md5s": tiny_cifar.md5s,
        "mismatched": list(data.BATCH_FILES),
    }
    assert len(server.requests) == 1
    x_train, *_ = data.load_data(batch_dir, expected_counts=tiny_cifar.counts)
    assert x_train.shape == (500, 32, 32, 3)
    # The second run finds the extracted folder and touches neither the network nor the archive.
    again, info2 = data.prepare(None, True, cache_dir=cache, env={}, url=server.url, opener=no_network)
    assert again == batch_dir and info2 == {**info, "source": str(batch_dir)}
    assert len(server.requests) == 1


def test_prepare_refuses_unofficial_unless_allowed(server, tiny_cifar, tmp_path):
    cache = tmp_path / "data"
    with pytest.raises(DataError, match="pass --allow-unofficial-data"):
        data.prepare(None, False, cache_dir=cache, env={}, url=server.url, opener=direct_open)
    # The refused run keeps the download but not its extraction: the next run extracts it again.
    assert files_under(cache) == {"cifar-10-python.tar.gz"}
    env = {"CIFAR10_ALLOW_UNOFFICIAL": "1"}
    batch_dir, info = data.prepare(None, False, cache_dir=cache, env=env, url=server.url, opener=no_network)
    assert info["official"] is False and batch_dir == cache / "cifar-10-batches-py"


def test_prepare_official_url_checks_archive_md5(server, tmp_path, monkeypatch):
    monkeypatch.setattr(data, "OFFICIAL_URL", server.url)  # the tiny archive's md5 is not the official one
    with pytest.raises(DataError, match=f"not {data.OFFICIAL_ARCHIVE_MD5}, so it was deleted"):
        data.prepare(None, True, cache_dir=tmp_path, env={}, url=server.url, opener=direct_open)
    assert files_under(tmp_path) == set()


def test_prepare_user_archive_is_extracted_into_the_cache_once(tiny_cifar, tmp_path, monkeypatch):
    user = tmp_path / "downloads"
    user.mkdir()
    archive = Path(shutil.copy(tiny_cifar.archive, user / "my-cifar.tar.gz"))
    cache = tmp_path / "data"
    batch_dir, info = data.prepare(str(archive), True, cache_dir=cache, env={}, opener=no_network)
    assert batch_dir == cache / f"extracted-{tiny_cifar.archive_md5[:8]}" / "cifar-10-batches-py"
    assert info["source"] == str(archive) and info["md5s"] == tiny_cifar.md5s
    assert files_under(user) == {"my-cifar.tar.gz"} and md5_of(archive) == tiny_cifar.archive_md5
    monkeypatch.setattr(data, "extract_archive", no_network)  # a second run must reuse the extraction
    assert (
        data.prepare(None, True, cache_dir=cache, env={"CIFAR10_PATH": str(archive)}, opener=no_network)[0] == batch_dir
    )


def test_prepare_from_a_folder_writes_nothing(tiny_cifar, tmp_path):
    cache = tmp_path / "data"
    batch_dir, info = data.prepare(str(tiny_cifar.root), True, cache_dir=cache, env={}, opener=no_network)
    assert batch_dir == tiny_cifar.batch_dir and info["source"] == str(tiny_cifar.batch_dir)
    assert not cache.exists()


# ---------------------------------------------------------------------------------------- real data


@pytest.mark.skipif(not REAL_ARCHIVE.is_file(), reason="the rebuilt CIFAR-10 archive is not on this machine")
def test_real_rebuilt_archive(tmp_path):
    """The real pickles load through the restricted unpickler; the rebuild differs from the official md5s."""
    cache = tmp_path / "data"
    try:
        with pytest.raises(DataError, match=r"data_batch_1 \(and 5 more files\) .* not the official CIFAR-10 file"):
            data.prepare(str(REAL_ARCHIVE), False, cache_dir=cache, env={}, opener=no_network)
        assert files_under(cache) == set()  # the refusal removed its 186 MB extraction
        batch_dir, info = data.prepare(str(REAL_ARCHIVE), True, cache_dir=cache, env={}, opener=no_network)
        verified = data.verify_batches(batch_dir, allow_unofficial=True)
        assert info == {"source": str(REAL_ARCHIVE), **verified}
        assert verified["official"] is False and verified["mismatched"] == list(data.BATCH_FILES)
        assert verified["md5s"]["batches.meta"] == data.OFFICIAL_MD5S["batches.meta"]
        x_train, y_train, x_test, y_test = data.load_data(batch_dir)
        assert x_train.shape == (50000, 32, 32, 3) and x_test.shape == (10000, 32, 32, 3)
        assert x_train.dtype == np.uint8 and y_train.dtype == np.int64
        assert data.class_counts(y_train) == [5000] * 10 and data.class_counts(y_test) == [1000] * 10
    finally:
        shutil.rmtree(cache, ignore_errors=True)  # 180 MB; pytest keeps recent tmp dirs
