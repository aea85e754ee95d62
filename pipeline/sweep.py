"""Many training runs on a Dask cluster: the engine behind `invoke seeds` and `invoke ablation`.

A run is named by a spec {preprocess, batch_norm, dropout, augment, seed}; `run_one` trains it
on a worker and returns one flat row of results. The caller passes `on_result`, which saves
each row as it arrives (tasks.py rewrites the CSV atomically), so a killed sweep keeps every
finished run and redoes only the ones in flight.

Why Dask and one worker process per core: a LeNet step is too small for torch's intra-op
threads to scale (two threads give ~1.3x one thread here), so two single-threaded runs side by
side finish more runs per hour than one two-threaded run. The same code sends the runs to an
existing cluster (`--scheduler tcp://host:8786`) when one machine is not enough; there the
workers need the repository on their PYTHONPATH and the CIFAR-10 folder at the same path
(they check its md5s against the client's before training).
"""
import logging
import os
import time
from dataclasses import dataclass

from pipeline.model import dropout_p, spec_name
from pipeline.preprocess import MODES

SPEC_KEYS = ("preprocess", "batch_norm", "dropout", "augment", "seed")


@dataclass(frozen=True)
class SweepConfig:
    """Settings shared by every run of a sweep; asdict() goes into its artifacts."""
    epochs: int = 20          # the homework's 20 epochs
    batch_size: int = 128     # as pipeline.train.TrainConfig
    lr: float = 1e-3
    device: str = "cpu"       # the runs' device on the workers
    threads: int = 1          # torch threads per run (one run per worker process)
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


def _load(ref: DataRef) -> dict:
    """The split arrays, loaded once per worker process, after checking the files' md5s."""
    from pipeline import data
    if _CACHE.get("ref") != ref:
        found = data.verify_batches(ref.batch_dir, allow_unofficial=True)["md5s"]
        if found != ref.md5s:
            raise data.DataError(f"the worker's {ref.batch_dir} is not the data the client checked "
                                 f"(md5s differ); give every worker the same CIFAR-10 copy")
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
    import torch

    from pipeline.train import TrainConfig, fit
    torch.set_num_threads(config.threads)
    variant = spec_name(s["preprocess"], s["batch_norm"], s["dropout"], s["augment"])
    train_config = TrainConfig(variant=variant, epochs=config.epochs, batch_size=config.batch_size,
                               lr=config.lr, seed=s["seed"], device=config.device)
    started = time.perf_counter()
    result = fit(train_config, _inputs(ref, s["preprocess"]), log=None, progress=False,
                 train_eval_size=config.train_eval_size)
    return {**s, **result["final"], "device": result["device"], "threads": config.threads,
            "wall_seconds": time.perf_counter() - started, "worker": f"{os.uname().nodename}:{os.getpid()}",
            "log": result["log"]}


# --- on the client -------------------------------------------------------------------------

def default_jobs() -> int:
    """One worker process per core."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def run_sweep(specs: list[dict], config: SweepConfig, ref: DataRef, on_result, *,
              scheduler: str | None = None, jobs: int | None = None, progress: bool = True,
              log=print) -> dict:
    """Run every spec on Dask and call on_result(row) as each finishes (in completion order).

    scheduler: address of an existing Dask scheduler, or None for a LocalCluster of `jobs`
    single-threaded worker processes. Returns {"runs", "wall_seconds", "workers", "scheduler"}.
    A failed run stops the sweep (the finished ones have been passed to on_result already).
    """
    from dask.distributed import Client, LocalCluster, as_completed
    from tqdm.auto import tqdm

    if not specs:
        return {"runs": 0, "wall_seconds": 0.0, "workers": 0, "scheduler": scheduler or "none"}
    start = time.perf_counter()
    cluster = None
    if scheduler:
        client = Client(scheduler, timeout="30s")
    else:
        jobs = jobs or default_jobs()
        # PYTHONPATH so the spawned workers import `pipeline` from this checkout; one thread each,
        # and no dashboard (nothing listens beyond the loopback scheduler).
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
        # Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in its workers, which makes glibc hand
        # every freed activation buffer back to the kernel: measured 2.2x slower training steps
        # (mostly system time). Unset it; the runs' memory is bounded by design anyway.
        import dask
        dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None})
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(cluster)
    try:
        workers = len(client.scheduler_info()["workers"])
        log(f"sweep: {len(specs)} runs on {workers} worker(s) "
            f"({scheduler or 'LocalCluster'}), {config.threads} torch thread(s) each")
        futures = {client.submit(run_one, s, config, ref, key=f"run-{run_id(s)}-{time.time_ns()}",
                                 pure=False, priority=int(100 * cost(s))): s for s in specs}
        bar = tqdm(total=len(futures), desc="sweep", unit="run", disable=not progress,
                   smoothing=0)  # smoothing 0: the ETA is the average time per run so far
        try:
            for future in as_completed(futures):
                s = futures[future]
                try:
                    row = future.result()
                except Exception as e:
                    raise RuntimeError(f"run {run_id(s)} failed: {type(e).__name__}: {e}") from e
                on_result(row)
                bar.update()
                bar.set_postfix_str(run_id(s), refresh=True)
        finally:
            bar.close()
            for f in futures:
                f.cancel()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return {"runs": len(specs), "wall_seconds": time.perf_counter() - start, "workers": workers,
            "scheduler": scheduler or f"LocalCluster({jobs} processes x 1 thread)"}
