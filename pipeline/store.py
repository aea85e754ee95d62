"""The one store of artifacts: tasks write through it, the site hook and the notebook pages read
through it.

- Root: `$LENET_ARTIFACTS` if set (relative to the working directory), else `artifacts/` in the
  repository (`resolve_root`).
- Writes are atomic (temp file in the target folder, fsync, rename: a reader sees the old file or
  the new one, never half of one) and follow the contract (pipeline/contract.py): a path it does
  not list, or one another task owns, is a bug and raises. A write whose bytes equal the file's
  is skipped, so a stage that redid nothing rewrites nothing.
- The manifest records each file's provenance (commit, config, seeds, device, torch, data md5s)
  and sha256, and each stage's key. It is read-modified-written under a file lock, so stages
  finishing together lose nothing. A corrupt manifest is one line saying how to recover.
- Reads are verified: the file must be listed with a matching sha256, and its columns / keys and
  value rules (accuracies in [0, 1], counts non-negative) must hold. Every failure is a StoreError:
  one sentence naming the file and the command that rewrites it.

Pure Python plus filelock; torch is imported only to save weights.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock

from pipeline import contract
from pipeline.errors import UserError

REPO = Path(__file__).resolve().parents[1]
ENV_ROOT = "LENET_ARTIFACTS"
LOCK = ".manifest.lock"
MAX_BYTES = 32 * 2 ** 20  # any artifact or the manifest; the largest today is 1.2 MiB
LOCK_SECONDS = 600  # the longest wait for another run's record (a record takes well under a second)
_UMASK = os.umask(0)
os.umask(_UMASK)


class StoreError(UserError):
    """A missing, changed, malformed or implausible artifact: one sentence, how to fix it."""


def resolve_root(repo: Path | None = None) -> Path:
    env = os.environ.get(ENV_ROOT)
    return Path(env).resolve() if env else Path(repo or REPO) / "artifacts"


# --- hashing and git ---------------------------------------------------------------------------

def _not_huge(path: Path, shown: str, fix: str) -> None:
    """A StoreError for a file over MAX_BYTES, before anything reads it whole (a 300 MB JSON
    doubled the site build's memory)."""
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise StoreError(f"{shown} is {size / 2 ** 20:.0f} MiB; no artifact of this pipeline is over "
                         f"{MAX_BYTES // 2 ** 20} MiB (the largest, the own CNN's weights, is ~1.2 MiB): {fix}")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def code_hash(paths, repo: Path = REPO) -> str:
    """sha256 over source files: each named relative to the repository (never where the checkout
    lives), then its bytes. Part of a stage's key."""
    h = hashlib.sha256()
    for p in paths:
        p = Path(p)
        name = p.resolve().relative_to(Path(repo).resolve()).as_posix() if p.is_absolute() else p.as_posix()
        h.update(name.encode() + b"\0")
        h.update(p.read_bytes() if p.is_absolute() else (Path(repo) / p).read_bytes())
    return h.hexdigest()


def stage_key(config: dict, code_files=(), input_files=(), repo: Path = REPO) -> str:
    """What changes a stage's results, in one hash: config (as JSON), code contents, input files'
    contents. Nothing machine-specific belongs in `config` (no paths, threads, times)."""
    h = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    h.update(code_hash(code_files, repo).encode())
    for p in input_files:
        h.update(sha256_file(p).encode())
    return h.hexdigest()


def git_state(repo: Path = REPO) -> dict:
    """{"commit": sha or "unknown", "dirty": bool}: the code that produced an artifact. Only the
    code that computes artifacts counts as dirty; site sources and artifacts may differ."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                              check=True).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        status = git("status", "--porcelain", "--", "pipeline", "tasks.py", "requirements.txt")
        return {"commit": commit, "dirty": bool(status)}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": "unknown", "dirty": True}


# --- atomic files ------------------------------------------------------------------------------

@contextmanager
def atomic_path(path: Path):
    """A temporary path beside `path`; renamed onto it on success, deleted on any error. For
    writers that want a file name (torch.save, np.savez)."""
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


def write_bytes_atomic(path: Path, data: bytes) -> bool:
    """Write unless the file already holds exactly these bytes; True if it wrote."""
    path = Path(path)
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return False
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return True


def csv_bytes(rows: list[dict], columns) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def json_bytes(obj) -> bytes:
    return (json.dumps(obj, indent=2) + "\n").encode("utf-8")


def torch_bytes(obj) -> bytes:
    import torch
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def line_digest(line: bytes) -> str:
    """A CSV line's identity in the manifest: 16 hex digits of its sha256."""
    return hashlib.sha256(line.rstrip(b"\r")).hexdigest()[:16]


def parse_csv(text: str) -> tuple[list[str], list[dict]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


# --- value rules -------------------------------------------------------------------------------

def _number(v):
    if isinstance(v, bool):
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _dig(obj, key: str):
    """Values at a dotted key; `*` is every value of a dict."""
    values = [obj]
    for part in key.split("."):
        nxt = []
        for v in values:
            if isinstance(v, dict):
                nxt += list(v.values()) if part == "*" else ([v[part]] if part in v else [])
        values = nxt
    return values


def problems(spec: contract.Artifact, content) -> list[str]:
    """What breaks the contract in a file's parsed content: (columns, rows) for CSV, an object
    for JSON. Empty if it holds."""
    found = []
    if spec.format == "csv":
        header, rows = content
        missing = [c for c in spec.columns if c not in header]
        if missing:
            return [f"has no column {', '.join(missing)}"]
        for i, row in enumerate(rows, start=2):  # line numbers as an editor shows them
            for col, rule in spec.checks.items():
                ok, says = contract.RULES[rule]
                x = _number(row.get(col))
                if x is None or not ok(x):
                    found.append(f"line {i}: {col} = {row.get(col)!r} is not {says}")
    elif spec.format == "json":
        if not isinstance(content, dict):
            return ["is not a JSON object"]
        missing = [k for k in spec.keys if k not in content]
        if missing:
            return [f"has no key {', '.join(missing)}"]
        for key, rule in spec.checks.items():
            ok, says = contract.RULES[rule]
            for v in _dig(content, key):
                x = _number(v)
                if x is None or not ok(x):
                    found.append(f"{key} = {v!r} is not {says}")
    return found


# --- the store -----------------------------------------------------------------------------------

class Store:
    """The artifacts tree at `root`. `task` is the invoke task writing through it (None: read only).
    """

    def __init__(self, root: Path | None = None, task: str | None = None, repo: Path = REPO):
        self.root = Path(root) if root is not None else resolve_root(repo)
        self.task = task
        self.repo = Path(repo)
        self._manifest = None
        self._cache: dict[str, object] = {}
        self._lock = None  # one FileLock per store: it is reentrant, two on one file are not

    # -- names

    def show(self, rel: str) -> str:
        """How a path is named in messages: relative to the working directory when it can be."""
        path = self.root / rel
        try:
            return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
        except ValueError:
            return str(path)

    def fix(self, rel: str) -> str:
        return contract.invoke_command(contract.writer_of(rel))

    # -- the manifest

    def manifest(self, fresh: bool = False) -> dict:
        if self._manifest is None or fresh:
            self._manifest = self._read_manifest()
        return self._manifest

    def _read_manifest(self) -> dict:
        path = self.root / contract.MANIFEST
        if not path.exists():
            return {"artifacts": {}, "tasks": {}}
        # The manifest also vouches for the long sweeps' files, which `invoke all` does not redo:
        # restoring the committed one is the fix that loses nothing.
        recover = f"restore it with `git checkout -- {self.show(contract.MANIFEST)}` and rerun"
        _not_huge(path, self.show(contract.MANIFEST), recover)
        try:
            manifest = json.loads(path.read_bytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise StoreError(f"{self.show(contract.MANIFEST)} is not valid JSON ({e}); {recover}") from None
        if not (isinstance(manifest, dict) and isinstance(manifest.get("artifacts"), dict)
                and isinstance(manifest.get("tasks"), dict)):
            raise StoreError(f"{self.show(contract.MANIFEST)} is not a manifest (a JSON object with "
                             f"\"artifacts\" and \"tasks\" tables); {recover}")
        return manifest

    def entry(self, rel: str) -> dict:
        entry = self.manifest()["artifacts"].get(rel)
        if not isinstance(entry, dict) or "sha256" not in entry:
            raise StoreError(f"{self.show(rel)} is not recorded in {self.show(contract.MANIFEST)}; "
                             f"run `{self.fix(rel)}` to write it.")
        return entry

    def is_up_to_date(self, stage: str, key: str) -> bool:
        """True when `stage` last ran with this key and every file it wrote is still there, byte
        for byte."""
        manifest = self.manifest(fresh=True)
        record = manifest["tasks"].get(stage)
        if not isinstance(record, dict) or record.get("key") != key:
            return False
        for rel in record.get("outputs", []):
            p, entry = self.root / rel, manifest["artifacts"].get(rel, {})
            if not p.is_file() or entry.get("sha256") != sha256_file(p):
                return False
        return True

    # -- reading

    def path(self, rel: str) -> Path:
        """artifacts/<rel>, which must exist and match the sha256 the manifest records. Only a file
        the contract lists, lying in the tree itself (the pipeline writes no symlinks: one could
        lead anywhere), under MAX_BYTES (what reads it reads it whole)."""
        path = self.root / rel
        if contract.spec_of(rel) is None:
            raise StoreError(f"{self.show(rel)} is not an artifact the contract lists (pipeline/contract.py); "
                             f"restore {self.show(contract.MANIFEST)} with git, or rerun the task that wrote it")
        if path.resolve() != self.root.resolve() / rel:
            raise StoreError(f"{self.show(rel)} is a symlink (or lies under one); the pipeline writes plain "
                             f"files only: remove it and rerun `{self.fix(rel)}`.")
        if not path.is_file():
            raise StoreError(f"{self.show(rel)} is missing; run `{self.fix(rel)}` to write it.")
        _not_huge(path, self.show(rel), f"rerun `{self.fix(rel)} --force`")
        sha = sha256_file(path)
        if self.entry(rel)["sha256"] != sha:
            self.manifest(fresh=True)  # another stage may have recorded it since we last looked
        if self.entry(rel)["sha256"] != sha:
            raise StoreError(f"{self.show(rel)} has changed since `{self.fix(rel)}` wrote it (its "
                             f"sha256 differs from the manifest); restore it with `git checkout -- "
                             f"{self.show(rel)}`, or rerun that with --force.")
        return path

    def _checked(self, rel: str, content):
        spec = contract.spec_of(rel)
        found = problems(spec, content) if spec else []
        if found:
            more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
            raise StoreError(f"{self.show(rel)} {found[0]}{more}; the file breaks the artifacts "
                             f"contract (edited by hand?): rerun `{self.fix(rel)} --force` or "
                             f"restore it with git.")
        return content

    def read_text(self, rel: str) -> str:
        try:
            return self.path(rel).read_bytes().decode("utf-8")
        except UnicodeDecodeError as e:
            raise StoreError(f"{self.show(rel)} is not UTF-8 text ({e}); rerun `{self.fix(rel)} --force`.") from None

    def read_json(self, rel: str):
        if rel not in self._cache:
            try:
                obj = json.loads(self.read_text(rel))
            except json.JSONDecodeError as e:
                raise StoreError(f"{self.show(rel)} is not valid JSON ({e}); rerun `{self.fix(rel)} --force`.") from None
            self._cache[rel] = self._checked(rel, obj)
        return self._cache[rel]

    def read_csv(self, rel: str) -> list[dict]:
        if rel not in self._cache:
            try:
                content = parse_csv(self.read_text(rel))
            except csv.Error as e:
                raise StoreError(f"{self.show(rel)} is not valid CSV ({e}); rerun `{self.fix(rel)} --force`.") from None
            self._cache[rel] = self._checked(rel, content)[1]
        return self._cache[rel]

    def previous(self, rel: str):
        """The JSON a stage wrote last time, for history it carries forward (sweep times, earlier
        final runs): parsed without the contract's checks, which may have grown since; None if
        it is missing or unreadable."""
        try:
            return json.loads((self.root / rel).read_bytes().decode("utf-8"))
        except (OSError, ValueError):
            return None

    def read_rows(self, rel: str) -> tuple[list[str] | None, list[dict], list[str]]:
        """A sweep's resumable rows, line by line: (header, the rows as the sweep recorded them,
        one problem per other line). A line is trusted when the whole file is as recorded, or when
        the manifest holds its digest; a line edited outside the pipeline (a made-up accuracy, a
        stray byte) is left out with a problem, for the sweep to set aside and redo. Never raises
        for the file's content."""
        path = self.root / rel
        if not path.is_file():
            return None, [], []
        data = path.read_bytes()
        entry = self.manifest()["artifacts"].get(rel) or {}
        whole = entry.get("sha256") == hashlib.sha256(data).hexdigest()
        known = set(entry.get("row_sha256") or [])
        lines = data.splitlines()
        try:
            header, rows = parse_csv(data.decode("utf-8"))
        except (UnicodeDecodeError, csv.Error):
            header, rows = None, None
        if rows is None or len(rows) != len(lines) - 1:  # not one row per line: go line by line
            header = parse_csv(lines[0].decode("utf-8", errors="replace"))[0] if lines else None
            rows = [dict(zip(header or [], next(csv.reader([l.decode("utf-8", errors="replace")]), [])))
                    for l in lines[1:]]
            whole = False
        kept, problems = [], []
        for i, (line, row) in enumerate(zip(lines[1:], rows), start=2):
            if whole or line_digest(line) in known:
                kept.append(row)
            else:
                problems.append(f"line {i}: not as the sweep recorded it (changed outside the pipeline?)")
        return header, kept, problems

    def exists(self, rel: str) -> bool:
        return (self.root / rel).is_file()

    # -- writing

    def _owned(self, rel: str) -> contract.Artifact:
        spec = contract.spec_of(rel)
        if spec is None:
            raise AssertionError(f"{rel} is not in the artifacts contract (pipeline/contract.py)")
        if self.task is not None and spec.writer != self.task:
            raise AssertionError(f"{rel} is written by `invoke {spec.writer}`, not `invoke {self.task}`")
        return spec

    def write(self, rel: str, content) -> Path:
        """Write one artifact (atomically; skipped if the bytes are the same). content: rows
        (list of dicts) for CSV, an object for JSON, bytes for images, a state dict for .pt, or
        (columns, rows) for a CSV whose header the contract does not fix."""
        spec = self._owned(rel)
        if spec.format == "csv":
            columns, rows = content if isinstance(content, tuple) else (spec.columns, content)
            data = csv_bytes(rows, columns)
        elif spec.format == "json":
            data = json_bytes(content)
        elif spec.format == "pt":
            data = torch_bytes(content)
        else:
            data = content
        found = problems(spec, parse_csv(data.decode()) if spec.format == "csv"
                         else json.loads(data) if spec.format == "json" else None)
        if found:  # never write what a reader would refuse
            raise AssertionError(f"{rel} {found[0]}")
        write_bytes_atomic(self.root / rel, data)
        self._cache.pop(rel, None)
        return self.root / rel

    def write_all(self, outputs: dict) -> list[Path]:
        return [self.write(rel, content) for rel, content in outputs.items()]

    @contextmanager
    def locked(self):
        """The manifest lock (reentrant): hold it to read, merge and record a shared file at once.
        A run that finds another holding it says so on stderr before it waits (at most
        LOCK_SECONDS: the lock is the kernel's and dies with its holder, so a longer wait is a
        hung run)."""
        from filelock import Timeout
        self.root.mkdir(parents=True, exist_ok=True)
        if self._lock is None:
            self._lock = FileLock(str(self.root / LOCK))
        try:
            self._lock.acquire(timeout=0.5)
        except Timeout:
            print(f"{self.task or 'store'}: waiting for another run to finish recording in {self.show(LOCK)} "
                  f"(at most {LOCK_SECONDS // 60} min)", file=sys.stderr, flush=True)
            try:
                self._lock.acquire(timeout=LOCK_SECONDS)
            except Timeout:
                raise StoreError(f"another run has held {self.show(LOCK)} for {LOCK_SECONDS // 60} min; "
                                 f"stop it (or wait for it), then rerun") from None
        try:
            yield self._lock
        finally:
            self._lock.release()

    def previous_rows(self, rel: str, lenient: bool = False) -> list[dict]:
        """A CSV this task rewrites, as it stands now (the manifest re-read): verified, or with
        `lenient` (a --force run) the rows that keep the value rules, whatever the checksum."""
        self._cache.pop(rel, None)
        self.manifest(fresh=True)
        if not self.exists(rel):
            return []
        if not lenient:
            return self.read_csv(rel)
        header, rows = parse_csv((self.root / rel).read_bytes().decode("utf-8", errors="replace"))
        spec = contract.spec_of(rel)
        return [r for r in rows if not problems(spec, (header, [r]))]

    def record(self, stage: str, key: str, paths, provenance: dict) -> None:
        """Record the files a stage wrote, with provenance, under the manifest lock. An entry whose
        file and provenance are unchanged keeps its commit and time: rerunning a stage that
        reproduces its files byte for byte changes nothing."""
        with self.locked():
            manifest = self.manifest(fresh=True)
            before = json_bytes(manifest)
            artifacts = {rel: e for rel, e in manifest["artifacts"].items() if (self.root / rel).exists()}
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            rels, state = [rel_of(p, self.root) for p in paths], None
            present, hashed = set(artifacts) | set(rels), {}

            def sha_of(rel):  # each file hashed once per call, though many record it as a source
                if rel not in hashed:
                    hashed[rel] = sha256_file(self.root / rel)
                return hashed[rel]
            for rel in rels:
                self._owned(rel)
                sha = sha_of(rel)
                old = artifacts.get(rel, {})
                # as JSON stores it (tuples become lists), so an unchanged entry compares equal
                fixed = json.loads(json.dumps({"task": self.task, "torch": _torch_version(), **provenance},
                                              default=str))
                derived = contract.sources(rel, present)
                if derived:  # what it was computed from, as it is now (`stale` compares)
                    fixed["sources"] = {src: sha_of(src) for src in derived}
                if old.get("sha256") == sha and all(old.get(k) == v for k, v in fixed.items()):
                    continue
                state = state or git_state(self.repo)
                artifacts[rel] = {**fixed, **state, "timestamp": now, "sha256": sha,
                                  "bytes": (self.root / rel).stat().st_size}
                if contract.spec_of(rel).rows_recorded:
                    artifacts[rel]["row_sha256"] = [line_digest(line) for line in
                                                    (self.root / rel).read_bytes().splitlines()[1:]]
            tasks = manifest["tasks"]
            old = tasks.get(stage, {})
            kept = old.get("outputs", []) if old.get("key") == key else []
            outputs = sorted({r for r in kept if r in artifacts} | set(rels))
            if old.get("key") != key or old.get("outputs") != outputs or old.get("task") != self.task:
                tasks[stage] = {"key": key, "task": self.task, "outputs": outputs, "finished": now}
            manifest = {"artifacts": dict(sorted(artifacts.items())), "tasks": dict(sorted(tasks.items()))}
            if json_bytes(manifest) != before:
                write_bytes_atomic(self.root / contract.MANIFEST, json_bytes(manifest))
            self._manifest = manifest

    def stale(self) -> list[tuple[str, str]]:
        """(file, why) for every recorded file derived from sources (contract.DERIVED_FROM) that
        were not, or are no longer, the ones present: another run's seeds analysis beside a new
        reference run, say. Empty when the tree is of one piece."""
        return derivation_problems(self.manifest(fresh=True)["artifacts"])


def derivation_problems(artifacts: dict) -> list[tuple[str, str]]:
    """Store.stale on a manifest's "artifacts" table."""
    found = []
    for rel, entry in artifacts.items():
        want = contract.sources(rel, artifacts)
        if not want:
            continue
        recorded = entry.get("sources")
        if not isinstance(recorded, dict):
            found.append((rel, "records no sources"))
            continue
        for src in sorted(set(want) | set(recorded)):
            if src not in want:
                found.append((rel, f"was derived from {src}, which is gone"))
            elif recorded.get(src) != artifacts[src].get("sha256"):
                found.append((rel, f"was derived from another {src} than the one here"))
    return found


def rel_of(path, root: Path) -> str:
    return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()


def _torch_version() -> str | None:
    try:
        import torch
        return torch.__version__
    except ImportError:  # the site build reads only; it never records
        return None


def clean_litter(root: Path, older_than: float = 0.0) -> list[Path]:
    """Remove temporary files a killed write left behind (.NAME.*.tmp) that are older than
    `older_than` seconds (a write in progress takes milliseconds; another stage may be writing
    now); returns them."""
    cutoff = time.time() - older_than
    found = [p for p in Path(root).rglob(".*.tmp") if p.is_file() and p.stat().st_mtime <= cutoff]
    for p in found:
        p.unlink(missing_ok=True)
    return found
