"""Training runs side by side: one child process per run, each with pipeline.train.THREADS threads.

Why processes and not threads: a LeNet step at batch 128 is too small for torch's intra-op
threads to scale (on this 2-core CPU, model 1 trains 1.46x faster with two threads than with
one, model 2 1.64x), so the two reference runs, one per core, finish sooner than the same runs
one after the other with both cores each. And because every run uses the same thread count
however many run at once, a run's numbers do not depend on the schedule or on the machine's
core count (oneDNN splits its reductions by thread, so 1 and 2 threads differ in the last bits);
tests/test_parallel.py checks that runs side by side equal the same runs one at a time, bit for
bit.

A child is `python -m pipeline.parallel JOB RESULT`: it loads and checks the data itself
(pipeline.sweep's loader, the one the Dask workers use), trains with pipeline.train.fit, prints
its epoch lines prefixed with the variant, and pickles fit's result to RESULT (atomically: temp
file, then rename). The parent writes the artifacts, one run at a time, as each finishes, so a
run killed half-way keeps the runs that finished. A spawned interpreter rather than
multiprocessing: `python -m invoke` has no `__main__` guard for spawn to re-import, and forking
a process whose OpenMP pool is running can hang.
"""
import os
import pickle
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def cores() -> int:
    """CPU cores this process may use (the affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def die_with_parent() -> None:
    """In a child (a Popen preexec_fn, or its first line): Linux kills it when the parent dies,
    even by SIGKILL, which no handler sees. Elsewhere a no-op: SIGTERM and Ctrl-C are handled
    by the parent's `finally` blocks (tasks._stopped_cleanly)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError, TypeError):
        pass


def workers_for(runs: int, device) -> int:
    """How many runs train at once: one per THREADS cores on the CPU, one at a time on a GPU
    (a LeNet run keeps a GPU busy enough that two would only queue)."""
    from pipeline.train import THREADS
    if device.type != "cpu":
        return 1
    return max(1, min(runs, cores() // THREADS))


def run_fits(configs: list, data_ref, workers: int, progress: bool = False,
             scratch: Path | None = None, train_eval_size: int = 0):
    """Train every config in its own child process, `workers` at a time; yields
    (config, result) as each run finishes (in finishing order). result is pipeline.train.fit's
    dict plus "peak_rss_mib" (the child's) and "y_test". A diverged run raises FloatingPointError
    with fit's message; a child that dies otherwise raises RuntimeError naming it.

    data_ref: a pipeline.sweep.DataRef (folder, md5s, counts and split) the children load.
    """
    scratch = Path(scratch or tempfile.gettempdir())
    scratch.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH"))))}
    pending, running = list(configs), {}
    try:
        while pending or running:
            while pending and len(running) < workers:
                config = pending.pop(0)
                fd, job = tempfile.mkstemp(prefix=f".{config.variant}-", suffix=".job", dir=scratch)
                with os.fdopen(fd, "wb") as f:
                    pickle.dump({"config": asdict(config), "data": asdict(data_ref), "progress": progress,
                                 "train_eval_size": train_eval_size}, f)
                out = Path(job).with_suffix(".result")
                proc = subprocess.Popen([sys.executable, "-m", "pipeline.parallel", job, str(out)], env=env,
                                        preexec_fn=die_with_parent)
                running[proc] = (config, Path(job), out)
            done = [p for p in running if p.poll() is not None]
            if not done:
                time.sleep(0.1)
            for proc in done:
                config, job, out = running.pop(proc)
                job.unlink(missing_ok=True)
                if proc.returncode != 0 or not out.exists():
                    raise RuntimeError(f"the training process of {config.variant} exited with code "
                                       f"{proc.returncode}; its traceback is above")
                with open(out, "rb") as f:
                    result = pickle.load(f)
                out.unlink()
                if "error" in result:
                    raise FloatingPointError(result["error"])
                yield config, result
    finally:  # an error, Ctrl-C or a consumer that stops early: no child outlives the parent
        for proc, (_, job, out) in running.items():
            proc.kill()
            proc.wait()
            job.unlink(missing_ok=True)
            out.unlink(missing_ok=True)


def _child(job_path: str, out_path: str) -> None:
    """The body of one child: load, train, pickle the result."""
    import resource

    from pipeline.sweep import DataRef, _inputs
    from pipeline.train import TrainConfig, fit
    with open(job_path, "rb") as f:
        job = pickle.load(f)
    config = TrainConfig(**job["config"])
    data = _inputs(DataRef(**job["data"]), config.preprocess)
    try:
        result = fit(config, data, log=lambda line: print(f"{config.variant}: {line}", flush=True),
                     progress=job["progress"], train_eval_size=job["train_eval_size"])
    except FloatingPointError as e:  # the user's to fix (a learning rate too high): the parent says so
        result = {"error": str(e)}
    # Peak resident memory of this process: data + preprocessing + training.
    result.update(peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, y_test=data["y_test"])
    tmp = f"{out_path}.tmp"
    with open(tmp, "wb") as f:
        pickle.dump(result, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, out_path)


if __name__ == "__main__":
    _child(*sys.argv[1:3])
