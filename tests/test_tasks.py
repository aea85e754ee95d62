"""The invoke tasks end to end on the tiny synthetic archive, and every bad input at the CLI:
one clear line on stderr, a non-zero exit, and nothing half-written."""
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from invoke import Context

import tasks
from pipeline import contract, stages
from pipeline.store import Store, sha256_file
from pipeline.train import THREADS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def workspace(tmp_path, monkeypatch, tiny_cifar):
    """tasks.py pointed at a temporary artifacts/ and cache, expecting the tiny archive's sizes."""
    monkeypatch.setattr(tasks, "ART", tmp_path / "artifacts")
    monkeypatch.setattr(tasks, "CACHE", tmp_path / "data")
    monkeypatch.setattr(tasks, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(stages, "EXPECTED_COUNTS", tiny_cifar.counts)
    monkeypatch.setattr(stages, "VAL_SIZE", 50)
    # the tiny runs below (2 epochs, batch 64) stand for the reference
    monkeypatch.setitem(contract.REFERENCE, "epochs", 2)
    monkeypatch.setitem(contract.REFERENCE, "batch_size", 64)
    monkeypatch.delenv("CIFAR10_PATH", raising=False)
    monkeypatch.setenv("CIFAR10_ALLOW_UNOFFICIAL", "1")
    return tmp_path


@pytest.mark.slow  # a subprocess (interpreter + torch start) or a full pipeline: not in --fast
def test_pipeline_end_to_end_then_skips(workspace, tiny_cifar, capsys):
    c = Context()
    src = str(tiny_cifar.archive)
    tasks.data(c, source=src, samples=24)
    tasks.train(c, epochs=2, batch_size=64, source=src, quiet=True)
    tasks.plots(c)
    art = workspace / "artifacts"
    store = Store(art)
    summary = store.read_csv("lenet/summary.csv")
    assert [r["variant"] for r in summary] == ["lenet_bn_dropout", "lenet_plain"]
    for column in ("variant", "seed", "epochs", "test_accuracy", "best_val_accuracy",
                   "final_train_loss", "train_seconds", "images_per_second", "device"):
        assert column in summary[0]
    for r in summary:
        assert 0 <= float(r["test_accuracy"]) <= 1 and int(r["epochs"]) == 2
        log = store.read_csv(f"lenet/{r['variant']}/log.csv")
        assert len(log) == 2
        cm = np.loadtxt(art / "lenet" / r["variant"] / "confusion.csv", delimiter=",",
                        skiprows=1, usecols=range(1, 11))
        assert cm.sum() == tiny_cifar.counts[1]
        assert np.trace(cm) / cm.sum() == pytest.approx(float(r["test_accuracy"]))
    manifest = store.manifest()
    for rel, entry in manifest["artifacts"].items():
        assert entry["sha256"] == sha256_file(art / rel), rel
        assert entry["task"] == contract.writer_of(rel), rel
        for key in ("task", "commit", "config", "seeds", "device", "torch", "data", "timestamp"):
            assert key in entry, (rel, key)
        if entry["data"] is not None:
            assert entry["data"]["official"] is False
    assert not list(art.rglob("*.tmp"))

    capsys.readouterr()
    mtimes = {p: p.stat().st_mtime_ns for p in art.rglob("*")}
    tasks.data(c, source=src, samples=24)
    tasks.train(c, epochs=2, batch_size=64, source=src, quiet=True)
    tasks.plots(c)
    out = capsys.readouterr().out
    assert out.count("up to date") == 4, out
    # a run that redid nothing rewrote nothing, the manifest included
    assert {p: p.stat().st_mtime_ns for p in art.rglob("*")} == mtimes

    # a changed output is noticed, and --force redoes the work
    (art / "lenet" / "lenet_plain" / "log.csv").write_text("tampered\n")
    tasks.train(c, epochs=2, batch_size=64, source=src, quiet=True, variant="lenet_plain")
    assert "tampered" not in (art / "lenet" / "lenet_plain" / "log.csv").read_text()
    capsys.readouterr()
    tasks.plots(c, force=True)
    assert "up to date" not in capsys.readouterr().out


def test_smoke_run_stays_out_of_artifacts(workspace, tiny_cifar):
    tasks.train(Context(), smoke=True, batch_size=64, source=str(tiny_cifar.batch_dir), quiet=True,
                variant="lenet_plain")
    assert (workspace / "runs" / "smoke" / "lenet" / "summary.csv").exists()
    assert not (workspace / "artifacts").exists()


def test_other_settings_never_replace_the_reference(workspace, tiny_cifar, capsys):
    c, src = Context(), str(tiny_cifar.batch_dir)
    tasks.train(c, epochs=2, batch_size=64, source=src, quiet=True, variant="lenet_plain")
    art = workspace / "artifacts"
    before = {p: p.read_bytes() for p in art.rglob("*") if p.is_file()}
    tasks.train(c, epochs=1, batch_size=64, source=src, quiet=True, variant="lenet_plain")
    tasks.train(c, epochs=2, batch_size=64, lr="0.01", seed=3, source=src, quiet=True, variant="lenet_plain")
    assert {p: p.read_bytes() for p in art.rglob("*") if p.is_file()} == before
    assert "writing to" in capsys.readouterr().out
    assert Store(workspace / "runs" / "epochs1").read_csv("lenet/summary.csv")[0]["epochs"] == "1"
    assert (workspace / "runs" / "lr0.01-seed3" / "lenet" / "lenet_plain" / "weights.pt").exists()


def test_verify_retrains_the_reference_elsewhere_and_finds_it_identical(workspace, tiny_cifar, monkeypatch):
    monkeypatch.setattr(tasks, "SCRATCH", workspace / "verify")
    c, src = Context(), str(tiny_cifar.batch_dir)
    tasks.train(c, epochs=2, batch_size=64, source=src, quiet=True)
    summary = (workspace / "artifacts" / "lenet" / "summary.csv").read_bytes()
    tasks.verify(c, source=src, quiet=True)
    store = Store(workspace / "artifacts")
    assert (workspace / "artifacts" / "lenet" / "summary.csv").read_bytes() == summary  # untouched
    rows = store.read_csv("verify.csv")
    assert len(rows) == 2 * len(stages.VERIFY_METRICS) and {r["verdict"] for r in rows} == {"identical"}
    report = store.read_json("verify.json")
    assert report["verdict"] == "identical" and report["rerun"]["torch"] and report["committed"]["commit"]
    # both sides' machine as their training processes recorded it (metrics.json), one thread each
    machine = store.read_json("lenet/lenet_plain/metrics.json")["machine"]
    assert report["committed"]["machine"] == report["rerun"]["machine"] == machine
    assert machine["threads"] == THREADS and machine["isa"] and machine["cpu"]


def test_plots_without_training_is_a_clear_error(workspace):
    with pytest.raises(Exception, match="missing; run `invoke data`"):
        tasks.plots(Context())


# --- bad input at the command line ----------------------------------------------------------

def run_invoke(*args, env=None, cwd=ROOT):
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("CIFAR10_PATH", "CIFAR10_ALLOW_UNOFFICIAL")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=300)


