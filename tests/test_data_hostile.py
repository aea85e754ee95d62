"""Hostile inputs to the data stage (issue #14, round two): decompression bombs, oversized and crafted
pickles, archive header tricks and the litter of failed or killed runs. Every one is refused with one
DataError line, using about the memory and disk that loading the real data does, and leaves nothing
behind. The bombs are built without ever holding their expanded size: gzip files may be concatenated
members, so a member of 1 MiB of zeros (about 1 KB) repeated 1024 times is a 1 GiB stream."""

from __future__ import annotations

import fcntl
import gzip
import io
import os
import pickle
import re
import shutil
import signal
import struct
import subprocess
import sys
import tarfile
import textwrap
import time
import tracemalloc
import uuid
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import data
from pipeline.data import DataError
from pipeline.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
ROW = data.ROW
MIB = 1 << 20
GIB = 1 << 30
ZERO_MIB_GZ = gzip.compress(bytes(MIB), compresslevel=9)  # one gzip member: 1 MiB of zeros in about 1 KB
PEAK_BYTES_SMALL_INPUT = 32 * MIB  # tracemalloc peak allowed for any input of a few KB
BATCH = "cifar-10-batches-py"
HYPOTHESIS = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")} if folder.exists() else set()


def no_network(*args, **kwargs):
    raise AssertionError("this test must not download anything")


# ------------------------------------------------------------------------------------- archive builders


def zeros_gz(n: int) -> bytes:
    """gzip members that decompress to n zero bytes, built without holding n bytes."""
    whole, rest = divmod(n, MIB)
    return ZERO_MIB_GZ * whole + (gzip.compress(bytes(rest)) if rest else b"")


def header(name: str, size: int, kind: bytes = tarfile.REGTYPE, fmt=tarfile.GNU_FORMAT, **fields) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.type = size, kind
    for key, value in fields.items():
        setattr(info, key, value)
    return info.tobuf(fmt, "utf-8", "surrogateescape")


def zeros_archive(path: Path, members: list[tuple[str, int]], tail: int = 0, prefix: bytes = b"") -> Path:
    """A .tar.gz of regular members (name, size) holding zeros, then `tail` zero bytes after the end."""
    parts = [gzip.compress(prefix)]
    for name, size in members:
        parts += [gzip.compress(header(name, size)), zeros_gz(size), gzip.compress(bytes(-size % 512))]
    parts += [gzip.compress(bytes(1024)), zeros_gz(tail)]  # end-of-archive blocks, then anything
    path.write_bytes(b"".join(parts))
    return path


def tar_gz(path: Path, members: list[tuple[tarfile.TarInfo, bytes]], fmt=tarfile.GNU_FORMAT) -> Path:
    with tarfile.open(path, "w:gz", format=fmt) as tar:
        for info, content in members:
            tar.addfile(info, io.BytesIO(content) if info.isreg() else None)
    return path


def tiny_members(tiny_cifar) -> list[tuple[tarfile.TarInfo, bytes]]:
    out = []
    for name in [*tiny_cifar.md5s, "readme.html"]:
        content = (tiny_cifar.batch_dir / name).read_bytes()
        info = tarfile.TarInfo(f"{BATCH}/{name}")
        info.size = len(content)
        out.append((info, content))
    return out


@pytest.fixture
def bytes_read(monkeypatch):
    """How many decompressed bytes extract_archive reads: a bomb must be refused before expanding."""
    counter = {"n": 0}
    read = data._CappedReader.read

    def counting(self, n=-1):
        chunk = read(self, n)
        counter["n"] += len(chunk)
        return chunk

    monkeypatch.setattr(data._CappedReader, "read", counting)
    return counter


# ---------------------------------------------------------------------------------- archives: limits


def test_limits_fit_the_real_and_the_test_data(tiny_cifar):
    assert data.PIXEL_BYTES == 10_000 * 3 * 32 * 32
    for real_size in (31_035_704, 31_040_482):  # official data_batch_1; largest rebuilt batch
        assert real_size < data.MAX_BATCH_BYTES < real_size * 1.05
    assert max((tiny_cifar.batch_dir / n).stat().st_size for n in data.BATCH_FILES) < data.MAX_BATCH_BYTES
    assert 6 * 31_040_482 + 200 < data.MAX_ARCHIVE_BYTES < 1.5 * 186_241_875


def test_decompression_bomb_is_refused_before_writing(tmp_path, bytes_read):
    archive = zeros_archive(tmp_path / "bomb.tar.gz", [(f"{BATCH}/data_batch_1", GIB)])
    assert archive.stat().st_size < 2 * MIB  # 1 GiB of zeros in ~1 MB
    dest = tmp_path / "cache" / "extracted-x"
    started = time.perf_counter()
    with pytest.raises(DataError, match=r"has a 1,073,741,824-byte member, more than any CIFAR-10 file "
                                        r"\(32,065,536\); it is not the CIFAR-10 archive, delete it$"):
        data.extract_archive(archive, dest)
    assert time.perf_counter() - started < 5
    assert bytes_read["n"] <= 10_240  # the header record: nothing of the member was decompressed
    assert files_under(tmp_path / "cache") == set() and not dest.exists()


