"""The data stage: find CIFAR-10 (python pickle version), fetch it if needed, check it, load it.

A copy is looked for in this order: `--source`, the `CIFAR10_PATH` environment variable, the cache
(`data/`), and only then downloaded from the official URL. Downloads resume, and both downloads and
extractions are written to a temporary name and renamed, so an interrupted run never leaves a
half-written file that a later run would trust. Every batch file is compared with the official md5s;
a copy that differs (such as the rebuilt archive in `shared/cifar10/`) is refused unless the user
allows it, and the result is returned as an `info` dict that the caller records in every artifact.
The pickles are read with an unpickler that can build nothing but numpy arrays, so a malicious file
cannot run code. Nothing is built or written beyond what CIFAR-10 can hold (the limits below): archive
members are checked against the size of their file before a byte is written, and a pickle's opcodes
are checked for sizes and counts before any object is built, so a hostile input is refused using
about the memory and disk of the real data. A refused extraction removes what it wrote, and the
temporary folders a killed run leaves are removed by the next run. Anything wrong with the user's
data raises `DataError` with one sentence saying what to do; only `download` and `extract_archive`
write files.
"""

from __future__ import annotations

import codecs
import contextlib
import gzip
import hashlib
import http.client
import io
import math
import os
import pickle
import pickletools
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipeline.errors import UserError

try:  # POSIX: the extraction locks below; elsewhere extraction runs unlocked
    import fcntl
except ImportError:  # Windows
    fcntl = None

OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
OFFICIAL_ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"  # from the dataset page
OFFICIAL_MD5S = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
BATCH_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")
TRAIN_FILES = BATCH_FILES[:5]

ARCHIVE_NAME = "cifar-10-python.tar.gz"
BATCH_DIR_NAME = "cifar-10-batches-py"  # the one folder inside the archive
OPTIONAL_MEMBERS = ("readme.html",)  # in the official archive, but nothing reads it
PATH_ENV = "CIFAR10_PATH"
ALLOW_ENV = "CIFAR10_ALLOW_UNOFFICIAL"
TRUE_WORDS = {"1", "true", "yes"}
C, H, W = 3, 32, 32
ROW = C * H * W  # 3072 bytes per image: 1024 red, then 1024 green, then 1024 blue, each row-major 32x32
CHUNK = 1 << 20  # read/hash/download in 1 MiB pieces

# Limits: what CIFAR-10 can hold, with a modest margin. Nothing larger is written, read or built.
IMAGES_PER_BATCH = 10_000  # in each data_batch_i and in test_batch
PIXEL_BYTES = IMAGES_PER_BATCH * ROW  # 30,720,000: a batch's one uint8 array, the largest object it holds
# A batch is its pixels plus 10,000 labels and file names, pickled: 315,704 bytes more in the official
# data_batch_1 (31,035,704), 320,482 at most in the rebuilt one. 128 bytes per image is 4x what they use.
MAX_BATCH_BYTES = PIXEL_BYTES + IMAGES_PER_BATCH * 128 + (64 << 10)  # 32,065,536
MAX_SMALL_BYTES = 64 << 10  # batches.meta (158 bytes), readme.html (88) and any other member
MAX_MEMBERS = 64  # tar headers, pax and long-name headers included; the official archive has 9
MAX_HEADER_BYTES = 64 << 10  # one pax or GNU long-name header; the official archive has none
# Decompressed archive: six batches, the small files, headers and padding fit in seven batches' room.
MAX_ARCHIVE_BYTES = 7 * MAX_BATCH_BYTES
MAX_ARCHIVE_FILE_BYTES = MAX_ARCHIVE_BYTES + (MAX_ARCHIVE_BYTES >> 8)  # gzip grows random data by < 0.1%
# Opcodes per image: 3 in the official (Python 2) pickles, 9 in a Python 3 protocol-2 pickle such as the
# test fixture (label, then each file name as _codecs.encode(str, "latin1") with its memo puts).
MAX_PICKLE_OPS = IMAGES_PER_BATCH * 12 + 1000
MAX_ITEMS = IMAGES_PER_BATCH  # in any list, tuple, dict or set: a batch has 10,000 labels and file names
# A pickle may fetch an object from its memo again (a repeated name, a dtype) but only a small one: an
# object reused N times could be expanded N times by the calls below, a memory bomb a few bytes long.
MAX_REUSED_BYTES = 1024
TMP_PREFIX = ".extract-"  # extract_archive's temporary folders; litter if their run was killed
EXTRACTED_PREFIX = "extracted-"  # prepare's folders for archives other than the cached download
TIMEOUT_S = 60  # per socket operation, not for the whole download
SOURCE_HINT = f"pass --source or set {PATH_ENV} to a local cifar-10-python.tar.gz or cifar-10-batches-py folder"


class DataError(UserError):
    """A problem with the user's data or settings; the message says what to do."""


def _one_line(text: object, limit: int = 200) -> str:
    """`text` on one line and at most `limit` characters: messages quote what a hostile file holds."""
    text = str(text)
    flat = " ".join(text[: 2 * limit].split())  # cut first: a pickle's string may be 30 MB of words
    return flat if len(flat) <= limit and len(text) <= 2 * limit else flat[: limit - 3] + "..."


