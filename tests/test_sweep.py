"""`invoke ablation` and `invoke seeds` end to end on a tiny CIFAR-10 and a real Dask LocalCluster:
the artifacts they write, bad flags, a corrupt runs.csv line, and a sweep killed half-way then
resumed, which must give the same results as an uninterrupted one."""
import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from invoke import Context
from invoke.exceptions import Exit

import tasks
from pipeline import ablation as AB
from pipeline import contract, stages
from pipeline.store import Store

ROOT = Path(__file__).resolve().parents[1]
DETERMINISTIC = ("test_accuracy", "best_val_accuracy", "best_val_epoch", "final_train_loss", "test_loss")


@pytest.fixture
def workspace(tmp_path, monkeypatch, tiny_cifar):
    monkeypatch.setattr(tasks, "ART", tmp_path / "artifacts")
    monkeypatch.setattr(tasks, "CACHE", tmp_path / "data")
    monkeypatch.setattr(tasks, "REJECTED", tmp_path / "rejected")
    monkeypatch.setattr(tasks, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(stages, "EXPECTED_COUNTS", tiny_cifar.counts)
    monkeypatch.setattr(stages, "VAL_SIZE", 50)
    monkeypatch.setitem(contract.REFERENCE, "epochs", 1)  # the tiny sweeps stand for the reference
    return tmp_path


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def by_run(rows):
    return {tuple(r[k] for k in ("preprocess", "batch_norm", "dropout", "augment", "seed")):
            {k: r[k] for k in DETERMINISTIC} for r in rows}


@pytest.mark.slow
def test_tiny_ablation_and_seeds_on_a_local_cluster(workspace, tiny_cifar, capsys):
    src = str(tiny_cifar.batch_dir)
    tasks.ablation(Context(), seeds=2, epochs=1, jobs=2, source=src, allow_unofficial_data=True, quiet=True)
    out = workspace / "artifacts" / "ablation"
    runs = read(out / "runs.csv")
    assert len(runs) == len(AB.design(2)) == 28
    assert list(runs[0]) == list(AB.RUN_COLUMNS)
    effects = read(out / "effects.csv")
    assert {e["effect"] for e in effects} >= {"batch_norm: True vs False", "dropout: True vs False"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["runs"] == 28 and summary["sweeps"][0]["workers"] == 2
    assert summary["conclusion"] and (out / "effects.svg").exists() and (out / "cells.png").exists()
    manifest = json.loads((workspace / "artifacts" / "manifest.json").read_text())
    assert "ablation/runs.csv" in manifest["artifacts"]
    assert "sweep: 28 runs on 2 worker(s)" in capsys.readouterr().out

    # A rerun trains nothing and keeps the sweep time of the first invocation.
    tasks.ablation(Context(), seeds=2, epochs=1, jobs=2, source=src, allow_unofficial_data=True, quiet=True)
    assert "0 to train" in capsys.readouterr().out
    again = json.loads((out / "summary.json").read_text())
    assert again["sweeps"] == summary["sweeps"]

    # Lines changed outside the pipeline are reported with their line numbers, kept aside (never
    # overwritten) and their runs redone: a percentage, a plausible made-up value, a stray byte. A
    # finished run with other settings (another config) stays in the file, out of the analysis.
    store = Store(workspace / "artifacts", task="ablation")  # a sweep with other settings wrote one run
    store.record("ablation", "other", [store.write("ablation/runs.csv", runs + [{**runs[7], "config": "0123456789ab"}])],
                 {"config": {}})
    lines = (out / "runs.csv").read_bytes().splitlines()
    for i, value in ((3, b"63.5"), (5, b"0.99")):
        cells = lines[i].split(b",")
        cells[4] = value
        lines[i] = b",".join(cells)
    lines[7] = lines[7].replace(b"cpu", b"c\xffu")
    (out / "runs.csv").write_bytes(b"\n".join(lines) + b"\n")
    tasks.ablation(Context(), seeds=2, epochs=1, jobs=2, source=src, allow_unofficial_data=True, quiet=True)
    captured = capsys.readouterr()
    for line in (4, 6, 8):
        assert f"ablation/runs.csv line {line}: not as the sweep recorded it" in captured.err, captured.err
    assert "3 to train" in captured.out
    assert len(list((workspace / "rejected").glob("ablation-runs-*.csv"))) == 1
    kept = read(out / "runs.csv")
    assert [r for r in kept if r["config"] == "0123456789ab"] and len(kept) == 29
    assert by_run([r for r in kept if r["config"] != "0123456789ab"]) == by_run(runs)  # redone: the same numbers

    # seeds: needs the seed-0 reference runs of `invoke train` first.
    with pytest.raises(Exit, match="no seed-0 run|is missing"):
        tasks.seeds(Context(), seeds=2, epochs=1, jobs=2, source=src, allow_unofficial_data=True, quiet=True)
    tasks.train(Context(), epochs=1, source=src, allow_unofficial_data=True, quiet=True)
    tasks.seeds(Context(), seeds=3, epochs=1, jobs=2, source=src, allow_unofficial_data=True, quiet=True)
    summary_rows = read(workspace / "artifacts" / "lenet" / "summary.csv")  # train's only
    assert sorted((r["variant"], r["seed"]) for r in summary_rows) == [("lenet_bn_dropout", "0"), ("lenet_plain", "0")]
    extra = read(workspace / "artifacts" / "lenet" / "seed_runs.csv")
    assert sorted((r["variant"], r["seed"]) for r in extra) == sorted(
        (v, str(s)) for v in ("lenet_bn_dropout", "lenet_plain") for s in (1, 2))
    seeds = json.loads((workspace / "artifacts" / "lenet" / "seeds.json").read_text())
    assert seeds["variants"]["lenet_plain"]["n"] == 3 and seeds["paired"]["n"] == 3
    assert read(workspace / "artifacts" / "lenet" / "seeds.csv")[0]["variant"] == "lenet_bn_dropout"

    # Another design never rewrites the published analysis: --seeds 2 after 3 goes to build/runs/.
    published = {p: p.read_bytes() for p in (workspace / "artifacts").rglob("*") if p.is_file()}
    tasks.seeds(Context(), seeds=2, epochs=1, jobs=2, source=src, allow_unofficial_data=True, quiet=True)
    assert "publishes another design; this one goes to" in capsys.readouterr().out
    assert {p: p.read_bytes() for p in (workspace / "artifacts").rglob("*") if p.is_file()} == published
    other = json.loads((workspace / "runs" / "seeds-seeds2" / "lenet" / "seeds.json").read_text())
    assert other["variants"]["lenet_plain"]["n"] == 2


@pytest.mark.parametrize("flags, message", [
    ({"seeds": -1}, "--seeds must be at least 2, got -1"),
    ({"seeds": 1}, "--seeds must be at least 2, got 1"),
    ({"epochs": 0}, "--epochs must be at least 1"),
    ({"jobs": "two"}, "--jobs must be an integer"),
])
def test_bad_sweep_flags_are_one_line_errors(workspace, tiny_cifar, flags, message):
    for task in (tasks.ablation, tasks.seeds):
        with pytest.raises(Exit) as e:
            task(Context(), source=str(tiny_cifar.batch_dir), allow_unofficial_data=True, **flags)
        assert e.value.code == 1 and message in str(e.value.message) and "\n" not in e.value.message


DRIVER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from invoke import Context
    import tasks
    from pipeline import contract, stages
    art, data, counts = sys.argv[1], sys.argv[2], tuple(map(int, sys.argv[3].split(",")))
    tasks.ART, tasks.CACHE = Path(art), Path(art) / "cache"
    stages.EXPECTED_COUNTS, stages.VAL_SIZE, contract.REFERENCE["epochs"] = counts, 50, 4
    tasks.ablation(Context(), seeds=2, epochs=4, jobs=2, augment=False, source=data,
                   allow_unofficial_data=True, quiet=True)
""")


def run_driver(art, tiny_cifar):
    counts = ",".join(map(str, tiny_cifar.counts))
    return subprocess.Popen([sys.executable, "-c", DRIVER, str(art), str(tiny_cifar.batch_dir), counts],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own process group: the kill takes the workers too


@pytest.mark.slow
def test_killed_sweep_resumes_to_the_same_results(tmp_path, tiny_cifar):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    p = run_driver(whole, tiny_cifar)
    assert p.wait(timeout=600) == 0, p.stderr.read()
    reference = by_run(read(whole / "ablation" / "runs.csv"))
    assert len(reference) == 24

    p = run_driver(killed, tiny_cifar)
    runs = killed / "ablation" / "runs.csv"
    deadline = time.time() + 300
    while time.time() < deadline and p.poll() is None:
        if runs.exists() and 3 <= len(read(runs)) < 20:
            os.killpg(p.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    p.wait(timeout=60)
    assert p.returncode == -signal.SIGKILL, "the sweep finished before it could be killed"
    partial = read(runs)
    rows, problems = AB.read_runs(list(partial[0]), partial, partial[0]["config"])
    assert problems == [] and 3 <= len(rows) < 24  # only whole rows were saved

    p = run_driver(killed, tiny_cifar)
    assert p.wait(timeout=600) == 0, p.stderr.read()
    assert by_run(read(runs)) == reference