def test_bomb_through_prepare_without_the_flag_leaves_nothing(tmp_path, bytes_read):
    archive = zeros_archive(tmp_path / "bomb.tar.gz", [(f"{BATCH}/test_batch", GIB)])
    cache = tmp_path / "data"
    with pytest.raises(DataError, match="more than any CIFAR-10 file"):
        data.prepare(str(archive), False, cache_dir=cache, env={}, opener=no_network)
    assert bytes_read["n"] <= 10_240
    assert files_under(cache) == set()


@pytest.mark.parametrize(
    ("name", "size", "message"),
    [
        ("data_batch_3", data.MAX_BATCH_BYTES + 1, r"has a 32,065,537-byte member, more than any CIFAR-10 file"),
        ("batches.meta", data.MAX_SMALL_BYTES + 1, r"has a 65,537-byte cifar-10-batches-py/batches.meta; "
                                                   r"that file is at most 65,536 bytes"),
        ("readme.html", 5 * MIB, r"has a 5,242,880-byte cifar-10-batches-py/readme.html; that file is at most"),
    ],
)
def test_each_member_is_checked_against_its_file(tmp_path, bytes_read, name, size, message):
    archive = zeros_archive(tmp_path / "a.tar.gz", [(f"{BATCH}/{name}", size)])
    with pytest.raises(DataError, match=message):
        data.extract_archive(archive, tmp_path / "out")
    assert bytes_read["n"] <= 10_240 and files_under(tmp_path / "out") == set()


def test_members_at_their_limit_are_written(tmp_path):
    """The largest allowed members pass the size checks (and fail later only for being incomplete)."""
    members = [(f"{BATCH}/data_batch_1", data.MAX_BATCH_BYTES), (f"{BATCH}/batches.meta", data.MAX_SMALL_BYTES)]
    archive = zeros_archive(tmp_path / "a.tar.gz", members)
    with pytest.raises(DataError, match="lacks cifar-10-batches-py/data_batch_2"):
        data.extract_archive(archive, tmp_path / "out")
    assert files_under(tmp_path / "out") == set()


def test_strangers_and_trailing_data_cannot_expand_past_the_budget(tmp_path, monkeypatch, bytes_read):
    monkeypatch.setattr(data, "MAX_ARCHIVE_BYTES", 8 * MIB)  # the real one is 224 MB: same code, faster test
    strangers = zeros_archive(tmp_path / "s.tar.gz", [(f"junk/{i}", 3 * MIB) for i in range(5)])
    with pytest.raises(DataError, match=r"expands to more than 8,388,608 bytes, more than CIFAR-10 can"):
        data.extract_archive(strangers, tmp_path / "out")
    assert bytes_read["n"] <= 8 * MIB + 1
    trailing = zeros_archive(tmp_path / "t.tar.gz", [(f"{BATCH}/readme.html", 10)], tail=GIB)
    with pytest.raises(DataError, match="expands to more than"):
        data.extract_archive(trailing, tmp_path / "out")
    assert files_under(tmp_path / "out") == set()


def test_member_count_is_capped(tmp_path):
    archive = zeros_archive(tmp_path / "many.tar.gz", [(f"junk/{i}", 0) for i in range(200)])
    with pytest.raises(DataError, match=r"has more than 64 members; it is not the CIFAR-10 archive"):
        data.extract_archive(archive, tmp_path / "out")
    assert files_under(tmp_path / "out") == set()


def test_huge_pax_header_is_refused_unread(tmp_path, bytes_read):
    # tarfile would read this header's 512 MiB into memory and parse it; the check comes first.
    archive = zeros_archive(tmp_path / "pax.tar.gz", [], prefix=header("x", 512 * MIB, tarfile.XHDTYPE))
    with pytest.raises(DataError, match=r"has a 536,870,912-byte extended header, more than 65,536"):
        data.extract_archive(archive, tmp_path / "out")
    assert bytes_read["n"] <= 10_240
    long_name = header("././@LongLink", GIB, tarfile.GNUTYPE_LONGNAME)
    longname = zeros_archive(tmp_path / "ln.tar.gz", [], prefix=long_name)
    with pytest.raises(DataError, match="-byte extended header"):
        data.extract_archive(longname, tmp_path / "out")


def test_chain_of_headers_is_refused_not_a_recursion_error(tmp_path):
    """tarfile follows pax headers by recursion: 2000 of them would raise RecursionError, not a DataError."""
    one = header("x", 0, fmt=tarfile.PAX_FORMAT, pax_headers={"comment": "x"})[:-512]  # the pax part only
    archive = zeros_archive(tmp_path / "chain.tar.gz", [(f"{BATCH}/readme.html", 1)], prefix=one * 2000)
    with pytest.raises(DataError, match="has more than 64 members"):
        data.extract_archive(archive, tmp_path / "out")


