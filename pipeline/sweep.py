"""Many training runs on a Dask cluster: the engine behind `invoke seeds`, `ablation` and `dropout`.

A run is named by a spec {preprocess, batch_norm, dropout, augment, seed}; `run_one` trains it
on a worker and returns one flat row of results. The caller passes `on_result`, which saves
each row as it arrives (tasks.py rewrites the CSV atomically), so a killed sweep keeps every
finished run and redoes only the ones in flight.

Why Dask and one worker process per core: a LeNet step is too small for torch's intra-op
threads to scale (two threads give ~1.3x one thread here), so two single-threaded runs side by
side finish more runs per hour than one two-threaded run. The same code sends the runs to an
existing cluster (`--scheduler tcp://host:8786`) when one machine is not enough.

The client ships the code; a stock `dask scheduler` and `dask worker` with the requirements
installed are enough. Two parts, because Dask has two readers of a task: the scheduler
unpickles every task it is sent (Dask >= 2023.4), and pickles functions by reference, so a
task `pipeline.sweep.run_one(...)` needs `pipeline` importable on the scheduler (issue #16:
ModuleNotFoundError there; cloudpickle.register_pickle_by_value does not help, Dask pickles the
whole graph with the standard pickle first). So (1) every task is `pickle.loads(blob)`, a
standard-library function and bytes, which the scheduler unpickles without any of our code;
unpickling the blob on the worker calls `_on_worker(...)`, pickled by value by cloudpickle.
(2) The `pipeline` package itself goes to every worker, present and joining later, as a zip
named by its content hash, with Dask's UploadFile worker plugin; `_on_worker` imports
`pipeline.sweep` from exactly that zip, so a worker that ran other code before (an older
upload, a checkout on its PYTHONPATH) forgets it, and the per-process data cache below stays in
one module for the whole sweep. Workers still need the CIFAR-10 folder at the client's path;
they check its md5s against the client's before any run.
"""
import hashlib
import io
import logging
import os
import pickle
import platform
import socket
import sys
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.errors import UserError
from pipeline.model import dropout_p, spec_name
from pipeline.preprocess import MODES
from pipeline.train import THREADS

SPEC_KEYS = ("preprocess", "batch_norm", "dropout", "augment", "seed")
CONNECT_SECONDS = 5       # to reach the scheduler: a scheduler on a LAN answers in milliseconds
WORKER_WAIT_SECONDS = 60  # for a first worker, or a new one after all have left: workers start in ~5 s
POLL_SECONDS = 5          # how often a waiting sweep checks that it still has workers
CHECK_SECONDS = 60        # for every worker to answer the client's check (it imports torch: ~5 s)


@dataclass(frozen=True)
class SweepConfig:
    """Settings shared by every run of a sweep; asdict() goes into its artifacts."""
    epochs: int = 20          # the homework's 20 epochs
    batch_size: int = 128     # as pipeline.train.TrainConfig
    lr: float = 1e-3
    device: str = "cpu"       # the runs' device on the workers
    threads: int = THREADS    # torch threads per run: fit() runs every CPU run with train.THREADS
    train_eval_size: int = 0  # eval-mode accuracy on this many training images per epoch (0: none)


@dataclass(frozen=True)
class DataRef:
    """Where the workers find the data, and what the client saw there (checked on the worker)."""
    batch_dir: str
    md5s: dict
    expected_counts: tuple = (50000, 10000)
    val_size: int = 5000
    split_seed: int = 0


def spec(preprocess: str, batch_norm: bool, dropout, augment: bool, seed: int) -> dict:
    """dropout: a bool (the ablation's factor, p = model.DROPOUT_P when on) or a probability."""
    if preprocess not in MODES:
        raise ValueError(f"unknown preprocessing {preprocess!r}")
    return {"preprocess": preprocess, "batch_norm": bool(batch_norm),
            "dropout": dropout if isinstance(dropout, bool) else dropout_p(dropout),
            "augment": bool(augment), "seed": int(seed)}


def run_id(s: dict) -> str:
    """A readable unique name of one run, e.g. "normalize+bn+dropout/seed2"."""
    return f"{spec_name(s['preprocess'], s['batch_norm'], s['dropout'], s['augment'])}/seed{s['seed']}"


def cost(s: dict) -> float:
    """Rough relative cost of a run (BN and augmentation slow a step); bigger runs go first so
    the last runs to finish are short ones and the workers stay busy."""
    return 1.0 + 0.6 * s["batch_norm"] + 0.2 * s["augment"]