def _quote(value: object, limit: int = 40) -> str:
    """repr of the start of a string a hostile file named; a type name for anything else."""
    if isinstance(value, (str, bytes)):
        return _one_line(repr(value[:limit]) + ("..." if len(value) > limit else ""), 2 * limit)
    return f"a {type(value).__name__}"


# ---------------------------------------------------------------------------------------------- locate


def _find_in(folder: Path) -> Path | None:
    """CIFAR-10 in `folder`: the folder itself if it holds the batches, its extracted subfolder
    (preferred: no unpacking needed), or the archive; None if none of these is there."""
    if folder.name == BATCH_DIR_NAME or (folder / "data_batch_1").is_file():
        return folder
    if (folder / BATCH_DIR_NAME).is_dir():
        return folder / BATCH_DIR_NAME
    if (folder / ARCHIVE_NAME).is_file():
        return folder / ARCHIVE_NAME
    return None


def _given(path_text: str, origin: str) -> Path:
    """The data a user named with --source or CIFAR10_PATH; it must exist."""
    if not path_text.strip():
        raise DataError(f"{origin} is empty; {SOURCE_HINT}, or leave it out to use the cache or download")
    path = Path(path_text).expanduser()
    if not path.exists():
        raise DataError(f"{origin} {path} does not exist; {SOURCE_HINT}")
    if path.is_file():
        # A batch file given by mistake means its folder; any other file must be the archive.
        return path.parent if path.name in OFFICIAL_MD5S else path
    found = _find_in(path)
    if found is None:
        raise DataError(
            f"{origin} {path} holds neither {BATCH_DIR_NAME}/, data_batch_1 nor {ARCHIVE_NAME}; {SOURCE_HINT}"
        )
    return found


def resolve_source(source: str | None, env: Mapping = os.environ, cache_dir: Path = Path("data")) -> Path | None:
    """Where the data is: explicit `source`, then env CIFAR10_PATH, then the cache; None means download.

    Returns a `.tar.gz` archive or a `cifar-10-batches-py` folder. An empty CIFAR10_PATH counts as unset
    (as shells treat `VAR=`), but an empty `source` is a mistake and raises DataError.
    """
    if source is not None:
        return _given(str(source), "--source")
    if env.get(PATH_ENV, "").strip():
        return _given(env[PATH_ENV], PATH_ENV)
    cache_dir = Path(cache_dir)
    return _find_in(cache_dir) if cache_dir.is_dir() else None


# ----------------------------------------------------------------------------------------- fetch/cache


