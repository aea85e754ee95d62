"""A fresh clone at another path, with the data given, finds every stage of `invoke all` up to
date: nothing is trained or recomputed, no tracked file changes, the site builds. This is what
a user who clones the repository and runs the README's commands sees."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "cifar10" / "cifar-10-python-rebuilt.tar.gz"
STAGES = ("data", "train:lenet_bn_dropout", "train:lenet_plain", "plots", "answers", "layers", "filters")


@pytest.mark.slow
def test_fresh_clone_is_up_to_date(tmp_path):
    if not DATA.exists():
        pytest.skip(f"{DATA} is not here")
    if subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                      capture_output=True, text=True).stdout.strip():
        pytest.skip("uncommitted changes: the clone would test the last commit, not this tree")
    clone = tmp_path / "another path with a space" / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    env = {**os.environ, "CIFAR10_PATH": str(DATA), "CIFAR10_ALLOW_UNOFFICIAL": "1"}
    env.pop("LENET_ARTIFACTS", None)
    proc = subprocess.run([sys.executable, "-m", "invoke", "all"], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for stage in STAGES:
        assert f"{stage}: up to date" in proc.stdout, (stage, proc.stdout)
    assert "data: up to date; wrote the sample cache" in proc.stdout  # the clone had no data/ yet
    changed = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True,
                             text=True).stdout.split("\n")
    assert [line for line in changed if line.strip() and not line.endswith(("data/", "site/"))] == []
    assert (clone / "site" / "index.html").exists()