# --- on the worker -------------------------------------------------------------------------

_CACHE: dict = {}  # per worker process: the loaded split and the last preprocessed copy


def _check_data(ref: DataRef) -> None:
    """The worker's copy of the data is the one the client verified (same md5s), or a UserError."""
    from pipeline import data
    missing = [name for name in ref.md5s if not (Path(ref.batch_dir) / name).is_file()]
    if missing:
        raise data.DataError(f"{ref.batch_dir} lacks {', '.join(missing)} here; copy the client's CIFAR-10 "
                             f"folder to that path on every worker, or give --source a path on a shared disk")
    found = data.verify_batches(ref.batch_dir, allow_unofficial=True)["md5s"]
    if found != ref.md5s:
        raise data.DataError(f"the worker's {ref.batch_dir} is not the data the client checked "
                             f"(md5s differ); give every worker the same CIFAR-10 copy")


def _load(ref: DataRef) -> dict:
    """The split arrays, loaded once per worker process, after checking the files' md5s."""
    from pipeline import data
    if _CACHE.get("ref") != ref:
        _check_data(ref)
        arrays, _ = data.split_arrays(*data.load_data(ref.batch_dir, expected_counts=ref.expected_counts),
                                      val_size=ref.val_size, seed=ref.split_seed)
        _CACHE.clear()
        _CACHE.update(ref=ref, raw=arrays)
    return _CACHE["raw"]


def _inputs(ref: DataRef, mode: str) -> dict:
    """Preprocessed arrays for one mode; only the last mode is kept (about 0.8 GB each)."""
    from pipeline.preprocess import preprocess
    raw = _load(ref)
    if _CACHE.get("mode") != mode:
        _CACHE.pop("inputs", None)
        (x_tr, x_va, x_te), _ = preprocess(raw["x_train"], raw["x_val"], raw["x_test"], mode=mode)
        _CACHE.update(mode=mode, inputs={"x_train": x_tr, "y_train": raw["y_train"], "x_val": x_va,
                                         "y_val": raw["y_val"], "x_test": x_te, "y_test": raw["y_test"]})
    return _CACHE["inputs"]


def run_one(s: dict, config: SweepConfig, ref: DataRef) -> dict:
    """Train one spec and return its row: the spec, the final metrics of pipeline.train.fit
    (test_accuracy, best_val_accuracy, train_seconds, ...), device, threads, the worker, and
    "log", the per-epoch rows (CSV writers with fixed columns leave it out)."""
    from pipeline.train import TrainConfig, fit
    variant = spec_name(s["preprocess"], s["batch_norm"], s["dropout"], s["augment"])
    train_config = TrainConfig(variant=variant, epochs=config.epochs, batch_size=config.batch_size,
                               lr=config.lr, seed=s["seed"], device=config.device)
    started = time.perf_counter()
    result = fit(train_config, _inputs(ref, s["preprocess"]), log=None, progress=False,
                 train_eval_size=config.train_eval_size)
    return {**s, **result["final"], "device": result["device"], "threads": config.threads,
            "wall_seconds": time.perf_counter() - started, "worker": f"{os.uname().nodename}:{os.getpid()}",
            "log": result["log"]}


def versions() -> dict:
    """This process's Python and torch, as check_versions compares them (client and workers alike)."""
    import torch
    return {"python": platform.python_version(), "torch": torch.__version__}


def run_task(s: dict, config: dict, ref: dict, client_versions: dict | None = None) -> dict:
    """One run as a Dask task: {"address": the Dask worker's, "row": run_one's row}. Every run
    checks its own worker (versions here, data in _load): a worker that joins mid-sweep, or
    replaces one that died, never ran the client's first check."""
    from distributed import get_worker
    address = get_worker().address
    if client_versions:
        check_versions(client_versions, {address: versions()})
    return {"address": address, "row": run_one(s, SweepConfig(**config), DataRef(**ref))}