def file_md5(path: Path) -> str:
    """Hex md5 of a file, read in chunks (the batch files are 30 MB each)."""
    digest = hashlib.md5(usedforsecurity=False)  # a checksum against the published md5s, not security
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def download(
    url: str,
    dest: Path,
    expected_md5: str | None,
    opener=urllib.request.urlopen,
    progress: bool = True,
    max_bytes: int | None = None,
) -> Path:
    """Download `url` to `dest` via `dest.part`, resuming a `.part` left by an interrupted run.

    `opener(request, timeout=...)` must behave like `urllib.request.urlopen`. The server's answer to
    `Range: bytes=N-` decides: 206 appends to the part, 200 starts again from zero (Range unsupported).
    The finished part is fsynced, checked against `expected_md5` (deleted if wrong) and renamed to `dest`.
    A file larger than `max_bytes` is refused as soon as the server announces or sends it, and deleted.
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    failed = f"downloading {url} failed"
    total = None  # bytes expected in the finished part, when the server says
    try:
        with opener(request, timeout=TIMEOUT_S) as response:
            status = getattr(response, "status", None) or response.getcode()
            if status == 206 and not response.headers.get("Content-Range", "").startswith(f"bytes {have}-"):
                raise DataError(
                    f"{failed}: the server sent a byte range that was not asked for; delete {part} and run again"
                )
            resumed = have > 0 and status == 206
            have = have if resumed else 0
            length = response.headers.get("Content-Length")
            total = have + int(length) if length and length.isdigit() else None
            too_big = (
                f"{failed}: the server sends more than {max_bytes:,} bytes, more than the CIFAR-10 archive can be, "
                f"so it was deleted; {SOURCE_HINT}"
            ) if max_bytes is not None else ""
            if max_bytes is not None and total is not None and total > max_bytes:
                part.unlink(missing_ok=True)
                raise DataError(too_big)
            bar = tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=dest.name, disable=not progress)
            with bar, open(part, "ab" if resumed else "wb") as f:
                while chunk := response.read(CHUNK):
                    have += len(chunk)
                    if max_bytes is not None and have > max_bytes:  # a server may send more than it announced
                        f.close()
                        part.unlink()
                        raise DataError(too_big)
                    f.write(chunk)
                    bar.update(len(chunk))
                f.flush()
                os.fsync(f.fileno())  # durable before the rename below makes it "complete"
    except urllib.error.HTTPError as e:
        # 416 on a resume: the part already holds every byte (killed before the rename); check it below.
        if not (e.code == 416 and have > 0):
            raise DataError(f"{failed}: HTTP {e.code} {e.reason}; {SOURCE_HINT}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", None) or e
        raise DataError(f"{failed} ({reason}); run again to resume, or {SOURCE_HINT}") from None
    size = part.stat().st_size
    if total is not None and size != total:
        raise DataError(f"{failed}: got {size} of {total} bytes; run again to resume, or {SOURCE_HINT}")
    if expected_md5 is not None and (got := file_md5(part)) != expected_md5:
        part.unlink()
        raise DataError(
            f"{failed}: the file has md5 {got}, not {expected_md5}, so it was deleted; run again, or {SOURCE_HINT}"
        )
    os.replace(part, dest)
    return dest


class _Refused(Exception):
    """An archive broke one of the limits; the message says how (extract_archive adds which archive)."""


def _member_limit(name: str) -> int:
    """The most bytes the CIFAR-10 file `name` (or any other archive member) can have."""
    return MAX_BATCH_BYTES if name in BATCH_FILES else MAX_SMALL_BYTES


class _CappedReader:
    """Reads from `f`, but refuses to go past `limit` bytes in all: the decompressed size of an archive."""

    def __init__(self, f, limit: int):
        self.f, self.left = f, limit

    def read(self, n: int = -1) -> bytes:
        n = self.left + 1 if n is None or n < 0 else min(n, self.left + 1)  # never more than one byte too many
        data = self.f.read(n)
        self.left -= len(data)
        if self.left < 0:
            raise _Refused(f"expands to more than {MAX_ARCHIVE_BYTES:,} bytes, more than CIFAR-10 can")
        return data


_EXTENDED_HEADERS = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE,
                     tarfile.SOLARIS_XHDTYPE)  # headers whose data tarfile reads as text about the next member


class _CheckedTarInfo(tarfile.TarInfo):
    """A tar header that is checked before tarfile acts on it: tarfile reads a pax or GNU long-name
    header whole into memory, follows a chain of them by recursion and keeps every member in a list,
    so each of these is bounded here, where nothing has been read yet."""

    def _proc_member(self, tar):
        tar.headers_checked = getattr(tar, "headers_checked", 0) + 1
        if tar.headers_checked > MAX_MEMBERS:
            raise _Refused(f"has more than {MAX_MEMBERS} members")
        if self.type == tarfile.GNUTYPE_SPARSE:  # its map may run on through any number of header blocks
            raise _Refused("has an old-style sparse member")
        if self.type in _EXTENDED_HEADERS and self.size > MAX_HEADER_BYTES:
            raise _Refused(f"has a {self.size:,}-byte extended header, more than {MAX_HEADER_BYTES:,}")
        if self.size > MAX_BATCH_BYTES:  # no CIFAR-10 file is larger; checked before tarfile skips or reads it
            raise _Refused(f"has a {self.size:,}-byte member, more than any CIFAR-10 file ({MAX_BATCH_BYTES:,})")
        return super()._proc_member(tar)


def _copy_at_most(src, path: Path, limit: int) -> None:
    """Copy the file object `src` to `path`, counting: more than `limit` bytes stops the copy."""
    written = 0
    with open(path, "wb") as f:
        while chunk := src.read(CHUNK):
            written += len(chunk)
            if written > limit:
                raise _Refused(f"has more data in {path.name} than its header says ({limit:,} bytes)")
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())  # durable before extract_archive's rename makes it "complete"


def _remove_litter(folder: Path) -> None:
    """Remove what killed extractions left in `folder`, whose exclusive lock the caller holds: temporary
    folders, and (in the cache) the `extracted-*` folders that then hold nothing."""
    for tmp in folder.glob(f"{TMP_PREFIX}*"):
        shutil.rmtree(tmp, ignore_errors=True)
    for sub in folder.glob(f"{EXTRACTED_PREFIX}*"):
        if sub.is_dir() and not sub.is_symlink():
            with _claimed(sub):  # removes sub's temporary folders unless a run is extracting into it
                pass
            with contextlib.suppress(OSError):  # not empty: a finished extraction, or one in progress
                sub.rmdir()


@contextlib.contextmanager
def _claimed(folder: Path):
    """Hold a shared lock on `folder` while writing into it. On the way in, if no other run holds one,
    first remove the litter of killed runs: flock(2) locks go with their process, so a temporary folder
    in a folder that nobody has locked cannot belong to a run in progress."""
    if fcntl is None:  # no flock(2) here: no litter removal either (a run in progress could own it)
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # another run is extracting here (or the file system has no locks): leave it be
            pass
        else:
            _remove_litter(folder)
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_SH)  # turns the exclusive lock into a shared one, or waits for it
        yield
    finally:
        os.close(fd)


def _check_archive_size(archive: Path) -> None:
    """Refuse an archive file larger than any gzip of CIFAR-10 can be, before hashing or reading it."""
    with contextlib.suppress(OSError):  # a missing archive is reported where it is opened
        size = archive.stat().st_size
        if size > MAX_ARCHIVE_FILE_BYTES:
            raise DataError(
                f"archive {archive} is {size:,} bytes, more than the CIFAR-10 archive can be "
                f"({MAX_ARCHIVE_FILE_BYTES:,}); it is not the CIFAR-10 archive, {SOURCE_HINT}"
            )


def extract_archive(archive: Path, dest_dir: Path) -> Path:
    """Extract the CIFAR-10 files of `archive` into `dest_dir/cifar-10-batches-py` and return that folder.

    Only the expected regular files are taken (every other member is skipped, links are refused), each
    written by us with default permissions, none larger than its file can be (`_member_limit`): the
    size in its header is checked before a byte is written, and the bytes are counted while writing.
    The archive's member count, header sizes and decompressed size are bounded too (MAX_* above).
    Files go to a temporary folder inside `dest_dir`, are fsynced, and the folder is renamed into place,
    so an interrupted run leaves no partial folder; a refused archive leaves nothing (not even
    `dest_dir` when this call made it), and the temporary folders of killed runs are removed first.
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    _check_archive_size(archive)
    made = [folder for folder in (dest_dir, *dest_dir.parents) if not folder.exists()]  # deepest first
    dest_dir.mkdir(parents=True, exist_ok=True)
    try:
        with _claimed(dest_dir):
            return _extract_into(archive, dest_dir)
    except BaseException:
        for folder in made:
            try:
                folder.rmdir()
            except OSError:  # not empty: another run writes there
                break
        raise