def assert_one_line_error(proc, *fragments):
    assert proc.returncode != 0
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    for f in fragments:
        assert f in lines[0], lines[0]


@pytest.fixture
def art_env(tmp_path):
    """Point a subprocess's tasks at an empty temporary artifacts dir; check it stays empty."""
    art = tmp_path / "artifacts"
    yield {"LENET_ARTIFACTS": str(art)}
    assert not art.exists() or not any(art.rglob("*")), "a failed task wrote artifacts"


def copy_tiny(tiny_cifar, tmp_path):
    d = tmp_path / "cifar-10-batches-py"
    shutil.copytree(tiny_cifar.batch_dir, d)
    return d


CASES = {
    "missing path": (lambda t, p: str(p / "nope.tar.gz"), ["does not exist"]),
    "empty path": (lambda t, p: "", ["empty"]),
}


@pytest.mark.slow  # a subprocess (interpreter + torch start) or a full pipeline: not in --fast
@pytest.mark.parametrize("case", CASES)
def test_bad_source(case, tiny_cifar, tmp_path, art_env):
    make, fragments = CASES[case]
    proc = run_invoke("data", "--source", make(tiny_cifar, tmp_path), env=art_env)
    assert_one_line_error(proc, *fragments)


@pytest.mark.slow  # a subprocess (interpreter + torch start) or a full pipeline: not in --fast
def test_truncated_archive(tiny_cifar, tmp_path, art_env):
    bad = tmp_path / "cifar-10-python.tar.gz"
    bad.write_bytes(tiny_cifar.archive.read_bytes()[:5000])
    proc = run_invoke("data", "--source", str(bad), "--allow-unofficial-data", env=art_env)
    assert_one_line_error(proc, "truncated or corrupt")