def test_duplicate_and_sparse_members_are_refused(tiny_cifar, tmp_path):
    members = tiny_members(tiny_cifar)
    twice = tar_gz(tmp_path / "twice.tar.gz", [*members, members[0]])
    with pytest.raises(DataError, match=r"has cifar-10-batches-py/data_batch_1 twice"):
        data.extract_archive(twice, tmp_path / "out")
    sparse = zeros_archive(tmp_path / "s.tar.gz", [], prefix=header(f"{BATCH}/data_batch_1", 0, tarfile.GNUTYPE_SPARSE))
    with pytest.raises(DataError, match="has an old-style sparse member"):
        data.extract_archive(sparse, tmp_path / "out")
    assert files_under(tmp_path / "out") == set()


def test_copy_stops_at_the_declared_size(tmp_path):
    with pytest.raises(data._Refused, match=r"more data in f than its header says \(50 bytes\)"):
        data._copy_at_most(io.BytesIO(bytes(5000)), tmp_path / "f", 50)


def test_oversized_archive_file_is_refused_before_hashing(tmp_path):
    archive = tmp_path / "big.tar.gz"
    with open(archive, "wb") as f:
        f.truncate(data.MAX_ARCHIVE_FILE_BYTES + 1)  # sparse: takes no disk
    too_big = f"{data.MAX_ARCHIVE_FILE_BYTES + 1:,}"
    with pytest.raises(DataError, match=rf"is {too_big} bytes, more than the CIFAR-10 archive can be"):
        data.prepare(str(archive), True, cache_dir=tmp_path / "data", env={}, opener=no_network)
    assert files_under(tmp_path / "data") == set()


class FakeResponse:
    """What urlopen returns, serving `size` zero bytes; `announce` sets Content-Length."""

    def __init__(self, size: int, announce: bool):
        self.status, self.left = 200, size
        self.headers = {"Content-Length": str(size)} if announce else {}

    def read(self, n):
        n = min(n, self.left)
        self.left -= n
        return bytes(n)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("announce", [True, False])
def test_download_refuses_more_than_the_archive_can_be(tmp_path, announce):
    sent = []

    def opener(request, timeout):
        sent.append(FakeResponse(10 * MIB, announce))
        return sent[-1]

    dest = tmp_path / "cifar-10-python.tar.gz"
    with pytest.raises(DataError, match=r"sends more than 4,194,304 bytes, .* so it was deleted; pass --source"):
        data.download("http://example/x.tar.gz", dest, None, opener=opener, progress=False, max_bytes=4 * MIB)
    assert files_under(tmp_path) == set()
    assert sent[0].left >= 10 * MIB - 5 * MIB  # stopped reading soon after the limit


# ---------------------------------------------------------------------------------- archives: property


NAMES = [f"{BATCH}/{n}" for n in (*data.OFFICIAL_MD5S, "readme.html")] + [
    f"{BATCH}/extra.py", "../escaped-{tag}", "/tmp/absolute-{tag}", BATCH, f"./{BATCH}/data_batch_1",
    f"{BATCH}/" + "long" * 60,
]
KINDS = [tarfile.REGTYPE] * 6 + [tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE,
                                 tarfile.CHRTYPE]
SMALL_LIMITS = {"MAX_BATCH_BYTES": 2048, "MAX_SMALL_BYTES": 256, "MAX_MEMBERS": 12, "MAX_ARCHIVE_BYTES": 64 << 10}


@st.composite
def archive_members(draw):
    members = []
    if draw(st.booleans()):  # start from the complete set, so that some archives are good
        for name in data.OFFICIAL_MD5S:
            info = tarfile.TarInfo(f"{BATCH}/{name}")
            content = bytes([draw(st.integers(0, 255))]) * draw(st.sampled_from([0, 10, 256]))
            info.size = len(content)
            members.append((info, content))
    for _ in range(draw(st.integers(0, 8))):
        info = tarfile.TarInfo(draw(st.sampled_from(NAMES)))
        info.type = draw(st.sampled_from(KINDS))
        info.mode = draw(st.sampled_from([0o644, 0o4755, 0o777]))
        content = b""
        if info.type == tarfile.REGTYPE:
            size = draw(st.sampled_from([0, 1, 255, 256, 257, 2047, 2048, 2049, 5000]))
            content = bytes([draw(st.integers(0, 255))]) * size
        else:
            info.linkname = draw(st.sampled_from(["/etc/passwd", f"{BATCH}/data_batch_2", "../x"]))
        info.size = len(content)
        members.insert(draw(st.integers(0, len(members))), (info, content))
    return members