def worker_info(ref: dict, device: str) -> dict:
    """What the client checks on every worker before the first run (via Client.run): the
    versions, the devices, and the data (UserError if the device or the data is not there)."""
    import torch

    from pipeline.train import select_device
    _check_data(DataRef(**ref))
    select_device(device)
    return {**versions(), "cuda": torch.cuda.is_available(),
            "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]}


def _on_worker(code_file: str, name: str, *args):
    """pipeline.sweep.<name>(*args), imported from the zip `code_file` that the client uploaded.

    Pickled by value and unpickled before `pipeline` is importable: it uses no global name."""
    import importlib
    import os
    import sys
    path = next((p for p in sys.path if os.path.basename(p) == code_file), None)
    if path is None:
        raise RuntimeError(f"this worker has not received {code_file} (Dask's UploadFile plugin)")
    ours = [m for m in sys.modules if m == "pipeline" or m.startswith("pipeline.")]
    if any(not (getattr(sys.modules[m], "__file__", None) or "").startswith(path + os.sep) for m in ours):
        for module in ours:  # another copy was imported here (an older upload, a checkout): forget it
            del sys.modules[module]
        sys.path.remove(path)
        sys.path.insert(0, path)
        importlib.invalidate_caches()
    return getattr(importlib.import_module("pipeline.sweep"), name)(*args)


# --- on the client -------------------------------------------------------------------------

class _Call:
    """Pickles as the call fn(*args): unpickling it (on the worker) runs it."""

    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _shipped(code_file: str, name: str, *args) -> bytes:
    """The bytes whose pickle.loads runs pipeline.sweep.<name>(*args) on a worker; args are plain
    data (dicts, strings, numbers), so nothing in them needs our code to unpickle."""
    import cloudpickle
    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)  # just for _on_worker; undone at once
    try:
        return cloudpickle.dumps(_Call(_on_worker, (code_file, name, *args)))
    finally:
        cloudpickle.unregister_pickle_by_value(module)