@pytest.mark.slow  # a subprocess (interpreter + torch start) or a full pipeline: not in --fast
def test_garbage_archive(tmp_path, art_env):
    bad = tmp_path / "cifar-10-python.tar.gz"
    bad.write_bytes(b"this is not a gzip file at all" * 100)
    proc = run_invoke("data", "--source", str(bad), "--allow-unofficial-data", env=art_env)
    assert_one_line_error(proc, "corrupt")


@pytest.mark.slow  # a subprocess (interpreter + torch start) or a full pipeline: not in --fast
def test_unofficial_md5_refused_without_flag(tiny_cifar, art_env):
    proc = run_invoke("data", "--source", str(tiny_cifar.batch_dir), env=art_env)
    assert_one_line_error(proc, "not the official", "--allow-unofficial-data")


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned-by-pickle",))


@pytest.mark.slow  # a subprocess (interpreter + torch start) or a full pipeline: not in --fast
def test_code_executing_pickle_is_refused(tiny_cifar, tmp_path, art_env):
    d = copy_tiny(tiny_cifar, tmp_path)
    (d / "data_batch_2").write_bytes(pickle.dumps({b"data": Exploit()}, protocol=2))
    proc = run_invoke("data", "--source", str(d), "--allow-unofficial-data", env=art_env,
                      cwd=ROOT)
    assert_one_line_error(proc, "refusing to unpickle")
    assert not (ROOT / "pwned-by-pickle").exists()


@pytest.mark.slow  # a subprocess (interpreter + torch start) or a full pipeline: not in --fast
@pytest.mark.parametrize("problem", ["float pixels", "label 10", "wrong columns"])
def test_bad_batch_contents(problem, tiny_cifar, tmp_path, art_env):
    d = copy_tiny(tiny_cifar, tmp_path)
    data, labels = tiny_cifar.batches["data_batch_3"]
    labels = list(labels)
    if problem == "float pixels":
        data = data.astype(np.float32)
    elif problem == "label 10":
        labels[0] = 10
    else:
        data = data[:, :3000]
    with open(d / "data_batch_3", "wb") as f:
        pickle.dump({b"data": data, b"labels": labels}, f, protocol=2)
    proc = run_invoke("data", "--source", str(d), "--allow-unofficial-data", env=art_env)
    assert_one_line_error(proc, "data_batch_3")


@pytest.mark.slow  # a subprocess (interpreter + torch start) or a full pipeline: not in --fast
def test_wrong_counts(tiny_cifar, art_env):
    # the tiny archive is a well-formed CIFAR batch set with too few images for the real thing
    proc = run_invoke("data", "--source", str(tiny_cifar.batch_dir), "--allow-unofficial-data",
                      env=art_env)
    assert_one_line_error(proc, "50000")


@pytest.mark.slow  # a subprocess (interpreter + torch start) or a full pipeline: not in --fast
@pytest.mark.parametrize("args,fragment", [
    (["--variant", "lenet9"], "unknown variant 'lenet9'"),
    (["--device", "tpu"], "unknown device 'tpu'"),
    (["--epochs", "0"], "--epochs must be at least 1"),
    (["--batch-size", "-3"], "--batch-size must be at least 1"),
    (["--lr", "0"], "--lr must be positive"),
    (["--lr", "fast"], "--lr must be a number"),
    (["--seed", "-1"], "--seed must be at least 0"),
    (["--epochs", "abc"], "--epochs must be an integer"),
    (["--lr", "inf"], "--lr must be a finite number"),
])
def test_bad_train_flags(args, fragment, art_env):
    assert_one_line_error(run_invoke("train", *args, env=art_env), fragment)


@pytest.mark.slow  # a subprocess (interpreter + torch start) or a full pipeline: not in --fast
@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_cuda_requested_without_gpu(art_env):
    assert_one_line_error(run_invoke("train", "--device", "cuda", env=art_env), "no CUDA GPU")


def test_every_task_and_argument_has_help():
    for name, t in tasks.__dict__.items():
        if getattr(t, "__module__", None) is None or not hasattr(t, "body"):
            continue
        assert t.__doc__ and t.__doc__.strip(), name
        import inspect
        params = list(inspect.signature(t.body).parameters)[1:]
        assert set(params) <= set(t.help), (name, set(params) - set(t.help))


