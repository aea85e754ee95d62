"""Atomic writes, the manifest, and the skip logic."""
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import artifacts as A

ROOT = Path(__file__).resolve().parents[1]


def test_failed_write_keeps_the_old_file(tmp_path):
    target = A.write_text(tmp_path / "x.json", "old")
    with pytest.raises(RuntimeError):
        with A.atomic_path(target) as tmp:
            tmp.write_text("half of the new")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_killed_writer_leaves_old_file(tmp_path):
    target = A.write_text(tmp_path / "big.csv", "old\n")
    code = (f"import time; from pipeline import artifacts as A\n"
            f"with A.atomic_path({str(target)!r}) as tmp:\n"
            f"    open(tmp, 'w').write('partial'); print('writing', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert target.read_text() == "old\n"  # never the partial content


def test_files_are_world_readable(tmp_path):
    p = A.write_json(tmp_path / "a.json", {"x": 1})
    assert p.stat().st_mode & 0o044 == 0o044
    assert json.loads(p.read_text()) == {"x": 1}


def test_csv_roundtrip(tmp_path):
    rows = [{"a": 1, "b": 0.5}, {"a": 2, "b": 0.25}]
    p = A.write_csv(tmp_path / "r.csv", rows)
    assert A.read_csv(p) == [{"a": "1", "b": "0.5"}, {"a": "2", "b": "0.25"}]


def test_record_and_skip(tmp_path):
    out = A.write_text(tmp_path / "out.txt", "result")
    key = A.task_key({"epochs": 2}, [ROOT / "pipeline" / "artifacts.py"])
    assert not A.is_up_to_date(tmp_path, "t", key)
    A.record(tmp_path, "t", key, [out], {"config": {"epochs": 2}, "seeds": {"seed": 0},
                                         "device": "cpu", "data": None})
    entry = A.read_json(tmp_path / "manifest.json")["artifacts"]["out.txt"]
    assert entry["sha256"] == A.sha256_file(out) and entry["task"] == "t"
    assert entry["config"] == {"epochs": 2} and "commit" in entry and "timestamp" in entry
    assert A.is_up_to_date(tmp_path, "t", key)
    # another config, or a changed output, means the work is redone
    assert not A.is_up_to_date(tmp_path, "t", A.task_key({"epochs": 3}, []))
    out.write_text("edited by hand")
    assert not A.is_up_to_date(tmp_path, "t", key)
    out.unlink()
    assert not A.is_up_to_date(tmp_path, "t", key)


def test_task_key_depends_on_code_and_inputs(tmp_path):
    code = A.write_text(tmp_path / "stage.py", "x = 1\n")
    data = A.write_text(tmp_path / "in.csv", "1\n")
    k = A.task_key({}, [code], [data])
    assert k == A.task_key({}, [code], [data])
    A.write_text(data, "2\n")
    assert k != A.task_key({}, [code], [data])
    k2 = A.task_key({}, [code], [data])
    A.write_text(code, "x = 2\n")
    assert k2 != A.task_key({}, [code], [data])


def test_git_state_reports_a_commit():
    state = A.git_state(ROOT)
    assert set(state) == {"commit", "dirty"}
    assert state["commit"] == "unknown" or len(state["commit"]) == 40


def test_committed_artifacts_are_not_git_ignored():
    """Every file the manifest lists must reach a fresh clone: an ignore rule that swallows one
    (as `data/` once swallowed artifacts/data/) breaks the site build on CI only."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    manifest = json.loads((root / "artifacts" / "manifest.json").read_text())
    paths = [f"artifacts/{rel}" for rel in manifest["artifacts"]]
    assert paths
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *paths], cwd=root,
                             capture_output=True, text=True).stdout.split()
    assert ignored == []


def test_record_drops_entries_for_files_that_are_gone(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    A.write_text(a, "a"), A.write_text(b, "b")
    A.record(tmp_path, "t", "k", [a, b], {})
    b.unlink()
    A.record(tmp_path, "t", "k", [a], {})
    manifest = A.read_json(tmp_path / "manifest.json")
    assert list(manifest["artifacts"]) == ["a.txt"]
    assert manifest["tasks"]["t"]["outputs"] == ["a.txt"]