def code_archive() -> tuple[str, bytes]:
    """(file name, bytes) of a zip of the `pipeline` package; the name holds its content hash
    and the zip is reproducible (sorted entries, fixed timestamps)."""
    package = Path(__file__).resolve().parent
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(package.rglob("*.py")):
            info = zipfile.ZipInfo(f"{package.name}/{path.relative_to(package).as_posix()}", (1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, path.read_bytes())
    data = buffer.getvalue()
    return f"lenet-{package.name}-{hashlib.sha256(data).hexdigest()[:12]}.zip", data


GREETING_BYTES = 4096  # a scheduler's first message (its handshake) is ~60 bytes


def _greeting(conn: socket.socket) -> bytes | None:
    """The first message a TCP server sends, read with the standard library: Dask's reader
    allocates whatever length the first 8 bytes announce (a hostile server's '2 GB' grew the
    client to 2.4 GB). b"" when it announces more than GREETING_BYTES, None when it sends nothing
    in time (Dask's identity request then finds out what it is)."""
    import struct

    def read(n):
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                break
            data += chunk
        return data
    try:
        head = read(8)
        if len(head) < 8:
            return b"" if head else None
        (size,) = struct.unpack("<Q", head)
        return read(size) if size <= GREETING_BYTES else b""
    except TimeoutError:
        return None
    except OSError:
        return b""


def check_scheduler(address: str, timeout: float | None = None) -> str:
    """The address as tcp://HOST:PORT if a Dask scheduler answers there, else a one-line
    UserError; takes at most 3 x `timeout` seconds (default CONNECT_SECONDS): a TCP connect, its
    first message (_greeting), then Dask's "identity" request."""
    timeout = CONNECT_SECONDS if timeout is None else timeout
    import asyncio

    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.core import rpc
    from distributed.security import Security
    hint = "give the address `dask scheduler` prints, tcp://HOST:PORT (port 8786 by default)"
    try:
        scheme, location = parse_address(str(address).strip())
        host, port = parse_host_port(location)
    except ValueError:
        raise UserError(f"--scheduler {address!r} is not a Dask scheduler address; {hint}") from None
    if scheme not in ("tcp", "tls") or not host or not 0 < port < 65536:
        raise UserError(f"--scheduler {address!r} is not a Dask scheduler address; {hint}")
    address = f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"
    try:
        conn = socket.create_connection((host, port), timeout=timeout)
    except OSError as e:
        reason = f"no answer within {timeout:g} s" if isinstance(e, TimeoutError) else e.strerror or type(e).__name__
        raise UserError(f"cannot reach a Dask scheduler at {address} ({reason}); start one there with "
                        f"`dask scheduler --port {port}`, or fix --scheduler") from None
    with conn:  # over TLS the handshake is encrypted: Dask's own reader is all there is
        greeting = _greeting(conn) if scheme == "tcp" else None
    if greeting is not None and b"pickle-protocol" not in greeting:
        raise UserError(f"{address} answered, but not as a Dask scheduler does (its first message is not "
                        f"Dask's handshake); give --scheduler the address "
                        f"`dask scheduler` prints (tcp://HOST:8786 by default)")

    async def identity():  # Dask's own Client waits forever on a server that accepts but never answers
        async with rpc(address, connection_args=Security().get_connection_args("client")) as server:
            return await server.identity()
    try:
        kind = asyncio.run(asyncio.wait_for(identity(), timeout)).get("type")
    except Exception:  # noqa: BLE001 - whatever a server that is no scheduler sends, it is not one
        kind = None
    if kind != "Scheduler":
        what = (f"is a Dask {kind.lower()}, not the scheduler" if kind else
                f"accepts connections but no Dask scheduler answered within {timeout:g} s")
        raise UserError(f"{address} {what}; give --scheduler the address `dask scheduler` prints "
                        f"(tcp://HOST:8786 by default)")
    return address


def check_versions(client_versions: dict, workers: dict) -> None:
    """A UserError naming each worker whose Python (major.minor: the code is shipped as pickled
    bytecode) or torch (the public version; the +cpu/+cu build may differ) is not the client's.
    client_versions and workers' values: {"python": "3.11.7", "torch": "2.4.0+cpu"} (either
    key may be missing)."""
    def same(key, a, b):
        if key == "python":
            return a.split(".")[:2] == b.split(".")[:2]
        return a.split("+")[0] == b.split("+")[0]
    wrong = [f"{address} runs {key} {found[key]}" for address, found in sorted(workers.items())
             for key in ("python", "torch") if key in found and key in client_versions
             and not same(key, client_versions[key], found[key])]
    if wrong:
        mine = ", ".join(f"{k} {client_versions[k]}" for k in ("python", "torch") if k in client_versions)
        raise UserError(f"worker {'; '.join(wrong)}, but this client runs {mine}; install the same "
                        f"versions on every worker (pip install -r requirements.txt) so the runs compare")


def _connect(scheduler: str, log):
    """(client, address) for a running scheduler with at least one worker, else a UserError."""
    from dask.distributed import Client
    address = check_scheduler(scheduler)
    try:
        client = Client(address, timeout=f"{CONNECT_SECONDS}s")
    except (OSError, TimeoutError):
        raise UserError(f"the Dask scheduler at {address} answered, then did not take a client within "
                        f"{CONNECT_SECONDS} s; rerun, or restart it") from None
    if not client.nthreads():
        log(f"sweep: waiting up to {WORKER_WAIT_SECONDS} s for a worker to join {address}")
        try:
            client.wait_for_workers(1, timeout=WORKER_WAIT_SECONDS)
        except TimeoutError:
            client.close()
            raise UserError(f"no Dask worker joined the scheduler at {address} within {WORKER_WAIT_SECONDS} s; "
                            f"start one per core with `dask worker {address} --nthreads 1`") from None
    return client, address


def _prepare_workers(client, config: SweepConfig, ref: DataRef) -> tuple[str, dict]:
    """Check versions, ship the code, check devices and data on every worker: (code_file,
    {address: {"threads", "python", "torch", "cuda", "devices"}}), or a UserError."""
    import tempfile

    from distributed.diagnostics.plugin import UploadFile
    mine = versions()
    # Python first, with the standard library alone: the code we ship is bytecode for this Python.
    # Each worker answers within CHECK_SECONDS or is named: Dask's own calls to every worker
    # (get_versions, register_plugin, run) wait for a paused one until the scheduler drops it.
    python = _ask_each(client, pickle.dumps(_Call(platform.python_version, ())))
    _silent(python)
    check_versions(mine, {a: {"python": v} for a, v in python.items() if isinstance(v, str)})
    code_file, code = code_archive()
    with tempfile.TemporaryDirectory() as tmp:  # UploadFile reads a file; the name is what workers see
        (Path(tmp) / code_file).write_bytes(code)
        # Named by the hash: registering the same code again replaces it. Workers that join later
        # (or that a nanny restarts) get it from the scheduler when they connect.
        client.register_plugin(UploadFile(str(Path(tmp) / code_file)), name=code_file)
    found = _silent(_ask_each(client, _shipped(code_file, "worker_info", asdict(ref), config.device)))
    for address, info in sorted(found.items()):
        if isinstance(info, UserError):
            raise UserError(f"worker {address}: {info}")
        if isinstance(info, ModuleNotFoundError):
            raise UserError(f"worker {address} cannot import {info.name}; install the requirements there "
                            f"(pip install -r requirements.txt)")
        if isinstance(info, BaseException):
            raise RuntimeError(f"worker {address} failed its check: {type(info).__name__}: {info}") from info
    check_versions(mine, found)
    threads = client.nthreads()
    return code_file, {a: {"threads": threads.get(a), **info} for a, info in sorted(found.items())}


def _ask_each(client, blob: bytes) -> dict:
    """{address: pickle.loads(blob) run on that worker (or the exception it raised), or None if the
    worker did not answer within CHECK_SECONDS}: Client.run waits for the slowest worker forever."""
    import asyncio

    async def ask(address):
        try:
            found = await asyncio.wait_for(client._run(pickle.loads, blob, workers=[address], on_error="return"),
                                           CHECK_SECONDS)
        except (TimeoutError, asyncio.TimeoutError):
            return address, None
        return address, found.get(address, UserError("it left during the check"))

    addresses = list(client.nthreads())  # here: inside the loop the client's calls are coroutines

    async def ask_all():
        return dict(await asyncio.gather(*(ask(a) for a in addresses)))
    return client.sync(ask_all)


def _silent(answers: dict) -> dict:
    """answers, or a UserError naming the workers that did not answer (or that there were none)."""
    silent = sorted(a for a, answer in answers.items() if answer is None)
    if silent:  # a paused or swamped worker: Dask would wait for it (5 min worker-ttl), then run on none
        raise UserError(f"worker {', '.join(silent)} did not answer the client's check within {CHECK_SECONDS} s "
                        f"(paused, overloaded or on a lost network); restart or stop it, then rerun")
    if not answers:
        raise UserError("every worker left before the client's check; start workers and rerun")
    return answers


def default_jobs() -> int:
    """One worker process per core."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def run_sweep(specs: list[dict], config: SweepConfig, ref: DataRef, on_result, *,
              scheduler: str | None = None, jobs: int | None = None, progress: bool = True,
              log=print) -> dict:
    """Run every spec on Dask and call on_result(row) once per run, as each finishes.

    scheduler: address of a running Dask scheduler, or None for a LocalCluster of `jobs`
    single-threaded worker processes. Either way the code is shipped and every worker checked
    first (versions, device, data). A run whose worker dies is redone on another worker (Dask
    retries it); if every worker leaves and none joins within WORKER_WAIT_SECONDS, a UserError.
    Returns {"runs", "wall_seconds", "workers" (how many at the start), "scheduler",
    "cluster": [{"address", "threads", "python", "torch", "cuda", "devices", "runs"}, ...]}.
    A failed run stops the sweep (the finished ones have been passed to on_result already).
    """
    from dask.distributed import Client, LocalCluster

    if not specs:
        return {"runs": 0, "wall_seconds": 0.0, "workers": 0, "scheduler": scheduler or "none", "cluster": []}
    start = time.perf_counter()
    cluster = None
    if scheduler:
        client, address = _connect(scheduler, log)
    else:
        jobs = jobs or default_jobs()
        # Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in its workers, which makes glibc hand
        # every freed activation buffer back to the kernel: measured 2.2x slower training steps
        # (mostly system time). Unset it; the runs' memory is bounded by design anyway.
        import dask
        dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None})
        # One thread each, and no dashboard (nothing listens beyond the loopback scheduler).
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None, silence_logs=logging.ERROR)
        client, address = Client(cluster), f"LocalCluster({jobs} processes x 1 thread)"
    try:
        code_file, workers = _prepare_workers(client, config, ref)
        try:
            return _sweep(client, address, code_file, workers, specs, config, ref, on_result, progress, log, start)
        finally:
            if cluster is None:  # another's cluster: leave it as it was (a local one just closes)
                _forget(client, code_file, log)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _sweep(client, address, code_file, workers, specs, config, ref, on_result, progress, log, start) -> dict:
    """run_sweep's part on checked workers: submit every spec, save each row as it arrives, follow
    workers leaving and joining. Returns run_sweep's summary."""
    from dask.distributed import wait
    from distributed.scheduler import KilledWorker
    from tqdm.auto import tqdm

    gpus = sorted({name for w in workers.values() for name in w["devices"]}) if config.device != "cpu" else []
    log(f"sweep: {len(specs)} runs on {len(workers)} worker(s) ({address}), {config.threads} torch "
        f"thread(s) each, device {config.device}" + (f" ({', '.join(gpus)})" if gpus else ""))
    tasks = {client.submit(pickle.loads, _shipped(code_file, "run_task", s, asdict(config), asdict(ref), versions()),
                           key=f"run-{run_id(s)}-{time.time_ns()}", pure=False,
                           priority=int(100 * cost(s))): s for s in specs}
    runs_by_worker = {}
    bar = tqdm(total=len(tasks), desc="sweep", unit="run", disable=not progress,
               smoothing=0)  # smoothing 0: the ETA is the average time per run so far
    try:
        pending, present, alone_since = set(tasks), set(workers), None
        while pending:
            try:
                done, pending = wait(pending, timeout=POLL_SECONDS, return_when="FIRST_COMPLETED")
            except TimeoutError:
                done = set()
            now = set(client.nthreads())
            for gone in sorted(present - now):
                log(f"sweep: worker {gone} left; Dask redoes its runs on the other workers")
            for new in sorted(now - present):
                log(f"sweep: worker {new} joined")
            present = now
            alone_since = None if now else alone_since or time.monotonic()
            if alone_since and time.monotonic() - alone_since > WORKER_WAIT_SECONDS:
                raise UserError(f"every worker left {address} and none joined within {WORKER_WAIT_SECONDS} s; "
                                f"{bar.n} of {len(tasks)} runs finished and are saved; start workers and "
                                f"rerun to train the rest")
            for future in done:
                s = tasks[future]
                try:
                    result = future.result()
                except UserError as e:
                    raise UserError(f"run {run_id(s)}: {e}") from None
                except KilledWorker:
                    raise UserError(f"run {run_id(s)} was given up: each worker that ran it died (out of "
                                    f"memory?); {bar.n} finished runs are saved; rerun to retry") from None
                except Exception as e:
                    raise RuntimeError(f"run {run_id(s)} failed: {type(e).__name__}: {e}") from e
                on_result(result["row"])
                runs_by_worker[result["address"]] = runs_by_worker.get(result["address"], 0) + 1
                bar.update()
                bar.set_postfix_str(f"{run_id(s)} on {result['address']}", refresh=True)
    finally:
        bar.close()
        for f in tasks:
            f.cancel()
    empty = {"threads": None, "python": None, "torch": None, "cuda": None, "devices": []}
    return {"runs": len(specs), "wall_seconds": time.perf_counter() - start, "workers": len(workers),
            "scheduler": address,
            "cluster": [{"address": a, **workers.get(a, empty), "runs": runs_by_worker.get(a, 0)}
                        for a in sorted(set(workers) | set(runs_by_worker))]}


def forget_code(code_file: str) -> None:
    """On a worker, after a sweep: this sweep's code leaves sys.path and sys.modules (every sweep
    ships its own; they piled up on workers that live across sweeps)."""
    import importlib
    for path in [p for p in sys.path if os.path.basename(p) == code_file]:
        sys.path.remove(path)
        for module in [m for m in sys.modules if m == "pipeline" or m.startswith("pipeline.")]:
            if (getattr(sys.modules[module], "__file__", None) or "").startswith(path + os.sep):
                del sys.modules[module]
    importlib.invalidate_caches()


def _forget(client, code_file: str, log) -> None:
    """Take this sweep's code off a cluster that outlives it: off every worker's sys.path, and its
    plugin off the scheduler (which would upload it to every worker that joins later). A worker
    that does not answer within CHECK_SECONDS is named and left as it is."""
    # In a `finally`: whatever goes wrong here (a scheduler gone with the sweep's error) is logged,
    # never raised over the error that ended the sweep. The runs are saved; leftovers are untidy.
    try:
        silent = sorted(a for a, answer in _ask_each(client, _shipped(code_file, "forget_code", code_file)).items()
                        if answer is None)
        client.sync(client._unregister_worker_plugin, name=code_file, nanny=False, callback_timeout=CHECK_SECONDS)
    except Exception as e:  # noqa: BLE001
        log(f"sweep: could not take {code_file} off the cluster ({type(e).__name__}); it stays there")
        return
    if silent:
        log(f"sweep: worker {', '.join(silent)} did not answer; {code_file} stays on its sys.path")