def test_clean_keeps_data_and_artifacts(tmp_path, monkeypatch):
    monkeypatch.setattr(tasks, "ROOT", tmp_path)
    monkeypatch.setattr(tasks, "CACHE", tmp_path / "data")
    monkeypatch.setattr(tasks, "ART", tmp_path / "artifacts")
    for d in ("site", "build/smoke", "data/extracted", "artifacts/lenet", "pipeline/__pycache__"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "data" / "extracted" / "data_batch_1").write_text("x")
    tasks.clean(Context())
    assert not (tmp_path / "site").exists() and not (tmp_path / "build").exists()
    assert not (tmp_path / "pipeline" / "__pycache__").exists()
    assert (tmp_path / "data" / "extracted" / "data_batch_1").exists()
    assert (tmp_path / "artifacts" / "lenet").exists()
    tasks.clean(Context(), artifacts=True)
    assert not (tmp_path / "artifacts").exists() and (tmp_path / "data").exists()


# --- faults and injection ------------------------------------------------------------------------

@pytest.mark.parametrize("err", [(28, "No space left on device"), (30, "Read-only file system"),
                                 (13, "Permission denied")])
def test_os_errors_are_one_line_naming_the_path(workspace, tiny_cifar, monkeypatch, err):
    import pipeline.store
    from invoke.exceptions import Exit

    def full(path, data):
        raise OSError(err[0], err[1], str(path))
    monkeypatch.setattr(pipeline.store, "write_bytes_atomic", full)
    with pytest.raises(Exit) as e:
        tasks.data(Context(), source=str(tiny_cifar.batch_dir), samples=24)
    message = e.value.message
    assert e.value.code == 1 and "\n" not in message and err[1] in message and "dataset.json" in message
    assert not (workspace / "artifacts" / "manifest.json").exists()  # nothing recorded


@pytest.mark.slow  # a subprocess (interpreter + torch start) or a full pipeline: not in --fast
def test_no_shell_runs_what_a_flag_holds(tmp_path):
    marker = tmp_path / "INJECTED"
    proc = run_invoke("test", "-k", f"nothing_matches' ; touch {marker} ; echo '", env={})
    assert not marker.exists() and "Traceback" not in proc.stderr


@pytest.mark.slow  # a full site build
def test_site_dir_with_spaces_and_shell_characters(tmp_path):
    marker = tmp_path / "INJECTED"
    site = tmp_path / f"my site; touch {marker}"
    proc = run_invoke("docs", "--site-dir", str(site), env={})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not marker.exists() and (site / "index.html").exists()


def test_other_data_and_other_roots_never_replace_the_reference(workspace, tiny_cifar, capsys):
    from invoke.exceptions import Exit
    c = Context()
    tasks.data(c, source=str(tiny_cifar.batch_dir), samples=24)
    tasks.train(c, epochs=2, batch_size=64, source=str(tiny_cifar.batch_dir), quiet=True, variant="lenet_plain")
    art = workspace / "artifacts"
    before = {p: p.read_bytes() for p in art.rglob("*") if p.is_file()}
    other = copy_tiny(tiny_cifar, workspace)  # another copy of the data: one test label changed
    data, labels = tiny_cifar.batches["test_batch"]
    with open(other / "test_batch", "wb") as f:
        pickle.dump({b"data": data, b"labels": [(labels[0] + 1) % 10, *labels[1:]]}, f, protocol=2)
    tasks.data(c, source=str(other), samples=24)
    tasks.train(c, epochs=2, batch_size=64, source=str(other), quiet=True, variant="lenet_plain")
    assert {p: p.read_bytes() for p in art.rglob("*") if p.is_file()} == before
    folders = [p.name for p in (workspace / "runs").iterdir()]
    assert len(folders) == 1 and folders[0].startswith("data-")
    assert (workspace / "runs" / folders[0] / "lenet" / "lenet_plain" / "weights.pt").exists()
    with pytest.raises(Exit, match="--root is for a scratch folder"):
        tasks.train(c, epochs=1, root=str(art), source=str(tiny_cifar.batch_dir), quiet=True)
    with pytest.raises(Exit, match="unknown variant 'rescale'"):  # an ablation spec is not a variant
        tasks.train(c, variant="rescale", source=str(tiny_cifar.batch_dir), quiet=True)
    assert {p: p.read_bytes() for p in art.rglob("*") if p.is_file()} == before


