"""The data stage: find CIFAR-10 (python pickle version), fetch it if needed, check it, load it.

A copy is looked for in this order: `--source`, the `CIFAR10_PATH` environment variable, the cache
(`data/`), and only then downloaded from the official URL. Downloads resume, and both downloads and
extractions are written to a temporary name and renamed, so an interrupted run never leaves a
half-written file that a later run would trust. Every batch file is compared with the official md5s;
a copy that differs (such as the rebuilt archive in `shared/cifar10/`) is refused unless the user
allows it, and the result is returned as an `info` dict that the caller records in every artifact.
The pickles are read with an unpickler that can build nothing but numpy arrays, so a malicious file
cannot run code. Anything wrong with the user's data raises `DataError` with one sentence saying
what to do; only `download` and `extract_archive` write files.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import http.client
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from numpy._core.multiarray import _reconstruct  # what ndarray.__reduce__ names (numpy >= 2)
from tqdm import tqdm

from pipeline.errors import UserError

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
TIMEOUT_S = 60  # per socket operation, not for the whole download
SOURCE_HINT = f"pass --source or set {PATH_ENV} to a local cifar-10-python.tar.gz or cifar-10-batches-py folder"


class DataError(UserError):
    """A problem with the user's data or settings; the message says what to do."""


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
    url: str, dest: Path, expected_md5: str | None, opener=urllib.request.urlopen, progress: bool = True
) -> Path:
    """Download `url` to `dest` via `dest.part`, resuming a `.part` left by an interrupted run.

    `opener(request, timeout=...)` must behave like `urllib.request.urlopen`. The server's answer to
    `Range: bytes=N-` decides: 206 appends to the part, 200 starts again from zero (Range unsupported).
    The finished part is fsynced, checked against `expected_md5` (deleted if wrong) and renamed to `dest`.
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
            bar = tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=dest.name, disable=not progress)
            with bar, open(part, "ab" if resumed else "wb") as f:
                while chunk := response.read(CHUNK):
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


def extract_archive(archive: Path, dest_dir: Path) -> Path:
    """Extract the CIFAR-10 files of `archive` into `dest_dir/cifar-10-batches-py` and return that folder.

    Only the expected regular files are taken (every other member is skipped, links are refused) and
    `filter="data"` guards each extraction (PEP 706). Files go to a temporary folder inside `dest_dir`,
    are fsynced, and the folder is renamed into place, so an interrupted run leaves no partial folder.
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    wanted = {f"{BATCH_DIR_NAME}/{name}": name for name in (*OFFICIAL_MD5S, *OPTIONAL_MEMBERS)}
    dest_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest_dir))
    try:
        seen = set()
        try:
            # Stream mode ("r|") reads the 170 MB archive once; members are extracted as they pass.
            with gzip.open(archive, "rb") as gz, tarfile.open(fileobj=gz, mode="r|") as tar:
                for member in tar:
                    name = wanted.get(member.name)
                    if name is None:
                        continue
                    if not member.isfile():
                        raise DataError(
                            f"archive {archive} has {member.name} as a link or special file, not a regular file; "
                            "it is not the CIFAR-10 archive, delete it"
                        )
                    tar.extract(member, tmp, filter="data")
                    seen.add(name)
                # tarfile stops at the end-of-archive blocks and never checks the gzip CRC; reading on to
                # the end does, so a damaged archive is reported here, not later as an "unofficial" md5.
                while gz.read(CHUNK):
                    pass
        except tarfile.FilterError as e:
            raise DataError(
                f"archive {archive} has an unsafe member ({e}); it is not the CIFAR-10 archive, delete it"
            ) from None
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile):
            raise DataError(f"archive {archive} is truncated or corrupt; delete it and download again") from None
        except FileNotFoundError:
            raise DataError(f"archive {archive} does not exist; {SOURCE_HINT}") from None
        except OSError as e:  # disk full, permissions: the archive may be fine
            raise DataError(
                f"could not extract {archive} into {dest_dir} ({e}); check free space and permissions"
            ) from None
        missing = [name for name in OFFICIAL_MD5S if name not in seen]
        if missing:
            members = ", ".join(f"{BATCH_DIR_NAME}/{name}" for name in missing)
            raise DataError(
                f"archive {archive} lacks {members}; "
                "it is not the complete CIFAR-10 archive, delete it and download again"
            )
        for name in seen:
            with open(tmp / BATCH_DIR_NAME / name, "rb") as f:
                os.fsync(f.fileno())
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
    if not isinstance(text, str) or codecs.lookup(encoding).name != "iso8859-1":
        raise DataError(
            f"refusing to unpickle _codecs.encode with {encoding!r}: "
            "a CIFAR batch only uses it to store bytes as latin1"
        )
    return text.encode("latin1")