def _extract_into(archive: Path, dest_dir: Path) -> Path:
    """extract_archive's work, with `dest_dir` claimed."""
    wanted = {f"{BATCH_DIR_NAME}/{name}": name for name in (*OFFICIAL_MD5S, *OPTIONAL_MEMBERS)}
    tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=dest_dir))
    try:
        seen = set()
        (tmp / BATCH_DIR_NAME).mkdir()
        try:
            # Stream mode ("r|") reads the 170 MB archive once; members are extracted as they pass.
            with gzip.open(archive, "rb") as gz:
                stream = _CappedReader(gz, MAX_ARCHIVE_BYTES)
                with tarfile.open(fileobj=stream, mode="r|", tarinfo=_CheckedTarInfo) as tar:
                    for member in tar:
                        name = wanted.get(member.name)
                        if name is None:
                            continue
                        if not member.isfile():
                            raise DataError(
                                f"archive {archive} has {member.name} as a link or special file, not a regular "
                                "file; it is not the CIFAR-10 archive, delete it"
                            )
                        if name in seen:
                            raise _Refused(f"has {member.name} twice")
                        limit = _member_limit(name)
                        if member.size > limit:
                            raise _Refused(
                                f"has a {member.size:,}-byte {member.name}; that file is at most {limit:,} bytes"
                            )
                        _copy_at_most(tar.extractfile(member), tmp / BATCH_DIR_NAME / name, member.size)
                        seen.add(name)
                    # tarfile stops at the end-of-archive blocks and never checks the gzip CRC; reading on to
                    # the end does, so a damaged archive is reported here, not later as an "unofficial" md5.
                    while stream.read(CHUNK):
                        pass
        except _Refused as e:
            raise DataError(f"archive {archive} {e}; it is not the CIFAR-10 archive, delete it") from None
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile):
            raise DataError(f"archive {archive} is truncated or corrupt; delete it and download again") from None
        except FileNotFoundError:
            raise DataError(f"archive {archive} does not exist; {SOURCE_HINT}") from None
        except OSError as e:  # disk full, permissions: the archive may be fine
            raise DataError(
                f"could not extract {archive} into {dest_dir} ({_one_line(e)}); check free space and permissions"
            ) from None
        missing = [name for name in OFFICIAL_MD5S if name not in seen]
        if missing:
            members = ", ".join(f"{BATCH_DIR_NAME}/{name}" for name in missing)
            raise DataError(
                f"archive {archive} lacks {members}; "
                "it is not the complete CIFAR-10 archive, delete it and download again"
            )
        final = dest_dir / BATCH_DIR_NAME
        if final.exists():  # a folder cannot be replaced atomically: move the old one aside first
            final.rename(tmp / "old")
        os.replace(tmp / BATCH_DIR_NAME, final)
        return final
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- verify


def allow_unofficial_from(flag: bool, env: Mapping = os.environ) -> bool:
    """True if --allow-unofficial-data was given or CIFAR10_ALLOW_UNOFFICIAL is 1/true/yes."""
    return bool(flag) or env.get(ALLOW_ENV, "").strip().lower() in TRUE_WORDS


def verify_batches(batch_dir: Path, allow_unofficial: bool) -> dict:
    """md5 every file of OFFICIAL_MD5S in `batch_dir`: {"md5s": {name: md5}, "official": bool, "mismatched": [names]}.

    A file that differs from the official one is refused unless `allow_unofficial`.
    """
    batch_dir = Path(batch_dir)
    missing = [name for name in OFFICIAL_MD5S if not (batch_dir / name).is_file()]
    if missing:
        raise DataError(
            f"{batch_dir} lacks {', '.join(missing)}; "
            f"point --source at a complete {BATCH_DIR_NAME} folder or at {ARCHIVE_NAME}"
        )
    for name in OFFICIAL_MD5S:  # before hashing: a huge file is refused at once
        size, limit = (batch_dir / name).stat().st_size, _member_limit(name)
        if size > limit:
            raise DataError(
                f"{name} in {batch_dir} is {size:,} bytes, more than the CIFAR-10 file can be ({limit:,}); "
                f"point --source at a complete {BATCH_DIR_NAME} folder or at {ARCHIVE_NAME}"
            )
    md5s = {name: file_md5(batch_dir / name) for name in OFFICIAL_MD5S}
    mismatched = [name for name, md5 in md5s.items() if md5 != OFFICIAL_MD5S[name]]
    if mismatched and not allow_unofficial:
        first = mismatched[0]
        others = f" (and {len(mismatched) - 1} more files)" if len(mismatched) > 1 else ""
        raise DataError(
            f"{first}{others} in {batch_dir} has md5 {md5s[first]}, which is not the official CIFAR-10 file; "
            f"pass --allow-unofficial-data (or set {ALLOW_ENV}=1) to use it anyway"
        )
    return {"md5s": md5s, "official": not mismatched, "mismatched": mismatched}