def test_invoke_all_on_other_data_changes_no_tracked_file(workspace, tiny_cifar, monkeypatch, capsys):
    """Issue 28: a user whose data is not the reference's (nearly everyone with the official
    archive) runs `invoke all`; artifacts/ stays byte-identical, its manifest and timings.json
    included, and the run's timings go to its own folder. The stages after training read
    artifacts/ only; they are stubbed here (the site needs the whole tree)."""
    monkeypatch.setitem(contract.REFERENCE, "batch_size", 128)  # `invoke all` trains with the defaults
    c = Context()
    tasks.data(c, source=str(tiny_cifar.batch_dir), samples=24)
    tasks.train(c, source=str(tiny_cifar.batch_dir), quiet=True)
    art = workspace / "artifacts"
    before = {p: p.read_bytes() for p in art.rglob("*") if p.is_file()}
    other = copy_tiny(tiny_cifar, workspace)
    data, labels = tiny_cifar.batches["test_batch"]
    with open(other / "test_batch", "wb") as f:
        pickle.dump({b"data": data, b"labels": [(labels[0] + 1) % 10, *labels[1:]]}, f, protocol=2)
    for name in ("plots", "derive", "answers", "layers", "filters", "docs"):
        monkeypatch.setattr(tasks, name, lambda *a, **k: False)
    tasks.all_(c, source=str(other), pdf=False)
    assert {p: p.read_bytes() for p in art.rglob("*") if p.is_file()} == before
    runs = list((workspace / "runs").iterdir())
    assert len(runs) == 1, runs
    run = runs[0]
    timings = json.loads((run / "timings.json").read_text())
    assert timings["redone"] == ["data", "train"]
    assert "timings.json" in json.loads((run / "manifest.json").read_text())["artifacts"]
    assert f"this run, on other data or settings, is in {run}" in capsys.readouterr().out


def test_a_full_disk_without_a_file_name_is_one_line(workspace, tiny_cifar, monkeypatch):
    import pipeline.store
    from invoke.exceptions import Exit

    def full(path, data):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(pipeline.store, "write_bytes_atomic", full)
    with pytest.raises(Exit, match="No space left on device") as e:
        tasks.data(Context(), source=str(tiny_cifar.batch_dir), samples=24)
    assert "\n" not in e.value.message


@pytest.mark.slow  # trains both reference runs (20 short epochs on the tiny archive) and builds the site
def test_forced_reference_under_another_isa_rederives_everything_and_builds(tmp_path, monkeypatch, tiny_cifar):
    """Issue 22: `--force` on the reference, on a CPU whose kernels differ (oneDNN held to SSE4.1 in
    the training processes), re-derives everything downstream of it (contract.DERIVED_FROM): the
    seeds analysis, the plots, verify's and the benchmark's comparisons; the strict build passes
    and publishes the new runs' numbers. A tree that mixes runs is still refused."""
    from tests.test_site import build, write_fake_artifacts
    art = write_fake_artifacts(tmp_path / "artifacts")  # a complete published tree, on other data
    for name, value in (("ART", art), ("CACHE", tmp_path / "data"), ("RUNS", tmp_path / "runs"),
                        ("SCRATCH", tmp_path / "verify")):
        monkeypatch.setattr(tasks, name, value)
    monkeypatch.setattr(stages, "EXPECTED_COUNTS", tiny_cifar.counts)
    monkeypatch.setattr(stages, "VAL_SIZE", 50)
    monkeypatch.setenv("LENET_ARTIFACTS", str(art))
    monkeypatch.setenv("CIFAR10_ALLOW_UNOFFICIAL", "1")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "SSE41")  # inherited by the training processes
    c, src = Context(), str(tiny_cifar.archive)
    old = {rel: (art / rel).read_bytes() for rel in ("lenet/seeds.json", "verify.json", "bench.json")}
    tasks.data(c, source=src, samples=24, force=True)
    tasks.train(c, source=src, quiet=True, force=True)  # the reference settings: 20 epochs, batch 128
    store = Store(art)
    assert {rel for rel, _ in store.stale()} >= {"lenet/seeds.json", "verify.json", "bench.json",
                                                 "lenet/findings.json", "lenet/per_class.csv"}
    assert tasks.derive(c, source=src) is True
    assert store.stale() == []
    assert tasks.derive(c, source=src) is False  # nothing left to derive
    summary = {r["variant"]: float(r["test_accuracy"]) for r in store.read_csv("lenet/summary.csv")}
    seeds = store.read_json("lenet/seeds.json")
    assert seeds["reference"] == summary
    assert {r["variant"]: r["committed"] for r in store.read_csv("verify.csv") if r["metric"] == "test_accuracy"} \
        == {v: str(a) for v, a in summary.items()}
    bench = store.read_json("bench.json")["end_to_end"]["accuracies"]
    assert {v: a["committed"] for v, a in bench.items()} == summary
    assert all((art / rel).read_bytes() != before for rel, before in old.items())
    b = build(art, tmp_path / "site")
    assert b.returncode == 0, b.output[-3000:]
    results = b.pages()["lenet/results/index.html"]
    for accuracy in summary.values():
        assert f"{100 * accuracy:.2f}%" in results

    # the old seeds analysis put back beside the new reference runs: refused
    (art / "lenet/seeds.json").write_bytes(old["lenet/seeds.json"])
    manifest = json.loads((art / "manifest.json").read_text())
    entry = manifest["artifacts"]["lenet/seeds.json"]
    entry["sha256"] = sha256_file(art / "lenet/seeds.json")
    (art / "manifest.json").write_text(json.dumps(manifest))
    b = build(art, tmp_path / "site2")
    assert b.returncode != 0
    assert "the tree mixes runs" in b.output or "seed-0 test accuracy" in b.output, b.output[-2000:]