@settings(max_examples=60, **HYPOTHESIS)
@given(members=archive_members(), fmt=st.sampled_from([tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]))
def test_any_archive_extracts_within_limits_or_is_refused_cleanly(tmp_path_factory, members, fmt):
    tag = uuid.uuid4().hex
    for info, _ in members:
        info.name = info.name.format(tag=tag)
    root = tmp_path_factory.mktemp("prop")
    archive = tar_gz(root / "a.tar.gz", members, fmt)
    dest = root / "cache" / "extracted-x"
    with pytest.MonkeyPatch.context() as mp:
        for name, value in SMALL_LIMITS.items():
            mp.setattr(data, name, value)
        try:
            batch_dir = data.extract_archive(archive, dest)
        except UserError as e:
            assert "\n" not in str(e)
            assert files_under(root / "cache") == set()
        else:
            written = {p.name: p.read_bytes() for p in batch_dir.iterdir()}
            assert set(data.OFFICIAL_MD5S) <= set(written) <= {*data.OFFICIAL_MD5S, "readme.html"}
            expected = {info.name.split("/")[-1]: c for info, c in members if info.name.startswith(f"{BATCH}/")}
            for name, content in written.items():
                assert len(content) <= data._member_limit(name) and content == expected[name]
                assert (batch_dir / name).stat().st_mode & 0o7000 == 0  # no setuid from the archive
            assert files_under(dest) == {BATCH, *(f"{BATCH}/{n}" for n in written)}
    assert not Path(f"/tmp/absolute-{tag}").exists() and not (root / "cache" / f"escaped-{tag}").exists()
    assert not (root / f"escaped-{tag}").exists()


# ------------------------------------------------------------------------------------ pickle builders


def short_str(text: bytes) -> bytes:
    return pickle.SHORT_BINSTRING + bytes([len(text)]) + text  # a Python 2 str: loads as bytes