# What pickles of numpy arrays name: the real (Python 2) batches need the first three; pickles written
# by Python 3 (our test fixture) name numpy._core and store bytes via _codecs.encode.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("_codecs", "encode"): _latin1_encode,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can only build numpy arrays, dicts, lists, ints and strings.

    `pickle.load` would call any global a file names (the pickle docs' warning), so `find_class`
    hands out only the few a CIFAR batch needs; the objects are resolved here, never imported by name.
    """

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise DataError(
                f"refusing to unpickle {module}.{name}: "
                "a CIFAR batch holds only numpy arrays, lists and strings; the file may be malicious"
            ) from None


def load_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR batch file -> (x uint8 (N, 3072), y int64 (N,)), checked for the official structure."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist; {SOURCE_HINT}")
    with open(path, "rb") as f:
        try:
            batch = RestrictedUnpickler(f, encoding="bytes").load()  # Python 2 str keys stay bytes
        except DataError as e:
            raise DataError(f"{path}: {e}") from None
        except Exception as e:  # anything a damaged pickle makes the unpickler raise is the file's fault
            raise DataError(
                f"{path} is not a readable pickle ({type(e).__name__}: {e}); "
                "it is truncated or corrupt, extract or download it again"
            ) from None
    bad = f"{path} is not a CIFAR batch:"
    if not isinstance(batch, dict):
        raise DataError(f"{bad} it holds a {type(batch).__name__}, not a dict")
    for key in (b"data", b"labels"):
        if key not in batch:
            raise DataError(f"{bad} it has no {key.decode()!r} entry")
    x = batch[b"data"]
    if not (isinstance(x, np.ndarray) and x.dtype == np.uint8 and x.ndim == 2 and x.shape[1] == ROW):
        got = f"a {x.dtype} array of shape {x.shape}" if isinstance(x, np.ndarray) else f"a {type(x).__name__}"
        raise DataError(f"{bad} its data is {got}, not a uint8 array of shape (N, {ROW})")
    y = np.asarray(batch[b"labels"]) if isinstance(batch[b"labels"], (list, tuple, np.ndarray)) else None
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
    return cache_dir / f"extracted-{file_md5(archive)[:8]}"


def prepare(
    source: str | None,
    allow_unofficial: bool,
    cache_dir: Path = Path("data"),
    env: Mapping = os.environ,
    url: str = OFFICIAL_URL,
    opener=urllib.request.urlopen,
) -> tuple[Path, dict]:
    """The whole stage: resolve, download if needed, extract, verify -> (batch_dir, info).

    info = {"source", "official", "md5s", "mismatched"}, to be recorded in every artifact.
    """
    cache_dir = Path(cache_dir)
    found = resolve_source(source, env, cache_dir)
    if found is None:
        # The archive md5 is known only for the official URL; a mirror is still checked file by file.
        found = download(url, cache_dir / ARCHIVE_NAME, OFFICIAL_ARCHIVE_MD5 if url == OFFICIAL_URL else None, opener)
    batch_dir = found
    if found.is_file():
        target = _extraction_dir(found, cache_dir)
        batch_dir = target / BATCH_DIR_NAME
        if not batch_dir.is_dir():
            batch_dir = extract_archive(found, target)
    info = verify_batches(batch_dir, allow_unofficial_from(allow_unofficial, env))
    return batch_dir, {"source": str(found), **info}