# ------------------------------------------------------------------------------------------------ load


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """`_codecs.encode` limited to what Python 3 protocol-2 pickles use it for: str -> bytes via latin1."""
    try:
        latin1 = isinstance(encoding, str) and len(encoding) < 40 and codecs.lookup(encoding).name == "iso8859-1"
    except (LookupError, ValueError):
        latin1 = False
    if not (latin1 and isinstance(text, str)):
        raise DataError(
            f"refusing to unpickle _codecs.encode with {_quote(encoding)}: "
            "a CIFAR batch only uses it to store bytes as latin1"
        )
    return text.encode("latin1")


def _empty_bytes(*args) -> bytes:
    """`bytes()`, as Python 3 pickles b"" for protocols below 3; with an argument it would allocate."""
    if args:
        raise DataError("refusing to unpickle bytes with arguments: a CIFAR batch only stores b'' this way")
    return b""


class _Allowed:
    """What the unpickler hands out for an allowed global: a call of `function` (None: not callable).

    A pickle's BUILD opcode sets the state of any object it names, including these: it calls
    __setstate__, which refuses, and there is no __dict__ to write into.
    """

    __slots__ = ("name", "function")

    def __init__(self, name: str, function):
        self.name, self.function = name, function

    def __call__(self, *args):
        if self.function is None:
            raise DataError(f"refusing to call {self.name}: a CIFAR batch only names it as its arrays' type")
        return self.function(*args)

    def __setstate__(self, state):
        raise DataError(f"refusing to change {self.name}: a CIFAR batch never does; the file may be malicious")


class _PickledDtype:
    """Stands in for the numpy dtype a pickle makes (`numpy.dtype("u1", False, True)`, then its state)."""

    __slots__ = ("dtype",)

    def __init__(self, dtype: np.dtype):
        self.dtype = dtype

    def __setstate__(self, state):
        # numpy's own dtype.__setstate__ takes subarray shapes and flags on trust (a uint8 dtype can be told
        # it holds Python objects); a plain number type's state is always this tuple, byte order aside.
        if not (isinstance(state, tuple) and len(state) == 8 and state[2:] == (None, None, None, -1, -1, 0)
                and state[0] == 3 and state[1] in _BYTE_ORDERS):
            raise DataError("refusing a numpy dtype state that is not that of a plain number type")
        order = _BYTE_ORDERS[state[1]]
        self.dtype = self.dtype.newbyteorder(order) if order in "<>" else self.dtype


_BYTE_ORDERS = {**{c: c for c in "|<>="}, **{c.encode(): c for c in "|<>="}}  # Python 2 strings load as bytes
_DTYPE_SPEC = re.compile(r"[biuf][1248]")  # numpy pickles a dtype as kind + item size, e.g. "u1", "i8"


def _new_dtype(spec, align=False, copy=False) -> _PickledDtype:
    """`numpy.dtype(spec, align, copy)` for plain number types only (no objects, records, subarrays)."""
    text = spec.decode("latin1") if isinstance(spec, bytes) else spec
    if not (isinstance(text, str) and _DTYPE_SPEC.fullmatch(text)):
        raise DataError(
            f"refusing numpy dtype {_quote(spec)}: a CIFAR batch holds only arrays of plain numbers"
        )
    return _PickledDtype(np.dtype(text))


class _PickledArray:
    """Stands in for a numpy array while unpickling; `array` is set by the pickle's BUILD (its state).

    numpy's ndarray.__setstate__ trusts the dtype and shape it is given, so the state is checked here
    and the array made with np.frombuffer over the pickled bytes: nothing is allocated but a view.
    """

    __slots__ = ("array",)

    def __init__(self):
        self.array = None

    def __setstate__(self, state):
        if self.array is not None:
            raise DataError("refusing to set an array's contents twice")
        if not (isinstance(state, tuple) and len(state) == 5 and state[0] == 1):
            raise DataError("refusing an array state that is not numpy's (1, shape, dtype, fortran, bytes)")
        _, shape, dtype, fortran, raw = state
        if not (isinstance(shape, tuple) and len(shape) <= 32 and all(type(n) is int and 0 <= n <= PIXEL_BYTES
                                                                      for n in shape)):
            raise DataError("refusing an array whose shape is not a few sizes of at most one batch")
        if not (isinstance(dtype, _PickledDtype) and isinstance(fortran, bool) and isinstance(raw, bytes)):
            raise DataError("refusing an array state that is not numpy's (1, shape, dtype, fortran, bytes)")
        count = math.prod(shape)
        if count * dtype.dtype.itemsize != len(raw):
            raise DataError(f"refusing an array whose {len(raw):,} bytes do not fill its shape")
        self.array = np.frombuffer(raw, dtype.dtype, count).reshape(shape, order="F" if fortran else "C")