def labels_pickle(n_labels: int) -> bytes:
    """{b"labels": [0] * n_labels} as protocol 2 writes it (batches of 1000 APPENDS), built in bytes."""
    chunk = pickle.MARK + b"K\x00" * 1000 + pickle.APPENDS
    return (b"\x80\x02" + pickle.EMPTY_DICT + pickle.MARK + short_str(b"labels") + pickle.EMPTY_LIST
            + chunk * (n_labels // 1000) + pickle.SETITEMS + pickle.STOP)


def write(path: Path, raw: bytes) -> Path:
    path.write_bytes(raw)
    return path


def peak_of(function, *args) -> tuple[object, int]:
    """(result or exception, tracemalloc peak in bytes) of function(*args)."""
    tracemalloc.start()
    try:
        try:
            result = function(*args)
        except Exception as e:  # noqa: BLE001 - returned for the caller to check
            result = e
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def peak_rss_delta(code: str) -> tuple[str, float]:
    """Run `code` in a fresh interpreter after importing the data stage: (its output, peak RSS growth MiB).
    Needs Linux (/proc/self/status)."""
    script = textwrap.dedent(
        """
        import re
        from pathlib import Path
        from pipeline import data
        def peak():  # VmHWM, not ru_maxrss: that one keeps the (large) pytest parent's peak across exec
            return int(re.search(r"VmHWM:\\s*(\\d+) kB", open("/proc/self/status").read())[1]) / 1024
        before = peak()
        try:
            {code}
        except data.DataError as e:
            print("refused:", e)
        print(peak() - before)
        """
    ).format(code=code)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         check=True).stdout.strip().splitlines()
    return "\n".join(out[:-1]), float(out[-1])


# ------------------------------------------------------------------------------------- pickles: attacks


def test_huge_labels_list_is_refused_with_bounded_memory(tmp_path):
    """A 30 MB pickle of 15 million labels (the old loader built the 120 MB list first); for scale,
    loading a real-size batch of 10,000 images."""
    attack = write(tmp_path / "data_batch_1", labels_pickle(15_000_000))
    assert attack.stat().st_size <= data.MAX_BATCH_BYTES
    real = tmp_path / "real" / "data_batch_1"
    real.parent.mkdir()
    batch = {b"data": np.zeros((10_000, ROW), np.uint8), b"labels": [i % 10 for i in range(10_000)]}
    real.write_bytes(pickle.dumps(batch, protocol=2))
    del batch
    said, attack_mib = peak_rss_delta(f"data.load_batch(Path({str(attack)!r}))")
    assert re.fullmatch(r"refused: .*data_batch_1: it holds a list or dict of more than 10,000 items, more "
                        r"than a CIFAR batch \(at most 10,000 labels\); it is not a CIFAR batch, delete it", said)
    said_real, real_mib = peak_rss_delta(f"print(data.load_batch(Path({str(real)!r}))[0].shape)")
    assert said_real == "(10000, 3072)"
    file_mib = attack.stat().st_size / MIB
    assert attack_mib < file_mib + 16 and attack_mib < real_mib, (attack_mib, real_mib)


def test_gzipped_labels_bomb_in_an_archive_is_refused_unwritten(tmp_path, bytes_read):
    """The attack run's 161 KB archive: a labels pickle of 160 MB, refused at its tar header."""
    n = 80_000_000
    unit = gzip.compress((pickle.MARK + b"K\x00" * 1000 + pickle.APPENDS) * 1000, compresslevel=9)
    size = len(labels_pickle(0)) + n // 1000 * 2002
    archive = tmp_path / "labels.tar.gz"
    archive.write_bytes(gzip.compress(header(f"{BATCH}/data_batch_1", size)) + unit * (n // 1_000_000)
                        + gzip.compress(bytes(2048)))
    assert archive.stat().st_size < 400_000
    with pytest.raises(DataError, match=r"has a 160,160,\d{3}-byte member, more than any CIFAR-10 file"):
        data.prepare(str(archive), False, cache_dir=tmp_path / "data", env={}, opener=no_network)
    assert bytes_read["n"] <= 10_240 and files_under(tmp_path / "data") == set()


def test_oversized_pickle_is_refused_unread(tiny_cifar, tmp_path):
    folder = Path(shutil.copytree(tiny_cifar.batch_dir, tmp_path / BATCH))
    with open(folder / "data_batch_5", "wb") as f:
        f.truncate(data.MAX_BATCH_BYTES + 1)  # sparse: takes no disk
    result, peak = peak_of(data.load_batch, folder / "data_batch_5")
    assert isinstance(result, DataError) and peak < MIB
    assert "data_batch_5 is larger than a batch of 10,000 CIFAR images can be (32,065,536 bytes)" in str(result)
    with pytest.raises(DataError, match=r"^data_batch_5 in .* is 32,065,537 bytes, more than the CIFAR-10 file"):
        data.verify_batches(folder, allow_unofficial=True)


GLOBAL_ENCODE = b"c_codecs\nencode\n"
ATTACKS = {
    # the C unpickler allocates its memo array up to the largest index: 8 bytes x 2^32
    "memo index": (b"\x80\x02N" + pickle.LONG_BINPUT + struct.pack("<I", 0xFFFFFFF0) + b".", "memo index"),
    # a string declared 2^60 bytes long (the buffered reader would allocate first)
    "declared length": (b"\x80\x04" + pickle.BINBYTES8 + struct.pack("<Q", 1 << 60) + b"abc.",
                        "not a readable pickle"),
    # a 1 MB string memoized once and encoded again 3000 times: 3 GB from a 1 MB file
    "reuse": (b"\x80\x02" + pickle.EMPTY_LIST + GLOBAL_ENCODE + pickle.BINPUT + b"\x00"
              + pickle.BINUNICODE + struct.pack("<I", MIB) + b"a" * MIB + pickle.BINPUT + b"\x01" + pickle.POP
              + pickle.POP + (pickle.BINGET + b"\x00" + pickle.BINGET + b"\x01" + short_str(b"latin1")
                              + pickle.TUPLE2 + pickle.REDUCE + pickle.APPEND) * 3000 + b".", "reuses a 1,048,"),
    # a string longer than a batch's pixels
    "string": (b"\x80\x02" + pickle.BINSTRING + struct.pack("<i", data.PIXEL_BYTES + 1)
               + bytes(data.PIXEL_BYTES + 1) + b".", "30,720,001-byte string"),
}


@pytest.mark.parametrize("attack", ATTACKS)
def test_pickle_bombs_are_refused_before_building(tmp_path, attack):
    raw, message = ATTACKS[attack]
    path = write(tmp_path / "data_batch_1", raw)
    result, peak = peak_of(data.load_batch, path)
    assert isinstance(result, DataError), result
    assert message in str(result) and "\n" not in str(result)
    assert peak < 3.5 * len(raw) + 16 * MIB, f"{attack}: peak {peak:,} for a {len(raw):,}-byte file"


def test_many_small_objects_stop_at_the_opcode_cap(tmp_path):
    """150,000 empty sets (about 200 bytes each); measured in a child, as tracemalloc makes it 10x slower."""
    path = write(tmp_path / "data_batch_1", b"\x80\x04" + pickle.EMPTY_SET * 150_000 + b".")
    said, mib = peak_rss_delta(f"data.load_batch(Path({str(path)!r}))")
    assert said.endswith("data_batch_1: it has more than 121,000 pickle opcodes, more than a batch of 10,000 "
                         "images needs; it is not a CIFAR batch, delete it")
    assert mib < 16


def array_pickle(dtype_state: bytes = b"K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t",
                 spec: bytes = b"u1", shape: bytes = b"K\x01M\x00\x0c\x86", raw: bytes = bytes(ROW),
                 call_ndarray: bool = False) -> bytes:
    """{b"data": array, b"labels": [0]} as a Python 2 pickle, with parts replaced to attack numpy."""
    ndarray = b"cnumpy\nndarray\n"
    if call_ndarray:  # numpy.ndarray((2**40,), "O"): the old loader handed the class out, callable
        array = ndarray + b"(J\x00\x00\x00\x7f\x85" + short_str(b"O") + b"tR"
    else:
        array = (b"cnumpy.core.multiarray\n_reconstruct\n" + ndarray + b"K\x00\x85" + short_str(b"b") + b"\x87R"
                 + b"(K\x01" + shape + b"cnumpy\ndtype\n" + short_str(spec) + b"K\x00K\x01\x87R("
                 + dtype_state + b"b\x89" + pickle.BINSTRING + struct.pack("<i", len(raw)) + raw + b"tb")
    return (b"\x80\x02}(" + short_str(b"data") + array + short_str(b"labels") + b"]K\x00a" + b"u.")


def test_array_pickle_builder_makes_a_loadable_batch(tmp_path):
    x, y = data.load_batch(write(tmp_path / "b", array_pickle()))
    assert x.shape == (1, ROW) and y.tolist() == [0]


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        # numpy's dtype.__setstate__ would take these flags: a uint8 dtype "holding Python objects"
        ({"dtype_state": b"K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x3ft"}, "not that of a plain number"),
        # ... and a subarray of 10^9 per element
        ({"dtype_state": b"K\x03U\x01|cnumpy\ndtype\nU\x02u1K\x00K\x01\x87RJ\x00\xca\x9a\x3b\x85\x86NNJ\xff\xff"
                         b"\xff\xffJ\xff\xff\xff\xffK\x00t"}, "not that of a plain number"),
        ({"spec": b"O8"}, "refusing numpy dtype b'O8'"),
        ({"spec": b"V1000000000"}, "refusing numpy dtype b'V1000000000'"),
        ({"shape": b"J\x00\x00\x00\x40J\x00\x00\x00\x40\x86", "raw": b""}, "shape is not a few sizes"),
        ({"shape": b"K\x02M\x00\x0c\x86"}, "do not fill its shape"),
        ({"call_ndarray": True}, "refusing to call numpy.ndarray"),
    ],
)
def test_crafted_numpy_states_are_refused(tmp_path, parts, message):
    path = write(tmp_path / "data_batch_4", array_pickle(**parts))
    result, peak = peak_of(data.load_batch, path)
    assert isinstance(result, DataError), result
    assert message in str(result) and str(path) in str(result)
    assert peak < 4 * MIB


