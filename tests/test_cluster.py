"""`--scheduler` on a real Dask cluster (issue #16): a stock `dask scheduler` and two `dask worker`
processes, started outside the repository with PYTHONPATH unset, run a tiny ablation; one worker is
killed mid-sweep and the results must equal the same sweep on a LocalCluster. The fast tests: a
malformed, an unreachable or a worker-less scheduler, and mismatched versions, are one-line
UserErrors within seconds."""
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from invoke import Context
from invoke.exceptions import Exit

import tasks
from pipeline import ablation as AB
from pipeline import sweep as SW
from pipeline.errors import UserError
from tests.test_sweep import by_run, read, workspace  # noqa: F401 (workspace: the sweeps' fixture)

ROOT = Path(__file__).resolve().parents[1]
FAST_SECONDS = 10  # "within a few seconds" on a busy two-core machine (the checks take ~0.1 s alone)
RUNS = len(AB.design(2, augment=False))  # the tiny ablation's runs: the factorial x 2 seeds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ablation_error(tiny_cifar, **flags) -> tuple[str, float]:
    """The one-line message and the seconds until `invoke ablation` gave up."""
    start = time.perf_counter()
    with pytest.raises(Exit) as e:
        tasks.ablation(Context(), seeds=2, epochs=1, augment=False, quiet=True, source=str(tiny_cifar.batch_dir),
                       allow_unofficial_data=True, **flags)
    seconds = time.perf_counter() - start
    assert e.value.code == 1 and "\n" not in e.value.message and e.value.message.startswith("error: ")
    return e.value.message, seconds


# --- fast: the errors a cluster user sees --------------------------------------------------------

@pytest.mark.parametrize("address", ["localhost", "tcp://localhost", "http://127.0.0.1:8786",
                                     "tcp://127.0.0.1:port", "tcp://127.0.0.1:70000"])
def test_malformed_scheduler_address_is_a_one_line_error(workspace, tiny_cifar, address):
    message, seconds = ablation_error(tiny_cifar, scheduler=address)
    assert f"--scheduler {address!r} is not a Dask scheduler address" in message and "tcp://HOST:PORT" in message
    assert seconds < FAST_SECONDS
    assert not (workspace / "artifacts" / "ablation").exists()  # nothing was trained or written


def test_unreachable_scheduler_is_a_one_line_error(workspace, tiny_cifar):
    port = free_port()  # nothing listens there
    message, seconds = ablation_error(tiny_cifar, scheduler=f"tcp://127.0.0.1:{port}")
    assert message == (f"error: cannot reach a Dask scheduler at tcp://127.0.0.1:{port} (Connection refused); "
                       f"start one there with `dask scheduler --port {port}`, or fix --scheduler")
    assert seconds < FAST_SECONDS


def test_check_scheduler_gives_up_after_its_timeout():
    with socket.socket() as s:  # a full accept queue: Linux drops the next SYN, the connect hangs
        s.bind(("127.0.0.1", 0))
        s.listen(0)
        port = s.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)):
            start = time.perf_counter()
            with pytest.raises(UserError) as e:
                SW.check_scheduler(f"tcp://127.0.0.1:{port}", timeout=0.5)
            assert time.perf_counter() - start < 2
    assert str(e.value) == (f"cannot reach a Dask scheduler at tcp://127.0.0.1:{port} (no answer within 0.5 s); "
                            f"start one there with `dask scheduler --port {port}`, or fix --scheduler")


def test_a_server_that_is_not_a_scheduler_is_a_one_line_error(workspace, tiny_cifar, monkeypatch):
    monkeypatch.setattr(SW, "CONNECT_SECONDS", 1)
    with socket.socket() as s:  # accepts connections, never answers
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        message, seconds = ablation_error(tiny_cifar, scheduler=f"tcp://127.0.0.1:{port}")
    assert message == (f"error: tcp://127.0.0.1:{port} accepts connections but no Dask scheduler answered "
                       f"within 1 s; give --scheduler the address `dask scheduler` prints (tcp://HOST:8786 by default)")
    assert seconds < FAST_SECONDS


