"""Writing artifacts safely and recording where each came from.

Used by tasks.py (the only place that does file I/O for the stages). Every write goes to a
temporary file in the target folder, is flushed to disk, then renamed over the target: a rename
within one file system is atomic, so a reader (or the site build) sees either the old file or
the new one, never half of one. Provenance (commit, config, seeds, device, torch version, data
checksums) goes into `manifest.json`, one entry per artifact, together with the artifact's
sha256 so a skipped task can check its outputs are still the ones it wrote.
"""
import csv
import hashlib
import io
import json
import os
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import torch

MANIFEST = "manifest.json"
_UMASK = os.umask(0)
os.umask(_UMASK)


# --- atomic writes -------------------------------------------------------------------------

@contextmanager
def atomic_path(path: Path):
    """Yield a temporary path beside `path`; on success rename it onto `path`, on any error
    delete it. For writers that want a file name (torch.save, matplotlib's savefig)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; artifacts are ordinary shared files
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes(path: Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_csv(path: Path, rows: list[dict], columns=None) -> Path:
    """rows: list of dicts; columns: their order (default: the first row's keys)."""
    columns = list(columns or (rows[0].keys() if rows else []))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return write_text(path, buf.getvalue())


def write_torch(path: Path, obj) -> Path:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def read_json(path: Path, default=None):
    path = Path(path)
    if not path.exists():
        return default
    return json.loads(path.read_text(encoding="utf-8"))


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


# --- provenance ----------------------------------------------------------------------------

def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def git_state(repo: Path = Path(".")) -> dict:
    """{"commit": sha or "unknown", "dirty": bool}: the code that produced an artifact. A dirty
    tree means the numbers may come from uncommitted code, so it is recorded, not hidden."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                              check=True).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        # Only the code that computes artifacts counts as "dirty"; site sources and regenerated
        # artifacts are expected to differ between the commit and the run.
        status = git("status", "--porcelain", "--", "pipeline", "tasks.py", "requirements.txt")
        return {"commit": commit, "dirty": bool(status)}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": "unknown", "dirty": True}


def code_hash(paths) -> str:
    """sha256 over the given source files (in order): part of a task's skip key."""
    h = hashlib.sha256()
    for p in paths:
        h.update(str(p).encode())
        h.update(Path(p).read_bytes())
    return h.hexdigest()


def task_key(config: dict, code_files, input_files=()) -> str:
    """A task's inputs, code and config in one hash; unchanged key = nothing to redo."""
    h = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    h.update(code_hash(code_files).encode())
    for p in input_files:
        h.update(sha256_file(p).encode())
    return h.hexdigest()


def is_up_to_date(root: Path, task: str, key: str) -> bool:
    """True when the manifest says `task` last ran with this key and every output it wrote is
    still there, byte for byte."""
    manifest = read_json(Path(root) / MANIFEST, {})
    record = manifest.get("tasks", {}).get(task)
    if not record or record.get("key") != key:
        return False
    entries = manifest.get("artifacts", {})
    for rel in record.get("outputs", []):
        p = Path(root) / rel
        if not p.exists() or entries.get(rel, {}).get("sha256") != sha256_file(p):
            return False
    return True


def record(root: Path, task: str, key: str, outputs, provenance: dict) -> None:
    """Add the outputs of one task run to the manifest (atomically rewritten).

    outputs: paths of the files the task wrote; provenance: task-level facts (config, seeds,
    device, data info) copied into each file's entry.
    """
    root = Path(root)
    manifest = read_json(root / MANIFEST, {}) or {}
    # Entries for files that are gone (a task that stopped writing one) would be stale provenance.
    artifacts = {rel: e for rel, e in manifest.get("artifacts", {}).items() if (root / rel).exists()}
    manifest["artifacts"] = artifacts
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    rels = []
    for p in outputs:
        p = Path(p)
        rel = p.relative_to(root).as_posix()
        rels.append(rel)
        artifacts[rel] = {"task": task, **git_state(), "torch": torch.__version__,
                          **provenance, "timestamp": now,
                          "sha256": sha256_file(p), "bytes": p.stat().st_size}
    tasks = manifest.setdefault("tasks", {})
    previous = tasks.get(task, {}).get("outputs", []) if tasks.get(task, {}).get("key") == key else []
    previous = [rel for rel in previous if rel in artifacts]
    tasks[task] = {"key": key, "outputs": sorted(set(previous) | set(rels)), "finished": now}
    manifest["artifacts"] = dict(sorted(artifacts.items()))
    manifest["tasks"] = dict(sorted(tasks.items()))
    write_json(root / MANIFEST, manifest)