@pytest.mark.parametrize("make", ["artifacts-like", "repository", "file"])
def test_docs_never_empties_a_folder_it_did_not_build(tmp_path, make, monkeypatch):
    """Issue 23: `invoke docs --site-dir X` emptied X whatever it held (76 tracked files of
    artifacts/). Only a new or empty folder, or one the site build made, is built into."""
    ran = []
    monkeypatch.setattr(tasks.subprocess, "run", lambda *a, **k: ran.append(a) or subprocess.CompletedProcess(a, 0))
    if make == "artifacts-like":
        target = tmp_path / "results"
        target.mkdir()
        (target / "summary.csv").write_text("precious\n")
    elif make == "repository":
        target = ROOT
    else:
        target = tmp_path / "a-file"
        target.write_text("x")
    with pytest.raises(Exception) as e:
        tasks.docs(Context(), site_dir=str(target))
    assert "error:" in str(e.value) and "\n" not in str(e.value) and ran == []
    if make == "artifacts-like":
        assert (target / "summary.csv").read_text() == "precious\n"
    fresh = tmp_path / "new-site"
    tasks.docs(Context(), site_dir=str(fresh))
    assert ran and (fresh / tasks.SITE_MARK).is_file()
    (fresh / "index.html").write_text("built")  # the build's output: built into again
    tasks.docs(Context(), site_dir=str(fresh))


def test_clean_artifacts_removes_only_the_repositorys(tmp_path, monkeypatch):
    """Issue 23: `LENET_ARTIFACTS=. invoke clean --artifacts` deleted the whole checkout."""
    elsewhere = tmp_path / "tree"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("keep")
    monkeypatch.setattr(tasks, "ART", elsewhere.resolve())
    removed = []
    monkeypatch.setattr(tasks.shutil, "rmtree", lambda p, **k: removed.append(p))
    with pytest.raises(Exception, match="LENET_ARTIFACTS points at"):
        tasks.clean(Context(), artifacts=True)
    assert removed == [] and (elsewhere / "keep.txt").exists()


@pytest.mark.parametrize("payload", [b"not a zip at all", b"PK\x03\x04 broken zip"])
def test_a_tampered_weights_file_is_one_line_never_loaded_unsafely(tmp_path, payload):
    """Issue 23: a tampered weights.pt gave a traceback in which torch suggests weights_only=False."""
    import torch
    store = Store(tmp_path, task="train")
    store.record("train:x", "k", [store.write("lenet/lenet_plain/weights.pt", {"w": torch.zeros(2)})], {"config": {}})
    assert tasks._weights(Store(tmp_path), "lenet/lenet_plain/weights.pt")["w"].shape == (2,)
    (tmp_path / "lenet/lenet_plain/weights.pt").write_bytes(payload)
    manifest = json.loads((tmp_path / "manifest.json").read_text())  # the manifest re-hashed too
    manifest["artifacts"]["lenet/lenet_plain/weights.pt"]["sha256"] = sha256_file(tmp_path / "lenet/lenet_plain/weights.pt")
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(Exception) as e:
        tasks._weights(Store(tmp_path), "lenet/lenet_plain/weights.pt")
    assert "is not a weights file this pipeline wrote" in str(e.value) and "weights_only" not in str(e.value)