def test_a_scheduler_without_workers_is_a_one_line_error(workspace, tiny_cifar, monkeypatch):
    from dask.distributed import LocalCluster
    monkeypatch.setattr(SW, "WORKER_WAIT_SECONDS", 1)
    with LocalCluster(n_workers=0, processes=False, protocol="tcp://", host="127.0.0.1",
                      dashboard_address=None) as empty:
        assert SW.check_scheduler(empty.scheduler_address.removeprefix("tcp://")) == empty.scheduler_address
        message, seconds = ablation_error(tiny_cifar, scheduler=empty.scheduler_address)
    assert message == (f"error: no Dask worker joined the scheduler at {empty.scheduler_address} within 1 s; "
                       f"start one per core with `dask worker {empty.scheduler_address} --nthreads 1`")
    assert seconds < FAST_SECONDS
    assert not (workspace / "artifacts" / "ablation" / "runs.csv").exists()


def test_workers_with_other_python_or_torch_versions_are_named():
    mine = {"python": "3.11.7", "torch": "2.4.0+cpu"}
    SW.check_versions(mine, {"tcp://a:1": {"python": "3.11.9", "torch": "2.4.0+cu121"}})  # same code, same maths
    with pytest.raises(UserError) as e:
        SW.check_versions(mine, {"tcp://a:1": {"python": "3.10.4"}, "tcp://b:2": {"torch": "2.3.1"},
                                 "tcp://c:3": {"python": "3.11.2", "torch": "2.4.0"}})
    assert str(e.value) == ("worker tcp://a:1 runs python 3.10.4; tcp://b:2 runs torch 2.3.1, but this client runs "
                            "python 3.11.7, torch 2.4.0+cpu; install the same versions on every worker "
                            "(pip install -r requirements.txt) so the runs compare")


STALE = textwrap.dedent("""
    import pickle, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    import pipeline.sweep as checkout  # another copy of the code, imported before the task arrives
    name, code = checkout.code_archive()
    upload = Path(sys.argv[2]) / name
    upload.write_bytes(code)
    sys.path.append(str(upload))  # where UploadFile puts it (first there; last here, the harder case)
    print(pickle.loads(checkout._shipped(name, "run_id", {"preprocess": "rescale", "batch_norm": True,
                                                         "dropout": False, "augment": False, "seed": 3})))
    print(all(m.__file__.startswith(str(upload)) for n, m in sys.modules.items() if n.split(".")[0] == "pipeline"))
""")