def test_build_cannot_change_the_allowed_globals(tmp_path):
    raw = b"\x80\x02" + GLOBAL_ENCODE + b"}" + short_str(b"function") + b"cnumpy\ndtype\ns" + b"b."
    with pytest.raises(DataError, match=r"refusing to change _codecs.encode: a CIFAR batch never does"):
        data.load_batch(write(tmp_path / "data_batch_1", raw))
    assert data._ALLOWED_GLOBALS[("_codecs", "encode")].function is data._latin1_encode


def test_messages_quoting_the_file_stay_one_short_line(tmp_path):
    encoding = b"rot13\n" + b"x " * 50_000
    raw = (b"\x80\x02" + GLOBAL_ENCODE + pickle.BINUNICODE + b"\x03\x00\x00\x00abc" + pickle.BINUNICODE
           + struct.pack("<I", len(encoding)) + encoding + b"\x86R.")
    with pytest.raises(DataError) as error:
        data.load_batch(write(tmp_path / "data_batch_1", raw))
    assert "refusing to unpickle _codecs.encode with 'rot13\\nx x x" in str(error.value)
    assert "\n" not in str(error.value) and len(str(error.value)) < 400
    name = b"os\n" + b"y" * 100_000  # STACK_GLOBAL takes any strings, newlines included
    raw = b"\x80\x04" + pickle.BINUNICODE + struct.pack("<I", len(name)) + name + b"\x8c\x06system\x93."
    with pytest.raises(DataError, match=r"refusing to unpickle os yyyy") as error:
        data.load_batch(write(tmp_path / "data_batch_1", raw))
    assert "\n" not in str(error.value) and len(str(error.value)) < 400


# ------------------------------------------------------------------------------------ pickles: property


def expected_batch(batch) -> tuple[np.ndarray, np.ndarray] | None:
    """What load_batch must return for `batch`, or None if it must refuse it."""
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        return None
    x, labels = batch[b"data"], batch[b"labels"]
    if not (isinstance(x, np.ndarray) and x.dtype == np.uint8 and x.ndim == 2 and x.shape[1] == ROW):
        return None
    if isinstance(labels, np.ndarray):
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            return None
        y = labels
    elif isinstance(labels, (list, tuple)) and all(type(v) is int and -2**63 <= v < 2**63 for v in labels):
        y = np.array(labels, dtype=np.int64)
    else:
        return None
    if len(y) != len(x) or ((y < 0) | (y > 9)).any():
        return None
    return x, y.astype(np.int64)


