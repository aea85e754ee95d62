"""Hostile input, round three (issue 23), the cases without a home in another test module: a flag
that changes a sweep's design, signals, the manifest's lock, the published tree's entries."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import tasks
from pipeline.store import Store

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def published(tmp_path, monkeypatch):
    """A store that publishes the three sweeps with the committed designs."""
    monkeypatch.setattr(tasks, "ART", tmp_path / "artifacts")
    monkeypatch.setattr(tasks, "RUNS", tmp_path / "runs")
    for task, rel, design in (("seeds", "lenet/seeds.json", {"seeds": 5}),
                              ("ablation", "ablation/summary.json", {"seeds": 3, "augment": True}),
                              ("dropout", "cs182/dropout/summary.json", {"seeds": 3, "p_values": [0.0, 0.25, 0.5, 0.75]})):
        store = Store(tmp_path / "artifacts", task=task)
        (store.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (store.root / rel).write_text("{}")
        store.record(task, "k", [store.root / rel], {"config": {**design, "epochs": 20}})
    return Store(tmp_path / "artifacts")


@pytest.mark.parametrize("task, rel, design, folder", [
    ("seeds", "lenet/seeds.json", {"seeds": 5}, None),
    ("seeds", "lenet/seeds.json", {"seeds": 8}, "seeds-seeds8"),
    ("ablation", "ablation/summary.json", {"seeds": 3, "augment": True}, None),
    ("ablation", "ablation/summary.json", {"seeds": 3, "augment": False}, "ablation-noaugment"),
    ("dropout", "cs182/dropout/summary.json", {"seeds": 3, "p_values": [0.0, 0.25, 0.5, 0.75]}, None),
    ("dropout", "cs182/dropout/summary.json", {"seeds": 3, "p_values": [0.75]}, "dropout-p0.75"),
    ("dropout", "cs182/dropout/summary.json", {"seeds": 2, "p_values": [0.0, 0.5]}, "dropout-seeds2-p0.0_0.5"),
])
def test_a_design_flag_never_rewrites_the_published_sweep(published, task, rel, design, folder):
    assert tasks._design_folder(task, published, rel, design) == folder


def test_nothing_published_yet_publishes(tmp_path, monkeypatch):
    monkeypatch.setattr(tasks, "ART", tmp_path / "artifacts")
    assert tasks._design_folder("dropout", Store(tmp_path / "artifacts"), "cs182/dropout/summary.json",
                                {"seeds": 2, "p_values": [0.75]}) is None


def _children(pid: int) -> list[int]:
    """Live processes whose parent is pid (from /proc; zombies count as gone)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


TRAIN = textwrap.dedent("""
    import sys
    from pathlib import Path
    from invoke import Context
    from invoke.exceptions import Exit
    import tasks
    from pipeline import stages
    root, data, counts = Path(sys.argv[1]), sys.argv[2], tuple(map(int, sys.argv[3].split(",")))
    tasks.JOBS, tasks.ART, tasks.CACHE, tasks.RUNS = root / "build", root / "artifacts", root / "data", root / "runs"
    stages.EXPECTED_COUNTS, stages.VAL_SIZE = counts, 50
    try:
        tasks.train(Context(), epochs=500, source=data, allow_unofficial_data=True, quiet=True)
    except Exit as e:  # as invoke's Program ends: the message, the code
        sys.exit(print(e.message, file=sys.stderr) or e.code)
""")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_a_terminated_train_stops_its_children_and_removes_their_files(tmp_path, tiny_cifar, signame):
    counts = ",".join(map(str, tiny_cifar.counts))
    p = subprocess.Popen([sys.executable, "-c", TRAIN, str(tmp_path), str(tiny_cifar.batch_dir), counts],
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    deadline, children = time.time() + 120, []
    while time.time() < deadline and p.poll() is None and not (
            children and list((tmp_path / "build").glob("*.job"))):
        children = _children(p.pid)
        time.sleep(0.1)
    assert p.poll() is None and children, f"training did not start: {p.stderr.read() if p.poll() is not None else ''}"
    p.send_signal(getattr(signal, signame))
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143 and f"stopped by {signame}; finished work is kept" in err, err
    time.sleep(0.5)
    assert not [c for c in children if _alive(c)], "a training child outlived invoke train"
    assert not list((tmp_path / "build").glob("*.job")) + list((tmp_path / "build").glob("*.result"))


def test_children_die_with_their_parent_even_by_sigkill(tmp_path):
    """The kernel's half (PR_SET_PDEATHSIG): a child outlives no parent, even one killed by SIGKILL."""
    code = ("import subprocess, sys, time\nfrom pipeline.parallel import die_with_parent\n"
            "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'], preexec_fn=die_with_parent)\n"
            "print(c.pid, flush=True)\ntime.sleep(300)")
    p = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                         stdout=subprocess.PIPE, text=True)
    child = int(p.stdout.readline())
    assert _alive(child)
    p.kill()
    p.wait(timeout=10)
    deadline = time.time() + 10
    while time.time() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child)