def _new_array(subtype, shape, typecode) -> _PickledArray:
    """`numpy.core.multiarray._reconstruct(ndarray, (0,), b"b")`: an empty array whose state follows."""
    if subtype is not _NDARRAY:
        raise DataError("refusing numpy _reconstruct of anything but numpy.ndarray")
    return _PickledArray()


_NDARRAY = _Allowed("numpy.ndarray", None)
# What pickles of numpy arrays name: the real (Python 2) batches need the first three; pickles written
# by Python 3 (our test fixture) name numpy._core and store bytes via _codecs.encode (b"" as bytes()).
# None of numpy's own unpickling code is used: the objects above check what a pickle asks for.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _Allowed("numpy.core.multiarray._reconstruct", _new_array),
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _Allowed("numpy.dtype", _new_dtype),
    ("numpy._core.multiarray", "_reconstruct"): _Allowed("numpy._core.multiarray._reconstruct", _new_array),
    ("_codecs", "encode"): _Allowed("_codecs.encode", _latin1_encode),
    ("__builtin__", "bytes"): _Allowed("bytes", _empty_bytes),
    ("builtins", "bytes"): _Allowed("bytes", _empty_bytes),
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can only build numpy arrays, dicts, lists, ints and strings.

    `pickle.load` would call any global a file names (the pickle docs' warning), so `find_class`
    hands out only the few a CIFAR batch needs; the objects are resolved here, never imported by name.
    Arrays come out as _PickledArray (its `array`); `load_batch` unwraps them. Check a pickle with
    `_check_opcodes` first: this class bounds what is called, not how much is built.
    """

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except (KeyError, TypeError):
            raise DataError(
                f"refusing to unpickle {_one_line(f'{str(module)[:80]}.{str(name)[:80]}', 120)}: "
                "a CIFAR batch holds only numpy arrays, lists and strings; the file may be malicious"
            ) from None


class _Value:
    """_check_opcodes' stand-in for one object of the pickle: how many items it holds (for a list, tuple,
    dict or set) and how many bytes of the file went into it (strings, and everything built from them)."""

    __slots__ = ("items", "size")

    def __init__(self, size: int = 0, items: int = 0):
        self.size, self.items = size, items

    def add(self, values: list, items: int) -> None:
        self.size += sum(v.size for v in values)
        self.items += items
        if self.items > MAX_ITEMS:
            raise DataError(
                f"it holds a list or dict of more than {MAX_ITEMS:,} items, more than a CIFAR batch "
                f"(at most {IMAGES_PER_BATCH:,} labels); it is not a CIFAR batch, delete it"
            )


_MEMO_PUT = {"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"}
_MEMO_GET = {"GET", "BINGET", "LONG_BINGET"}
_FILL = {"APPEND": (1, 1), "SETITEM": (2, 1), "BUILD": (1, 0)}  # name -> (values popped, items added)
_FILL_TO_MARK = {"APPENDS": 1, "SETITEMS": 2, "ADDITEMS": 1}  # name -> values per item


def _arg_size(arg) -> int:
    """Bytes an opcode's argument holds: strings, and long integers."""
    if isinstance(arg, (str, bytes, bytearray)):
        return len(arg)
    return (arg.bit_length() + 7) // 8 if isinstance(arg, int) else 0


