"""Shared test fixtures: a tiny synthetic CIFAR-10 in the exact official file format."""

from __future__ import annotations

import hashlib
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

TINY_TRAIN_PER_BATCH = 100  # images per data_batch_i (the real files hold 10,000)
TINY_TEST = 100
TINY_SEED = 1234
ROW = 3 * 32 * 32

# The official batches.meta, byte for byte (md5 5ff9c542aee3614f3951f8cda6e48888): a Python 2 pickle
# whose strings are SHORT_BINSTRINGs, which Python 3's pickle.dump cannot produce from bytes.
OFFICIAL_META_BYTES = (
    b"\x80\x02}q\x01(U\x13num_cases_per_batchq\x02M\x10'U\x0blabel_namesq\x03]q\x04(U\x08airplaneq\x05"
    b"U\nautomobileq\x06U\x04birdq\x07U\x03catq\x08U\x04deerq\tU\x03dogq\nU\x04frogq\x0bU\x05horseq\x0c"
    b"U\x04shipq\rU\x05truckq\x0eeU\x07num_visq\x0fM\x00\x0cu."
)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than 20 s")


@dataclass(frozen=True)
class TinyCifar:
    root: Path  # holds both forms below; treat as read-only (the fixture is shared by the session)
    batch_dir: Path  # root/cifar-10-batches-py, the extracted form
    archive: Path  # root/cifar-10-python.tar.gz, the same files packed
    batches: dict  # file name -> (data uint8 (n, 3072), labels list[int]) as written
    md5s: dict  # file name -> md5, for every file OFFICIAL_MD5S lists
    archive_md5: str

    @property
    def counts(self) -> tuple[int, int]:
        """(train, test) image counts, for load_data(expected_counts=...)."""
        return 5 * TINY_TRAIN_PER_BATCH, TINY_TEST


def md5_of(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def tiny_batch(rng: np.random.Generator, n: int, label_text: bytes) -> dict:
    """A batch dict as the official pickles hold it; pixels depend on the label, so classes differ."""
    labels = [i % 10 for i in range(n)]  # every class present
    rng.shuffle(labels)
    noise = rng.integers(0, 40, size=(n, ROW))
    data = (np.array(labels)[:, None] * 20 + noise).astype(np.uint8)  # (n, 3072), label 9 -> 180..219
    return {
        b"batch_label": label_text,
        b"labels": labels,  # plain Python ints, as in the real files
        b"data": data,
        b"filenames": [f"tiny_{i:05d}.png".encode() for i in range(n)],
    }


def write_tiny_cifar(root: Path) -> TinyCifar:
    rng = np.random.default_rng(TINY_SEED)
    batch_dir = root / "cifar-10-batches-py"
    batch_dir.mkdir(parents=True)
    batches = {}
    for i in range(1, 6):
        batches[f"data_batch_{i}"] = tiny_batch(rng, TINY_TRAIN_PER_BATCH, f"training batch {i} of 5".encode())
    batches["test_batch"] = tiny_batch(rng, TINY_TEST, b"testing batch 1 of 1")
    for name, batch in batches.items():
        with open(batch_dir / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)  # the official files are protocol-2 pickles
    (batch_dir / "batches.meta").write_bytes(OFFICIAL_META_BYTES)
    (batch_dir / "readme.html").write_text("tiny synthetic CIFAR-10 for tests\n")
    archive = root / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(batch_dir, arcname="cifar-10-batches-py")
    md5s = {name: md5_of(batch_dir / name) for name in [*batches, "batches.meta"]}
    assert md5s["batches.meta"] == "5ff9c542aee3614f3951f8cda6e48888"
    return TinyCifar(
        root=root,
        batch_dir=batch_dir,
        archive=archive,
        batches={name: (b[b"data"], b[b"labels"]) for name, b in batches.items()},
        md5s=md5s,
        archive_md5=md5_of(archive),
    )


@pytest.fixture(scope="session")
def tiny_cifar(tmp_path_factory) -> TinyCifar:
    """A 500-train / 100-test CIFAR-10 in the official format, as a folder and as a .tar.gz."""
    return write_tiny_cifar(tmp_path_factory.mktemp("tiny_cifar"))


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread: models this small gain nothing from more, and on a busy CPU the
    threads wait on each other (a 3-epoch fit here: 0.8 s with 1 thread, 10 s with 2)."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