@pytest.mark.slow
def test_invoke_serve_serves_the_site(tmp_path):
    """`mkdocs serve` sets site_url to its preview address; the hook's one-address check once
    aborted every serve build."""
    import socket
    import urllib.request
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = subprocess.Popen([sys.executable, "-m", "invoke", "serve", "--port", str(port)], cwd=ROOT,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline, page = time.time() + 300, None
        while time.time() < deadline and p.poll() is None and page is None:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
            except OSError:
                time.sleep(1)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
        err = p.communicate(timeout=60)[1]
    assert page and "LeNet" in page, err[-2000:]


def test_a_run_waiting_for_the_manifest_lock_says_so_then_records(tmp_path, capsys):
    import threading

    from filelock import FileLock

    from pipeline import store as ST
    other = FileLock(str(tmp_path / ST.LOCK), thread_local=False)  # another run, recording
    other.acquire()
    threading.Timer(2, other.release).start()
    store = Store(tmp_path, task="seeds")
    (tmp_path / "lenet").mkdir()
    (tmp_path / "lenet" / "seeds.json").write_text("{}")
    store.record("seeds", "k", [tmp_path / "lenet" / "seeds.json"], {"config": {}})
    assert "seeds: waiting for another run to finish recording in" in capsys.readouterr().err
    assert "lenet/seeds.json" in json.loads((tmp_path / "manifest.json").read_text())["artifacts"]


def test_a_lock_held_past_the_limit_is_a_one_line_error(tmp_path, monkeypatch):
    from filelock import FileLock

    from pipeline import store as ST
    monkeypatch.setattr(ST, "LOCK_SECONDS", 1)
    with FileLock(str(tmp_path / ST.LOCK)):
        with pytest.raises(ST.StoreError, match=r"another run has held .*\.manifest\.lock for 0 min"):
            with Store(tmp_path, task="seeds").locked():
                pass


def _forged(root: Path, rel: str, data: bytes | None = None, target: Path | None = None) -> Store:
    """A store whose manifest vouches for rel (right sha256): a file, or a symlink to target."""
    from pipeline.store import json_bytes, sha256_file
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if target is not None:
        path.symlink_to(target)
    else:
        path.write_bytes(data)
    manifest = {"artifacts": {rel: {"task": "data", "sha256": sha256_file(path), "config": {}}}, "tasks": {}}
    (root / "manifest.json").write_bytes(json_bytes(manifest))
    return Store(root)


def test_an_entry_the_contract_does_not_list_is_never_read(tmp_path):
    from pipeline.store import StoreError
    store = _forged(tmp_path, "secrets.csv", b"a,b\n1,2\n")
    with pytest.raises(StoreError, match="secrets.csv is not an artifact the contract lists"):
        store.path("secrets.csv")


@pytest.mark.parametrize("rel", ["lenet/summary.csv", "data/dataset.json"])
def test_a_symlink_out_of_the_tree_is_never_read(tmp_path, rel):
    from pipeline.store import StoreError
    outside = tmp_path / "outside.txt"
    outside.write_text("variant,seed\nprivate,0\n")
    store = _forged(tmp_path / "artifacts", rel, target=outside)
    with pytest.raises(StoreError, match="is a symlink"):
        store.read_text(rel)


def test_a_huge_artifact_or_manifest_is_refused_before_it_is_read(tmp_path, monkeypatch):
    from pipeline import store as ST
    monkeypatch.setattr(ST, "MAX_BYTES", 2 ** 20)  # the same rule, at 1 MiB: a smaller file to forge
    store = _forged(tmp_path, "answers.json", b'{"x": "' + b"a" * 2 ** 20 + b'"}')
    with pytest.raises(ST.StoreError, match=r"answers.json is 1 MiB; no artifact of this pipeline is over 1 MiB"):
        store.read_json("answers.json")
    (tmp_path / "manifest.json").write_bytes(b" " * (2 ** 20 + 1) + b"{}")
    with pytest.raises(ST.StoreError, match=r"manifest.json is 1 MiB"):
        Store(tmp_path).manifest()


def test_torchs_dependencies_are_hash_checked_before_torch_installs():
    """torch is out of the lock (its wheels' hashes differ by machine); its dependencies are in it,
    and CI installs the lock first, so installing torch downloads nothing unchecked."""
    import importlib.metadata
    import re
    lock = (ROOT / "requirements.lock").read_text()
    pinned = {m.group(1).lower(): m.group(2) for m in re.finditer(r"^([A-Za-z0-9_.-]+)==(\S+) \\\n\s+--hash=sha256:",
                                                                    lock, re.M)}
    needs = [re.split(r"[<>=!~; \[]", r, maxsplit=1)[0].lower().replace("_", "-")
             for r in importlib.metadata.requires("torch") or [] if "extra ==" not in r]
    needs = [n for n in needs if not n.startswith(("nvidia", "triton"))]
    assert {"networkx", "setuptools", "sympy"} <= set(needs)
    assert not [n for n in needs if n not in pinned], "torch needs packages the lock does not hash"
    for name in needs:  # what is installed is what the lock pins
        assert importlib.metadata.version(name) == pinned[name], name
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.index("--require-hashes -r requirements.lock") < ci.index("grep '^torch=='")


def test_the_site_build_imports_no_torch():
    """Issue 24: building the site reads artifacts; importing torch cost every build ~3.6 s."""
    code = ("import sys; sys.path.insert(0, 'hooks'); import artifacts, maths, notebook_css; "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_docs_skips_a_site_built_from_the_same_files_and_rebuilds_on_any_change(tmp_path, monkeypatch, capsys):
    """Issue 24's fixed costs: `invoke all` with nothing to redo rebuilt the site (~11 s) every time."""
    from invoke import Context
    site = tmp_path / "site"
    assert tasks.docs(Context(), site_dir=str(site)) is True
    assert tasks.docs(Context(), site_dir=str(site)) is False
    assert "is up to date (built from these very files)" in capsys.readouterr().out
    monkeypatch.setattr(tasks, "_site_key", lambda strict: "another")  # any input changed
    assert tasks.docs(Context(), site_dir=str(site)) is True
    assert (site / tasks.SITE_MARK).read_text().split()[-1] == "another"
    assert tasks.docs(Context(), site_dir=str(site), force=True) is True


def test_the_site_key_follows_every_input(tmp_path, monkeypatch):
    key = tasks._site_key(True)
    assert key and key == tasks._site_key(True) and key != tasks._site_key(False)
    outside = tmp_path / "artifacts"  # $LENET_ARTIFACTS outside the checkout: its files count too
    outside.mkdir()
    (outside / "manifest.json").write_text("{}")
    monkeypatch.setattr(tasks, "ART", outside)
    other = tasks._site_key(True)
    (outside / "manifest.json").write_text('{"artifacts": {}}')
    assert len({key, other, tasks._site_key(True)}) == 3