def _check_opcodes(raw: bytes) -> None:
    """Refuse a pickle that would build more than a CIFAR batch holds, before anything is built.

    Walks the opcodes (pickletools.genops) and plays their effect on a stack of _Value: at most
    MAX_PICKLE_OPS opcodes, no string over PIXEL_BYTES, no container over MAX_ITEMS items, memo indices
    below MAX_PICKLE_OPS (the C unpickler sizes its memo by the largest index), and no object over
    MAX_REUSED_BYTES fetched from the memo twice. Then every large object comes from its own bytes in
    the file, and the unpickler builds at most a few times the file's size. Raises DataError for a limit,
    or ValueError, KeyError, IndexError, pickle.UnpicklingError for a broken pickle.
    """
    stack, marks, memo = [], [], {}
    for count, (op, arg, _) in enumerate(pickletools.genops(io.BytesIO(raw)), 1):
        if count > MAX_PICKLE_OPS:
            raise DataError(
                f"it has more than {MAX_PICKLE_OPS:,} pickle opcodes, more than a batch of "
                f"{IMAGES_PER_BATCH:,} images needs; it is not a CIFAR batch, delete it"
            )
        size = _arg_size(arg)
        if size > PIXEL_BYTES:
            raise DataError(
                f"it holds a {size:,}-byte string, more than the {PIXEL_BYTES:,} bytes of a batch's pixels; "
                "it is not a CIFAR batch, delete it"
            )
        name = op.name
        if name == "MARK":
            marks.append(len(stack))
            continue
        items = []
        if pickletools.markobject in op.stack_before:
            start = marks.pop()
            items, stack[start:] = stack[start:], []
        if name in _MEMO_PUT:
            index = len(memo) if name == "MEMOIZE" else int(arg)
            if index >= MAX_PICKLE_OPS:
                raise DataError(f"it has pickle memo index {index:,}, more than a CIFAR batch needs")
            memo[index] = stack[-1]
        elif name in _MEMO_GET or name == "DUP":
            value = memo[int(arg)] if name in _MEMO_GET else stack[-1]
            if value.size > MAX_REUSED_BYTES:
                raise DataError(
                    f"it reuses a {value.size:,}-byte object, which a CIFAR batch never does; "
                    "the file may be malicious, delete it"
                )
            stack.append(value)
        elif name in _FILL:
            popped, added = _FILL[name]
            if len(stack) <= popped:
                raise pickle.UnpicklingError(f"{name} on a too short stack")
            values, stack[-popped:] = stack[-popped:], []
            stack[-1].add(values, added)
        elif name in _FILL_TO_MARK:
            stack[-1].add(items, len(items) // _FILL_TO_MARK[name])
        else:  # every other opcode pops its inputs (those after a MARK, or a fixed number) and may push one
            popped = 0 if items or pickletools.markobject in op.stack_before else len(op.stack_before)
            if len(stack) < popped:
                raise pickle.UnpicklingError(f"{name} on a too short stack")
            values = items + stack[len(stack) - popped:]
            del stack[len(stack) - popped:]
            if op.stack_after:
                new = _Value(size)
                held = len(items) // 2 if name == "DICT" else len(values) if "TUPLE" in name else len(items)
                new.add(values, held)
                stack.append(new)


def _unwrap(value):
    """A _PickledArray's array (None if the pickle never set it); anything else as it is."""
    return value.array if isinstance(value, _PickledArray) else value


def load_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR batch file -> (x uint8 (N, 3072), y int64 (N,)), checked for the official structure.

    The file is read whole (at most MAX_BATCH_BYTES) and checked by `_check_opcodes` before it is
    unpickled, so a hostile pickle is refused using about the memory that loading a real batch does.
    x is read-only when it is a view of the pickled bytes (load_data copies it).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist; {SOURCE_HINT}")
    size, raw = path.stat().st_size, b""
    if size <= MAX_BATCH_BYTES:  # a larger file is refused unread
        with open(path, "rb") as f:
            raw = f.read(size + 1)  # read(n) allocates n bytes first; the file may have grown since
    if size > MAX_BATCH_BYTES or len(raw) > MAX_BATCH_BYTES:
        raise DataError(
            f"{path} is larger than a batch of {IMAGES_PER_BATCH:,} CIFAR images can be ({MAX_BATCH_BYTES:,} "
            "bytes); it is not a CIFAR batch, extract or download it again"
        )
    try:
        _check_opcodes(raw)
        batch = RestrictedUnpickler(io.BytesIO(raw), encoding="bytes").load()  # Python 2 str keys stay bytes
    except DataError as e:
        raise DataError(f"{path}: {e}") from None
    except Exception as e:  # anything a damaged pickle makes the unpickler raise is the file's fault
        raise DataError(
            f"{path} is not a readable pickle ({type(e).__name__}: {_one_line(e)}); "
            "it is truncated or corrupt, extract or download it again"
        ) from None
    bad = f"{path} is not a CIFAR batch:"
    if not isinstance(batch, dict):
        raise DataError(f"{bad} it holds a {type(batch).__name__}, not a dict")
    for key in (b"data", b"labels"):
        if key not in batch:
            raise DataError(f"{bad} it has no {key.decode()!r} entry")
    x, labels = _unwrap(batch[b"data"]), _unwrap(batch[b"labels"])
    if not (isinstance(x, np.ndarray) and x.dtype == np.uint8 and x.ndim == 2 and x.shape[1] == ROW):
        got = f"a {x.dtype} array of shape {x.shape}" if isinstance(x, np.ndarray) else f"a {type(x).__name__}"
        raise DataError(f"{bad} its data is {got}, not a uint8 array of shape (N, {ROW})")
    y = None
    if isinstance(labels, np.ndarray):
        y = labels
    elif isinstance(labels, (list, tuple)) and all(type(label) is int for label in labels):
        y = np.array(labels) if labels else np.zeros(0, np.int64)  # object dtype if an int is too large
    if y is None or y.ndim != 1 or y.dtype.kind not in "iu":
        raise DataError(f"{bad} its labels are not a list of integers")
    if len(y) != len(x):
        raise DataError(f"{bad} it has {len(x)} images but {len(y)} labels")
    out_of_range = y[(y < 0) | (y >= len(CLASSES))]
    if out_of_range.size:
        raise DataError(f"{bad} it has label {out_of_range[0]}, outside 0..{len(CLASSES) - 1}")
    return np.ascontiguousarray(x), y.astype(np.int64)


def _to_hwc(x: np.ndarray) -> np.ndarray:
    """(N, 3072) rows of R, G, B planes -> (N, 32, 32, 3) images, the layout the homework asks for."""
    return np.ascontiguousarray(x.reshape(-1, C, H, W).transpose(0, 2, 3, 1))  # (N, C, H, W) -> (N, H, W, C)


def load_data(batch_dir: Path, *, expected_counts: tuple[int, int] = (50000, 10000)):
    """CIFAR-10 from a checked `cifar-10-batches-py` folder, images in (N, H, W, C) layout.

    Returns x_train (50000, 32, 32, 3) uint8, y_train (50000,) int64, x_test (10000, 32, 32, 3) uint8,
    y_test (10000,) int64; `expected_counts` lets tests use a tiny archive.
    """
    batch_dir = Path(batch_dir)
    train = [load_batch(batch_dir / name) for name in TRAIN_FILES]
    x_train = np.concatenate([x for x, _ in train])  # (50000, 3072)
    y_train = np.concatenate([y for _, y in train])
    x_test, y_test = load_batch(batch_dir / "test_batch")  # (10000, 3072)
    for split, n, expected in zip(("training", "test"), (len(x_train), len(x_test)), expected_counts, strict=True):
        if n != expected:
            raise DataError(
                f"{batch_dir} holds {n} {split} images, not {expected}; "
                "it is not the complete CIFAR-10, extract or download it again"
            )
    return _to_hwc(x_train), y_train, _to_hwc(x_test), y_test


def train_val_split(n: int, val_size: int = 5000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint (train_idx, val_idx) covering range(n), each sorted; the same seed gives the same split."""
    if not 0 < val_size < n:
        raise DataError(
            f"validation size {val_size} must be between 1 and {n - 1} for {n} training images; "
            "choose another --val-size"
        )
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[val_size:]), np.sort(perm[:val_size])


def split_arrays(x_train, y_train, x_test, y_test, val_size: int = 5000, seed: int = 0):
    """The homework's arrays split into train / validation / test -> (arrays, split_info).

    arrays: {"x_train", "y_train", "x_val", "y_val", "x_test", "y_test"} (images (N, 32, 32, 3)
    uint8); split_info: {seed, val_size, train, val, val_indices_sha256}, which names the split.
    """
    train_idx, val_idx = train_val_split(len(y_train), val_size, seed)
    arrays = {"x_train": x_train[train_idx], "y_train": y_train[train_idx],
              "x_val": x_train[val_idx], "y_val": y_train[val_idx],
              "x_test": x_test, "y_test": y_test}
    split = {"seed": seed, "val_size": val_size, "train": int(len(train_idx)),
             "val": int(len(val_idx)), "val_indices_sha256": index_digest(val_idx)}
    return arrays, split


def index_digest(indices: np.ndarray) -> str:
    """sha256 of an index list (as int64): names a split without storing its 5,000 indices."""
    return hashlib.sha256(np.asarray(indices, dtype=np.int64).tobytes()).hexdigest()


def class_counts(y: np.ndarray) -> list[int]:
    """Images per class, in CLASSES order."""
    return np.bincount(np.asarray(y), minlength=len(CLASSES)).tolist()


# ----------------------------------------------------------------------------------------- whole stage


def _extraction_dir(archive: Path, cache_dir: Path) -> Path:
    """Where to extract `archive`: the cache itself for the cached download (so resolve_source finds
    the folder next time); any other archive goes to a folder named by its md5, which leaves the user's
    file untouched and lets the next run with the same archive reuse the extraction."""
    if archive.resolve() == (cache_dir / ARCHIVE_NAME).resolve():
        return cache_dir
    _check_archive_size(archive)  # before hashing it
    return cache_dir / f"{EXTRACTED_PREFIX}{file_md5(archive)[:8]}"


def prepare(
    source: str | None,
    allow_unofficial: bool,
    cache_dir: Path = Path("data"),
    env: Mapping = os.environ,
    url: str = OFFICIAL_URL,
    opener=urllib.request.urlopen,
) -> tuple[Path, dict]:
    """The whole stage: resolve, download if needed, extract, verify -> (batch_dir, info).

    info = {"source", "official", "md5s", "mismatched"}, to be recorded in every artifact. First removes
    what killed runs left in the cache; a refused archive leaves nothing of what it extracted.
    """
    cache_dir = Path(cache_dir)
    if cache_dir.is_dir():
        with _claimed(cache_dir):  # removes the litter of killed runs, unless a run is extracting now
            pass
    found = resolve_source(source, env, cache_dir)
    if found is None:
        # The archive md5 is known only for the official URL; a mirror is still checked file by file.
        expected = OFFICIAL_ARCHIVE_MD5 if url == OFFICIAL_URL else None
        found = download(url, cache_dir / ARCHIVE_NAME, expected, opener, max_bytes=MAX_ARCHIVE_FILE_BYTES)
    batch_dir, extracted = found, None
    if found.is_file():
        target = _extraction_dir(found, cache_dir)
        batch_dir = target / BATCH_DIR_NAME
        if not batch_dir.is_dir():
            cache_dir.mkdir(parents=True, exist_ok=True)
            with _claimed(cache_dir):  # no other run removes an extracted-* folder while this one fills it
                batch_dir = extract_archive(found, target)
            extracted = batch_dir if target == cache_dir else target
    try:
        info = verify_batches(batch_dir, allow_unofficial_from(allow_unofficial, env))
    except DataError:
        if extracted is not None:  # the next run extracts again, with the user's answer
            shutil.rmtree(extracted, ignore_errors=True)
        raise
    return batch_dir, {"source": str(found), **info}