def test_a_task_runs_the_uploaded_code_not_another_copy(tmp_path):
    out = subprocess.run([sys.executable, "-c", STALE, str(ROOT), str(tmp_path)], cwd=tmp_path, capture_output=True,
                         text=True, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["rescale+bn/seed3", "True"]


# --- slow: a real scheduler and two real workers ---------------------------------------------------

DRIVER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from invoke import Context
    import tasks
    from pipeline import contract, stages, sweep
    sweep.default_jobs = lambda: 2  # the LocalCluster's 2 jobs get 1 torch thread each, as the cluster's workers
    art, data, counts, scheduler = sys.argv[1], sys.argv[2], tuple(map(int, sys.argv[3].split(","))), sys.argv[4]
    tasks.ART, tasks.CACHE = Path(art), Path(art) / "cache"
    stages.EXPECTED_COUNTS, stages.VAL_SIZE, contract.REFERENCE["epochs"] = counts, 50, 1
    tasks.ablation(Context(), seeds=2, epochs=1, augment=False, source=data, allow_unofficial_data=True,
                   quiet=True, **({"scheduler": scheduler} if scheduler else {"jobs": 2}))
""")


def stop(p: subprocess.Popen) -> None:
    """Kill a process started with start_new_session=True and everything it started."""
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGKILL)
    p.wait(timeout=30)


def run_driver(art, tiny_cifar, scheduler=""):
    counts = ",".join(map(str, tiny_cifar.counts))
    return subprocess.Popen([sys.executable, "-c", DRIVER, str(art), str(tiny_cifar.batch_dir), counts, scheduler],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


@pytest.fixture
def dask_cluster(tmp_path):
    """The README's commands: `dask scheduler` and two `dask worker ... --nthreads 1` (each a nanny
    and its worker process, in a process group of their own), run in an empty folder with
    PYTHONPATH unset, so nothing of this repository is importable there. Yields (address, workers)."""
    home = tmp_path / "cluster"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    address = f"tcp://127.0.0.1:{free_port()}"
    port = address.rsplit(":", 1)[1]

    logs = []

    def start(*args):
        logs.append(open(home / f"{args[0]}-{len(logs)}.log", "w"))
        return subprocess.Popen([sys.executable, "-m", "dask", *args], cwd=home, env=env, start_new_session=True,
                                stdout=logs[-1], stderr=subprocess.STDOUT)
    scheduler = start("scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard")
    workers = [start("worker", address, "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard")
               for _ in range(2)]
    try:
        yield address, workers
    finally:
        for p in (*workers, scheduler):
            stop(p)
        for f in logs:
            f.close()


@pytest.mark.slow
def test_sweep_on_a_real_cluster_survives_a_killed_worker(tmp_path, tiny_cifar, dask_cluster):
    from dask.distributed import Client
    address, workers = dask_cluster
    local = run_driver(tmp_path / "local", tiny_cifar)  # the reference: a LocalCluster, meanwhile
    p = None
    try:
        with Client(address, timeout="30s") as watch:
            watch.wait_for_workers(2, timeout=60)
            assert set(watch.run(importlib.util.find_spec, "pipeline").values()) == {None}  # no checkout there
            pids = watch.run(os.getpid)
            p = run_driver(tmp_path / "cluster", tiny_cifar, address)
            runs = tmp_path / "cluster" / "ablation" / "runs.csv"
            victim = None
            deadline = time.time() + 300
            while victim is None and time.time() < deadline and p.poll() is None:
                busy = {w: keys for w, keys in watch.processing().items() if keys}
                if runs.exists() and len(read(runs)) >= 2 and busy:  # data loaded, a run in flight
                    victim = sorted(busy)[0]
                    in_flight = busy[victim]
                    group = os.getpgid(pids[victim])  # its nanny's process group: the whole `dask worker`
                    assert group in {w.pid for w in workers}
                    os.killpg(group, signal.SIGKILL)
                    done_at_kill = len(read(runs))
                time.sleep(0.05)
            out, err = p.communicate(timeout=600)
            # the sweep's code left the cluster with it: off the workers' sys.path and the scheduler
            left = watch.run(lambda: [x for x in __import__("sys").path if "lenet-pipeline" in x])
            plugins = watch.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.worker_plugins))
        local_err = local.communicate(timeout=600)[1]
    finally:
        for driver in (local, p):
            if driver is not None:
                stop(driver)
    assert local.returncode == 0, local_err
    assert p.returncode == 0, err
    assert victim is not None, "the sweep finished before a worker could be killed"
    assert done_at_kill < RUNS and in_flight
    assert f"worker {victim} left; Dask redoes its runs on the other workers" in out
    assert left and not any(left.values()), left
    assert not [name for name in plugins if "lenet-pipeline" in name], plugins

    reference = by_run(read(tmp_path / "local" / "ablation" / "runs.csv"))
    assert len(reference) == RUNS
    assert by_run(read(runs)) == reference  # every run once, the killed ones redone, the same numbers

    history = json.loads((tmp_path / "cluster" / "ablation" / "summary.json").read_text())["sweeps"]
    assert len(history) == 1 and history[0]["scheduler"] == address and history[0]["workers"] == 2
    cluster = {w["address"]: w for w in history[0]["cluster"]}
    assert set(cluster) == set(pids) and sum(w["runs"] for w in cluster.values()) == RUNS
    assert all(w["threads"] == 1 and w["torch"] == torch.__version__ for w in cluster.values())
    assert cluster[victim]["runs"] <= done_at_kill
    print(f"\ncluster sweep: {history[0]['wall_seconds']:.1f} s for {RUNS} runs; killed {victim} after "
          f"{done_at_kill} runs with {len(in_flight)} of its runs in flight")

    # A worker whose data is not the client's, or that has none, says so before any run, in one line.
    (survivor,) = set(pids) - {victim}
    spec = AB.design(2, augment=False)[:1]
    for md5s, problem in (({**tiny_cifar.md5s, "test_batch": "0" * 32}, "is not the data the client checked"),
                          ({**tiny_cifar.md5s, "data_batch_6": "0" * 32}, "lacks data_batch_6 here")):
        ref = SW.DataRef(str(tiny_cifar.batch_dir), md5s, tiny_cifar.counts, 50)
        with pytest.raises(UserError) as e:
            SW.run_sweep(spec, SW.SweepConfig(epochs=1), ref, on_result=None, scheduler=address, progress=False)
        assert str(e.value).startswith(f"worker {survivor}: ") and problem in str(e.value) and "\n" not in str(e.value)


def test_every_run_checks_the_versions_of_its_own_worker(monkeypatch):
    """A worker that joins mid-sweep (a replacement) never ran the first check: the run checks it."""
    import distributed
    monkeypatch.setattr(distributed, "get_worker", lambda: type("W", (), {"address": "tcp://10.0.0.9:4000"})())
    with pytest.raises(UserError, match=r"worker tcp://10.0.0.9:4000 runs torch 2\S+, but this client runs python \S+, torch 1.0.0"):
        SW.run_task({}, {}, {}, {"python": ".".join(map(str, sys.version_info[:3])), "torch": "1.0.0"})


@pytest.mark.slow
def test_a_paused_worker_is_a_one_line_error_not_a_five_minute_hang(workspace, tiny_cifar, dask_cluster, monkeypatch):
    from dask.distributed import Client
    address, workers = dask_cluster
    with Client(address, timeout="30s") as watch:
        watch.wait_for_workers(2, timeout=60)
    os.killpg(workers[0].pid, signal.SIGSTOP)  # its nanny and its worker: alive, connected, silent
    monkeypatch.setattr(SW, "CHECK_SECONDS", 3)
    try:
        message, seconds = ablation_error(tiny_cifar, scheduler=address)
    finally:
        os.killpg(workers[0].pid, signal.SIGCONT)
    assert "did not answer the client's check within 3 s (paused, overloaded or on a lost network)" in message
    assert seconds < 60
    assert not (workspace / "artifacts" / "ablation").exists()


@pytest.mark.parametrize("sends", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", b"SSH-2.0-OpenSSH_9.6\r\n", b"\x08" + bytes(7) + b"12345678",
    (2 * 1024 ** 3).to_bytes(8, "little"),  # announces a 2 GB frame: never allocated
], ids=["http", "ssh", "frame-of-garbage", "2GB-frame"])
def test_a_server_that_sends_garbage_is_a_one_line_error(sends):
    import threading
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]

        def serve():
            for _ in range(2):
                try:
                    conn, _ = s.accept()
                except OSError:
                    return
                with conn:
                    conn.sendall(sends)
                    time.sleep(0.5)
        threading.Thread(target=serve, daemon=True).start()
        start = time.perf_counter()
        with pytest.raises(UserError) as e:
            SW.check_scheduler(f"tcp://127.0.0.1:{port}", timeout=2)
    assert str(e.value).startswith(f"tcp://127.0.0.1:{port} answered, but not as a Dask scheduler does "
                                   f"(its first message is not Dask's handshake)")
    assert time.perf_counter() - start < FAST_SECONDS


def test_taking_the_code_off_a_lost_cluster_never_hides_the_sweeps_error():
    class Gone:  # a client whose scheduler went away with the sweep's error
        def nthreads(self):
            raise OSError("Timed out trying to connect")
    logged = []
    SW._forget(Gone(), "lenet-pipeline-0123456789ab.zip", logged.append)
    assert logged == ["sweep: could not take lenet-pipeline-0123456789ab.zip off the cluster (OSError); it stays there"]