ints = st.one_of(st.integers(-1, 11), st.sampled_from([2**31, 2**70, -2**70]), st.booleans())
label_values = st.one_of(
    st.lists(ints, max_size=5),
    st.lists(ints, max_size=5).map(tuple),
    st.lists(st.integers(0, 9), max_size=5).map(lambda v: np.array(v, np.int64)),
    st.lists(st.integers(0, 12), max_size=5).map(lambda v: np.array(v, np.uint8)),
    st.lists(st.floats(0, 9, allow_nan=False), max_size=3),
    st.just(np.zeros((2, 2), np.int64)),
    st.binary(max_size=4), st.none(), st.text(max_size=4),
)
data_values = st.one_of(
    st.tuples(st.integers(0, 4), st.sampled_from([ROW, 3000, 1]), st.sampled_from(["u1", "i8", "f4", "?", ">u2"]),
              st.booleans()).map(lambda a: (np.arange(a[0] * a[1]) % 256).astype(a[2]).reshape(a[0], a[1],
                                                                                           order="F" if a[3] else "C")),
    st.integers(0, 3).map(lambda n: np.zeros(n * ROW, np.uint8)),
    st.lists(st.integers(0, 255), max_size=4), st.none(), st.binary(max_size=8),
)
batches = st.one_of(
    st.fixed_dictionaries({b"data": data_values, b"labels": label_values},
                          optional={b"filenames": st.lists(st.binary(max_size=8), max_size=4),
                                    b"batch_label": st.binary(max_size=8)}),
    st.dictionaries(st.sampled_from([b"data", b"labels", "data", 1]), st.one_of(data_values, label_values),
                    max_size=3),
    st.lists(st.integers(), max_size=3),
)


@settings(max_examples=150, **HYPOTHESIS)
@given(batch=batches, protocol=st.integers(0, 5))
def test_any_pickled_structure_loads_exactly_or_is_refused(tmp_path_factory, batch, protocol):
    path = tmp_path_factory.mktemp("pickle") / "data_batch_1"
    path.write_bytes(pickle.dumps(batch, protocol=protocol))
    expected = expected_batch(batch)
    if protocol == 5 and expected is not None and isinstance(batch[b"data"], np.ndarray):
        expected = None  # numpy pickles arrays for protocol 5 with numpy._core.numeric._frombuffer: refused
    result, peak = peak_of(data.load_batch, path)
    if expected is None:
        assert isinstance(result, UserError), result
        assert "\n" not in str(result)
    else:
        assert not isinstance(result, Exception), result
        x, y = result
        assert x.dtype == np.uint8 and y.dtype == np.int64 and x.flags.c_contiguous
        np.testing.assert_array_equal(x, expected[0])
        np.testing.assert_array_equal(y, expected[1])
    assert peak < PEAK_BYTES_SMALL_INPUT


ARG_OPCODES = {
    b"K": st.binary(min_size=1, max_size=1),  # BININT1
    b"J": st.binary(min_size=4, max_size=4),  # BININT
    b"\x8a": st.binary(max_size=9).map(lambda b: bytes([len(b)]) + b),  # LONG1
    b"q": st.binary(min_size=1, max_size=1),  # BINPUT
    b"h": st.binary(min_size=1, max_size=1),  # BINGET
    b"r": st.sampled_from([b"\x00\x00\x00\x00", b"\x05\x00\x00\x00", b"\xff\xff\xff\x7f"]),  # LONG_BINPUT
    b"j": st.sampled_from([b"\x00\x00\x00\x00", b"\xff\xff\xff\x7f"]),  # LONG_BINGET
    b"U": st.binary(max_size=12).map(lambda b: bytes([len(b)]) + b),  # SHORT_BINSTRING
    b"X": st.tuples(st.text(max_size=6), st.integers(-2, 2)).map(  # BINUNICODE, length sometimes wrong
        lambda a: struct.pack("<I", max(0, len(a[0].encode()) + a[1])) + a[0].encode("utf-8", "surrogatepass")),
    b"\x8e": st.sampled_from([struct.pack("<Q", n) for n in (0, 3, 1 << 40, 1 << 63)]),  # BINBYTES8
    b"T": st.sampled_from([struct.pack("<i", n) for n in (0, 2, -1, 1 << 30)]),  # BINSTRING
    b"c": st.sampled_from([b"numpy\nndarray\n", b"numpy\ndtype\n", b"numpy.core.multiarray\n_reconstruct\n",
                           b"_codecs\nencode\n", b"os\nsystem\n", b"__builtin__\neval\n", b"numpy\n\n"]),
}
PLAIN_OPCODES = [bytes([c]) for c in b"(]})aesu\x85\x86\x87tldRb210N\x88\x89.\x8f\x90\x91\x94\x93\x81"]
opcode = st.one_of(st.sampled_from(PLAIN_OPCODES),
                   st.sampled_from(sorted(ARG_OPCODES)).flatmap(lambda op: ARG_OPCODES[op].map(lambda a: op + a)))


@settings(max_examples=300, **HYPOTHESIS)
@given(ops=st.lists(opcode, max_size=40), protocol=st.sampled_from([b"\x80\x02", b"\x80\x04", b""]))
def test_random_opcode_streams_are_loaded_or_refused(tmp_path_factory, ops, protocol):
    path = tmp_path_factory.mktemp("ops") / "data_batch_2"
    path.write_bytes(protocol + b"".join(ops) + b".")
    result, peak = peak_of(data.load_batch, path)
    assert not isinstance(result, Exception) or isinstance(result, UserError), repr(result)
    if isinstance(result, UserError):
        assert "\n" not in str(result)
    else:
        x, y = result
        assert x.dtype == np.uint8 and x.shape[1:] == (ROW,) and len(y) == len(x) and ((y >= 0) & (y <= 9)).all()
    assert peak < PEAK_BYTES_SMALL_INPUT


@settings(max_examples=150, **HYPOTHESIS)
@given(edits=st.lists(st.tuples(st.integers(0, 10**6), st.binary(max_size=3), st.integers(0, 3)), max_size=4))
def test_damaged_real_format_pickles_are_loaded_or_refused(tmp_path_factory, edits):
    raw = bytearray(array_pickle(raw=bytes(range(256)) * 12))
    for position, new, removed in edits:
        position %= len(raw) + 1
        raw[position:position + removed] = new
    path = tmp_path_factory.mktemp("edit") / "test_batch"
    path.write_bytes(bytes(raw))
    result, peak = peak_of(data.load_batch, path)
    assert not isinstance(result, Exception) or isinstance(result, UserError), repr(result)
    assert peak < PEAK_BYTES_SMALL_INPUT


# --------------------------------------------------------------------------------------------- litter


@pytest.mark.parametrize("kind", ["corrupt", "missing member", "bomb", "unofficial"])
def test_a_refused_archive_leaves_no_extracted_folder(tiny_cifar, tmp_path, kind):
    archive = tmp_path / "user" / "my.tar.gz"
    archive.parent.mkdir()
    whole = tiny_cifar.archive.read_bytes()
    if kind == "corrupt":
        archive.write_bytes(whole[: len(whole) // 2])
    elif kind == "missing member":
        tar_gz(archive, [m for m in tiny_members(tiny_cifar) if not m[0].name.endswith("test_batch")])
    elif kind == "bomb":
        zeros_archive(archive, [(f"{BATCH}/data_batch_1", GIB)])
    else:
        archive.write_bytes(whole)  # extracts fine; refused without --allow-unofficial-data
    before = archive.read_bytes()
    cache = tmp_path / "data"
    with pytest.raises(DataError):
        data.prepare(str(archive), False, cache_dir=cache, env={}, opener=no_network)
    assert files_under(cache) == set()
    assert archive.read_bytes() == before  # the user's file is never touched


def kill_during_extraction(archive: Path, cache: Path) -> None:
    """Run prepare in a child, SIGKILL it once it has written its first file, as a killed run would."""
    child = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from pipeline import data
        copy = data._copy_at_most
        def copy_then_hang(src, path, limit):
            copy(src, path, limit)
            print("copied", flush=True)
            time.sleep(120)
        data._copy_at_most = copy_then_hang
        data.prepare({str(archive)!r}, True, cache_dir=Path({str(cache)!r}), env={{}})
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", child], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "copied"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()


def test_a_killed_extraction_is_cleaned_by_the_next_run(tiny_cifar, tmp_path):
    cache = tmp_path / "data"
    user_archive = tmp_path / "my.tar.gz"
    user_archive.write_bytes(tiny_cifar.archive.read_bytes())
    kill_during_extraction(user_archive, cache)
    left = files_under(cache)
    assert any(re.fullmatch(r"extracted-\w+/\.extract-\w+/cifar-10-batches-py/[\w.]+", p) for p in left), left
    # The next run, whatever its source, removes it (and the extracted-* folder it leaves empty).
    data.prepare(str(tiny_cifar.batch_dir), True, cache_dir=cache, env={}, opener=no_network)
    assert files_under(cache) == set()
    # The cached download's extraction, killed: its temporary folder sits in the cache itself.
    (cache / "cifar-10-python.tar.gz").write_bytes(tiny_cifar.archive.read_bytes())
    kill_during_extraction(cache / "cifar-10-python.tar.gz", cache)
    assert any(p.startswith(".extract-") for p in files_under(cache)), files_under(cache)
    batch_dir, _ = data.prepare(None, True, cache_dir=cache, env={}, opener=no_network)
    assert not any(p.startswith(".extract-") for p in files_under(cache))
    assert sorted(p.name for p in batch_dir.iterdir()) == sorted([*tiny_cifar.md5s, "readme.html"])


def test_a_running_extraction_is_left_alone(tiny_cifar, tmp_path):
    """Another run's temporary folder is not litter while that run holds its lock on the folder."""
    cache = tmp_path / "data"
    live = cache / "extracted-0123abcd" / ".extract-live"
    live.mkdir(parents=True)
    (live / "partial").write_bytes(b"x")
    fd = os.open(live.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # what extract_archive holds while it writes
        data.prepare(str(tiny_cifar.batch_dir), True, cache_dir=cache, env={}, opener=no_network)
        assert (live / "partial").exists()
        data.extract_archive(tiny_cifar.archive, live.parent)  # a second run into the same folder
        assert (live / "partial").exists()
    finally:
        os.close(fd)
    data.prepare(str(tiny_cifar.batch_dir), True, cache_dir=cache, env={}, opener=no_network)
    assert not live.exists() and (live.parent / BATCH / "data_batch_1").exists()
