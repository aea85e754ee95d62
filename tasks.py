"""Invoke tasks: the pipeline's stages, run in order by `invoke all`.

Each task parses its flags, calls one function of pipeline/stages.py (or the module it names)
and writes what that returns through the store (pipeline/store.py), which writes atomically,
follows the artifacts contract (pipeline/contract.py) and records provenance in
artifacts/manifest.json. A stage whose key (code contents, config, data md5s) is unchanged
skips its work and writes nothing; `--force` redoes it. Runs with settings other than the
reference go to build/runs/, never over the committed reference. Errors the user can cause print
one line and exit non-zero; bugs keep their traceback.
"""
import contextlib
import functools
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

from invoke import task
from invoke.exceptions import Exit

ROOT = Path(__file__).resolve().parent
ART = Path(os.environ["LENET_ARTIFACTS"]).resolve() if os.environ.get("LENET_ARTIFACTS") else ROOT / "artifacts"
CACHE = ROOT / "data"
RUNS = ROOT / "build" / "runs"       # runs with other settings than the reference (git-ignored)
JOBS = ROOT / "build"              # the training children's job and result files (removed as each ends)
SCRATCH = ROOT / "build" / "verify"  # `invoke verify` retrains the reference here
REJECTED = ROOT / "build" / "rejected"  # sweep files with bad lines, kept as they were
DATA_HELP = {
    "source": "CIFAR-10 archive (cifar-10-python.tar.gz) or extracted cifar-10-batches-py/ "
              "folder; default: $CIFAR10_PATH, then the data/ cache, then download",
    "allow_unofficial_data": "accept batch files whose md5 differs from the official CIFAR-10 "
                             "(e.g. the rebuilt copy); the run and every page say so "
                             "(or set CIFAR10_ALLOW_UNOFFICIAL=1)",
}
FORCE_HELP = {"force": "redo even if code, config and data are unchanged (replaces the reference)"}
DEVICE_HELP = {"device": "auto (cuda, then mps, then cpu), cpu, cuda or mps"}


def user_errors(fn):
    """A UserError, or an OS error on a file (read-only, disk full, permission), becomes one line
    on stderr and exit code 1; bugs keep their traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from pipeline.errors import UserError
        try:
            with _stopped_cleanly():
                return fn(*args, **kwargs)
        except UserError as e:
            raise Exit(f"error: {e}", code=1)
        except OSError as e:
            if e.errno is None:
                raise
            where = f"cannot use {e.filename}" if e.filename else "a file operation failed"
            raise Exit(f"error: {where}: {e.strerror}; check the path's permissions and free space, then "
                       "rerun (finished work is kept).", code=1)
    return wrapper


class Stopped(Exception):
    """SIGTERM or SIGHUP arrived (`timeout`, CI cancelling, a closed terminal)."""


@contextlib.contextmanager
def _stopped_cleanly():
    """SIGTERM and SIGHUP unwind like Ctrl-C does: by default they end Python at once, skipping the
    `finally` blocks that stop the training children and the MkDocs build and remove their job
    files, so those ran on, re-parented to PID 1. Handlers only in the main thread (Python's rule);
    the previous ones come back after the task."""
    import signal
    import threading
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise Stopped(signal.Signals(signum).name)
    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    except Stopped as e:  # the children are stopped by now (the finally blocks ran)
        raise Exit(f"stopped by {e}; finished work is kept", code=143) from None
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _rel(path: Path) -> str:
    path = Path(path).resolve()
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


def _store(task_name: str, root: Path | None = None):
    """The store a task writes through. Temporary files of writes killed over ten minutes ago are
    removed first: a failed or killed run leaves no litter past the next run."""
    from pipeline.store import Store, clean_litter
    root = Path(root or ART)
    if task_name and root.is_dir():
        clean_litter(root, older_than=600)
    return Store(root, task=task_name, repo=ROOT)


# Upper bounds: a value past these is a typo or an attack (`--seeds 1000000` grew the client to
# 9.8 GB before a run started), refused in one line before any work.
MAX_EPOCHS, MAX_SEEDS, MAX_BATCH = 1000, 100, 50000
MAX_JOBS_PER_CORE = 4  # local Dask workers: each runs one single-threaded run; more only contend


def _number(value, kind, flag: str, low=None, high=None):
    """A flag converted to int/float and checked against its lower bound, or a one-line error."""
    import math

    from pipeline.errors import UserError
    if value is None:
        return None
    try:
        x = kind(value)
    except (TypeError, ValueError):
        raise UserError(f"{flag} must be a{'n integer' if kind is int else ' number'}, got {value!r}") from None
    if kind is float and not math.isfinite(x):
        raise UserError(f"{flag} must be a finite number, got {value!r}")
    if low is not None and x < low:
        raise UserError(f"{flag} must be at least {low}, got {value!r}")
    if high is not None and x > high:
        raise UserError(f"{flag} must be at most {high}, got {value!r}")
    return x


def _default(value, default):
    """Numeric flags default to None, so invoke hands over the text as typed and a bad value is our
    one-line error (with a number default, invoke's own int() would raise a traceback)."""
    return default if value is None else value


def _data_folder(info: dict, force: bool) -> str | None:
    """None when the data is the reference's (the md5s artifacts/data/dataset.json records, or no
    reference yet); else the build/runs/ folder for runs on this other copy. `--force` replaces
    the reference with it instead."""
    import json
    recorded = ART / "data" / "dataset.json"
    try:
        md5s = json.loads(recorded.read_text())["md5s"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if force or md5s == info["md5s"]:
        return None
    return f"data-{info['md5s']['test_batch'][:8]}"


def _samples_in(npz: Path) -> int | None:
    import numpy as np
    try:
        with np.load(npz) as f:
            return len(f["labels"])
    except (OSError, ValueError, KeyError):
        return None


def _skip(name: str) -> bool:
    print(f"{name}: up to date (use --force to redo)")
    return False


def _provenance(config, info=None, seeds=None, device=None) -> dict:
    from pipeline.stages import data_provenance
    return {"config": config, "seeds": seeds or {}, "device": device,
            "data": data_provenance(info) if info else None}


# --- data ----------------------------------------------------------------------------------

@task(help={**DATA_HELP, **FORCE_HELP, "samples": "how many test images to keep for the sample grid (default 40)"})
@user_errors
def data(c, source=None, allow_unofficial_data=False, samples=None, force=False):
    """Locate, download if needed, verify and load CIFAR-10; write artifacts/data/."""
    import numpy as np

    from pipeline import data as D
    from pipeline import stages as S
    from pipeline.store import atomic_path, stage_key
    samples = _number(40 if samples is None else samples, int, "--samples", low=1, high=10000)
    batch_dir, info = D.prepare(source, allow_unofficial_data, cache_dir=CACHE)
    other = _data_folder(info, force)
    if other:
        print(f"data: this copy is not the reference's data (other md5s); writing to {_rel(RUNS / other)}, "
              "artifacts/ is untouched (--force makes it the reference)")
    store, npz = _store("data", RUNS / other if other else None), CACHE / S.SAMPLES
    # samples shapes only the local cache, never the artifact: not part of the key
    key = stage_key(S.data_key_config(info), S.code_files("data"), repo=ROOT)
    up_to_date = not force and store.is_up_to_date("data", key)
    cached = npz.exists() and _samples_in(npz) == samples
    if up_to_date and cached:
        return _skip("data")
    arrays, info = S.load_dataset(source, allow_unofficial_data, CACHE)
    with atomic_path(npz) as tmp, open(tmp, "wb") as f:  # data, not an artifact: never committed
        np.savez_compressed(f, images=arrays["x_test"][:samples], labels=arrays["y_test"][:samples],
                            indices=np.arange(samples))
    if up_to_date:  # a fresh clone: only the local cache was missing; the artifact stays as it is
        print(f"data: up to date; wrote the sample cache {_rel(npz)}")
        return False
    paths = store.write_all({"data/dataset.json": S.dataset_json(arrays, info)})
    store.record("data", key, paths, _provenance({"samples": samples}, info,
                                                 {"split_seed": S.SPLIT_SEED}))
    print(f"data: {len(arrays['y_train'])} / {len(arrays['y_val'])} / {len(arrays['y_test'])} images, "
          f"official={info['official']} -> {_rel(paths[0])}")
    return store.root  # where it wrote: `invoke all` records its timings there


# --- train ---------------------------------------------------------------------------------

@task(help={"variant": "lenet_bn_dropout, lenet_plain, or all",
            "epochs": "training epochs (default 20, as in the homework)",
            "batch_size": "training batch size (default: TrainConfig's)",
            "lr": "Adam learning rate (default: TrainConfig's)",
            "seed": "seed for weight init, dropout and batch order",
            "smoke": "tiny subset, one epoch (written to build/runs/smoke/)",
            "quiet": "no progress bar", "root": "write to this folder instead (invoke verify uses it)",
            **DEVICE_HELP, **DATA_HELP, **FORCE_HELP})
@user_errors
def train(c, variant="all", epochs=None, batch_size=None, lr=None, seed=None, device="auto",
          smoke=False, quiet=False, source=None, allow_unofficial_data=False, force=False, root=None):
    """Train the LeNet variants: logs, metrics, weights, confusion matrices, predictions. Settings
    other than the reference's go to build/runs/<what differs>/, never over artifacts/."""
    from pipeline import contract
    from pipeline import data as D
    from pipeline import stages as S
    from pipeline.model import VARIANTS
    from pipeline.store import stage_key
    from pipeline.train import TrainConfig, select_device
    overrides = {k: v for k, v in {"batch_size": _number(batch_size, int, "--batch-size", 1, MAX_BATCH),
                                   "lr": _number(lr, float, "--lr")}.items() if v is not None}
    if overrides.get("lr", 1) <= 0:
        raise Exit(f"error: --lr must be positive, got {lr}", code=1)
    epochs = _number(_default(epochs, contract.REFERENCE["epochs"]), int, "--epochs", 1, MAX_EPOCHS)
    seed = _number(_default(seed, 0), int, "--seed", 0, 2 ** 63 - 1)
    from pipeline.errors import UserError
    if variant != "all" and variant not in VARIANTS:
        raise UserError(f"unknown variant {variant!r}; choose {', '.join(VARIANTS)} or all")
    names = list(VARIANTS) if variant == "all" else [variant]
    select_device(device)  # fail on a bad device before loading 180 MB of data
    configs = [replace(TrainConfig(variant=v, epochs=epochs, seed=seed, device=device, smoke=smoke),
                       **overrides) for v in names]
    batch_dir, info = D.prepare(source, allow_unofficial_data, cache_dir=CACHE)
    other = _data_folder(info, force)
    folder = "-".join(filter(None, (other, S.run_folder(S.settings_of(configs[0])))))
    if root is not None and Path(root).resolve() == ART.resolve():
        raise UserError("--root is for a scratch folder, not artifacts/: the reference is written by "
                        "`invoke train` with the reference settings (and --force to redo it)")
    root = Path(root) if root else RUNS / folder if folder else ART
    if folder and root != ART:
        print(f"train: settings or data differ from the reference ({folder}); writing to {_rel(root)}, "
              "artifacts/ is untouched")
    store = _store("train", root)
    from pipeline.store import StoreError
    try:  # the arrays' digest as `invoke data` recorded it: an up-to-date train never loads the data
        digest = S.recorded_digest(_store(None).read_json("data/dataset.json"), info)
    except StoreError:
        digest = None
    raw = None if digest else S.load_dataset(source, allow_unofficial_data, CACHE)[0]
    digest = digest or S.arrays_digest(raw)
    keys = {cf.variant: stage_key(S.train_key_config(cf, info, digest), S.code_files("train"), repo=ROOT)
            for cf in configs}
    todo = [cf for cf in configs if force or not store.is_up_to_date(f"train:{cf.variant}", keys[cf.variant])]
    for cf in configs:
        if cf not in todo:
            _skip(f"train:{cf.variant}")
    from pipeline import parallel
    from pipeline.sweep import DataRef
    ref = DataRef(str(batch_dir), info["md5s"], tuple(S.EXPECTED_COUNTS), S.VAL_SIZE, S.SPLIT_SEED)
    workers = parallel.workers_for(len(todo), select_device(device))
    for config in todo:
        print(f"train:{config.variant}: {config.preprocess} inputs, {1 if config.smoke else config.epochs} "
              f"epochs, batch {config.batch_size}, lr {config.lr}, seed {config.seed}")
    if len(todo) > 1:
        print(f"train: {len(todo)} runs, {workers} at a time, one process each")
    runs = parallel.run_fits(todo, ref, workers, progress=not quiet and workers == 1, scratch=JOBS)
    try:  # each run's files are written as soon as it finishes
        for config, result in runs:
            out = S.train_outputs(config, result, info, D.CLASSES)
            provenance = _provenance(asdict(config), info, {"seed": config.seed, "split_seed": S.SPLIT_SEED},
                                     result["device"])
            paths = store.write_all(out)
            # summary.csv holds every variant's row: re-read, merged and recorded under the manifest
            # lock, so two variants trained at once both keep theirs
            with store.locked():
                summary = store.previous_rows("lenet/summary.csv", lenient=force)
                paths.append(store.write("lenet/summary.csv", S.merge_rows(summary, S.summary_row(config, result, info))))
                store.record(f"train:{config.variant}", keys[config.variant], paths, provenance)
            f = result["final"]
            print(f"train:{config.variant}: test accuracy {f['test_accuracy']:.2%}, best val "
                  f"{f['best_val_accuracy']:.2%}, {f['train_seconds']:.1f} s, "
                  f"{f['images_per_second']:.0f} img/s -> {_rel(root / 'lenet' / config.variant)}")
    except FloatingPointError as e:  # a learning rate too high diverges: the user's to fix
        raise UserError(f"{e}: training diverged; lower --lr (the reference is {contract.REFERENCE['lr']})") from None
    return root if todo else False  # where it wrote: `invoke all` records its timings there


# --- seeds, ablation, dropout: many runs on Dask ---------------------------------------------

SWEEP_HELP = {
    "epochs": "training epochs per run (default 20, as in the homework; other values write to build/runs/)",
    "jobs": "worker processes of the local Dask cluster (default: one per core)",
    "scheduler": "address of a running Dask scheduler (tcp://HOST:8786) instead of a local cluster; "
                 "the code is sent to its workers, which need the requirements and the data at the same path",
    "quiet": "no progress bar",
    "device": "cpu (default), cuda or cuda:N: the device every run uses on its worker (one worker per GPU)",
}


def _design_folder(task_name: str, base, summary_rel: str, design: dict) -> str | None:
    """None when `design` (the sweep's flags: seeds, p values, augment) is the one `base` already
    publishes in summary_rel, or base publishes none yet; else the build/runs/ folder this other
    design goes to, named by what it asks for. A flag never rewrites a published analysis with
    sentences about another design (`--probs 0.75` once restated the p = 0 result as p = 0.75's)."""
    entry = base.manifest()["artifacts"].get(summary_rel)  # a corrupt manifest is the store's one-line error
    recorded = entry.get("config") if isinstance(entry, dict) else None
    if not isinstance(recorded, dict):  # nothing published yet: this run publishes
        return None
    differ = {k: v for k, v in design.items() if k in recorded and json.loads(json.dumps(v)) != recorded[k]}
    if not differ:
        return None

    def part(k, v):
        if v is True or v is False:
            return k if v else f"no{k}"
        if isinstance(v, (list, tuple)):
            return "p" + "_".join(f"{x!r}" for x in v)
        return f"{k}{v}"
    epochs = "" if base.root == ART else f"{base.root.name}-"
    return f"{epochs}{task_name}-" + "-".join(part(k, v) for k, v in differ.items())


def _sweep_setup(task_name, seeds, epochs, jobs, source, allow_unofficial_data, train_eval_size=0,
                 scheduler=None, device="cpu", design=None, summary_rel=None):
    """Checked flags, the verified data, the stores and what the workers need:
    (n, jobs, config, ref, info, store, base). base is artifacts/ for the reference's epochs, else
    build/runs/epochsN/; store is base, or a build/runs/ folder when the sweep's design (seeds and
    `design`) differs from the one base publishes (_design_folder). A --scheduler must be reachable
    (a few seconds at most) before anything else is done."""
    from pipeline import contract
    from pipeline import data as D
    from pipeline import stages as S
    from pipeline.errors import UserError
    from pipeline.sweep import DataRef, SweepConfig, check_scheduler
    from pipeline.train import DEVICES
    from pipeline.parallel import cores
    n = _number(seeds, int, "--seeds", 2, MAX_SEEDS)  # the analyses need at least two seeds
    epochs = _number(epochs, int, "--epochs", 1, MAX_EPOCHS)
    jobs = _number(jobs, int, "--jobs", 1, MAX_JOBS_PER_CORE * cores())
    if device not in DEVICES and not str(device).startswith("cuda:"):
        raise UserError(f"--device must be one of {', '.join(DEVICES)}, got {device!r}")
    if scheduler:
        check_scheduler(scheduler)
    batch_dir, info = D.prepare(source, allow_unofficial_data, cache_dir=CACHE)
    # One worker process per core; every run has pipeline.train.THREADS threads (fit sets them), so
    # a run's numbers do not depend on --jobs: fewer jobs leave cores idle rather than change bits.
    config = SweepConfig(epochs=epochs, device=device, train_eval_size=train_eval_size)
    ref = DataRef(str(batch_dir), info["md5s"], tuple(S.EXPECTED_COUNTS), S.VAL_SIZE, S.SPLIT_SEED)
    root = ART if epochs == contract.REFERENCE["epochs"] else RUNS / f"epochs{epochs}"
    if root != ART:
        print(f"{task_name}: {epochs} epochs is not the reference's; writing to {_rel(root)}")
    base = _store(task_name, root)
    other = _design_folder(task_name, base, summary_rel, {"seeds": n, **(design or {})}) if summary_rel else None
    if other:
        print(f"{task_name}: {_rel(base.root / summary_rel)} publishes another design; this one goes to "
              f"{_rel(RUNS / other)} (published results are never rewritten by a flag)")
        return n, jobs, config, ref, info, _store(task_name, RUNS / other), base
    return n, jobs, config, ref, info, base, base


def _sweep_provenance(config_, n, config, info):
    from pipeline import stages as S
    return _provenance(config_, info, {"seeds": list(range(n)), "split_seed": S.SPLIT_SEED},
                       f"cpu ({config.threads} thread(s) per run)")


def _sweep_rows(store, rel, problems_of=None):
    """A resumable sweep file's rows that the manifest vouches for (Store.read_rows), plus the
    problems of the rest and of `problems_of(header, rows)`. If there are any, the file as it was
    goes aside under build/rejected/ (never overwritten) and the problems are printed; the lines
    they name are redone. Returns (header, rows, problems)."""
    header, rows, problems = store.read_rows(rel)
    more, rows = problems_of(header, rows) if problems_of else ([], rows)
    problems = problems + more
    if problems:
        aside = REJECTED / f"{rel.replace('/', '-').removesuffix('.csv')}-{time.strftime('%Y%m%dT%H%M%S')}.csv"
        aside.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(store.root / rel, aside)
        for problem in problems:
            print(f"{store.task}: {rel} {problem}; it will be redone (the file as it was: {_rel(aside)})",
                  file=sys.stderr)
    return header, rows, problems


def _value_problems(rel):
    """The contract's value rules, row by row: (problems, the rows that keep them)."""
    from pipeline import contract
    from pipeline.store import problems

    def check(header, rows):
        spec, kept, found = contract.spec_of(rel), [], []
        for i, row in enumerate(rows, start=2):
            bad = problems(spec, (header or [], [row]))
            kept += [] if bad else [row]
            found += [b.replace("line 2:", f"row {i - 1}:") for b in bad]
        return found, kept
    return check


@task(help={"seeds": "seeds per variant (default 5; seeds 0..N-1, seed 0 is `invoke train`'s run)",
            **SWEEP_HELP, **DATA_HELP, "force": "retrain the extra seeds (never the reference runs)",
            "analyse_only": "train nothing: recompute the analysis from the runs already recorded (an error "
                            "if some are missing); `invoke derive` uses it after a new reference run"})
@user_errors
def seeds(c, seeds=None, epochs=None, jobs=None, scheduler=None, quiet=False, source=None,
          allow_unofficial_data=False, force=False, device="cpu", analyse_only=False):
    """Both LeNet variants over several seeds: mean, 95% CI, paired comparison."""
    from pipeline import stages as S
    from pipeline.store import stage_key
    from pipeline.sweep import run_sweep
    n, jobs, config, ref, info, store, base = _sweep_setup(
        "seeds", _default(seeds, 5), _default(epochs, 20), jobs, source, allow_unofficial_data,
        scheduler=scheduler, device=device, summary_rel="lenet/seeds.json")
    if not base.exists("lenet/summary.csv"):
        raise Exit(f"error: {_rel(base.root / 'lenet/summary.csv')} is missing; run `invoke train` "
                   f"first (seed 0 of each variant is the reference run)", code=1)
    summary = base.read_csv("lenet/summary.csv")
    reference = S.seeds_reference(summary, config)
    cid = S.config_id(config, ref)
    key = stage_key({"config_id": cid, "seeds": n, "reference": reference})
    runs = _sweep_rows(store, "lenet/seed_runs.csv", _value_problems("lenet/seed_runs.csv"))[1]
    rows, todo = S.seeds_todo(runs, n, config, force and not analyse_only)
    if analyse_only and todo:
        from pipeline.errors import UserError
        raise UserError(f"{_rel(store.root / 'lenet/seed_runs.csv')} lacks {len(todo)} of the {2 * (n - 1)} extra "
                        f"runs; run `invoke seeds --seeds {n}` to train them")
    provenance = _sweep_provenance({"seeds": n, **asdict(config), "config_id": cid}, n, config, info)

    def on_result(r):  # saved and recorded after every run: a killed sweep keeps what finished
        nonlocal rows
        rows = S.merge_rows(rows, S.seeds_row(r, config, info["official"]))
        store.record("seeds", key, [store.write("lenet/seed_runs.csv", rows)], provenance)

    print(f"seeds: {len(rows)} extra runs already in {_rel(store.root / 'lenet/seed_runs.csv')}, {len(todo)} to train")
    sweep = run_sweep(todo, config, ref, on_result, scheduler=scheduler, jobs=jobs, progress=not quiet)
    previous = store.previous("lenet/seeds.json")
    out = S.seeds_outputs(summary, rows, n, config, cid, previous, sweep)
    store.record("seeds", key, store.write_all(out), provenance)
    for v, s in out["lenet/seeds.json"]["variants"].items():
        print(f"seeds {v}: {100 * s['mean']:.2f}% +- {100 * s['std']:.2f} (n={s['n']}, 95% CI "
              f"{100 * s['ci_low']:.2f} to {100 * s['ci_high']:.2f})")
    print(f"seeds: {out['lenet/seeds.json']['sentence']}")


@task(help={"seeds": "seeds per cell (default 3; seeds 0..N-1)", **SWEEP_HELP,
            "augment": "also the two homework models with crop + flip augmentation (default on)",
            **DATA_HELP, "force": "start over: retrain every run, ignoring runs.csv"})
@user_errors
def ablation(c, seeds=None, epochs=None, jobs=None, scheduler=None, augment=True, quiet=False,
             source=None, allow_unofficial_data=False, force=False, device="cpu"):
    """Factorial ablation preprocess x BN x dropout over seeds on Dask: runs, effects, plots."""
    from pipeline import ablation as AB
    from pipeline import stages as S
    from pipeline.sweep import run_sweep
    n, jobs, config, ref, info, store, _ = _sweep_setup(
        "ablation", _default(seeds, 3), _default(epochs, 20), jobs, source, allow_unofficial_data,
        scheduler=scheduler, device=device, design={"augment": augment}, summary_rel="ablation/summary.json")
    cid = S.config_id(config, ref)
    foreign = []  # finished runs with other settings (other data): kept in the file, never analysed

    def parse(header, raw):
        foreign.extend(r for r in raw if r.get("config") not in (None, "", cid))
        rows, found = AB.read_runs(header, [r for r in raw if r.get("config") in (None, "", cid)], cid)
        return found, rows
    _, rows, problems = _sweep_rows(store, "ablation/runs.csv", parse)
    rows = [] if force else rows
    done = {AB.key_of(r) for r in rows}
    todo = [s for s in AB.design(n, augment) if AB.key_of(s) not in done]
    provenance = _sweep_provenance({"seeds": n, "augment": augment, **asdict(config), "config_id": cid}, n, config, info)

    def save():
        rows.sort(key=AB.key_of)
        store.record("ablation", cid, [store.write("ablation/runs.csv", rows + foreign)], provenance)

    def on_result(r):
        rows.append({**r, "config": cid})
        save()

    print(f"ablation: {len(done)} runs already in runs.csv, {len(todo)} to train")
    sweep = run_sweep(todo, config, ref, on_result, scheduler=scheduler, jobs=jobs, progress=not quiet)
    previous = store.previous("ablation/summary.json")
    out = AB.outputs(rows, n, augment, provenance["config"], S.sweep_history(previous, cid, sweep), problems)
    out["ablation/runs.csv"] = out["ablation/runs.csv"] + foreign
    store.record("ablation", cid, store.write_all(out), provenance)
    summary = out["ablation/summary.json"]
    print(f"ablation: {summary['runs']} runs, sweep {sum(x['wall_seconds'] for x in summary['sweeps']) / 60:.1f} "
          f"min in {len(summary['sweeps'])} invocation(s) -> {_rel(store.root / 'ablation')}")
    for line in summary["conclusion"]:
        print(f"  {line}")


@task(help={"seeds": "seeds per dropout probability (default 3; seeds 0..N-1)",
            "probs": "comma-separated dropout probabilities (default 0,0.25,0.5,0.75)", **SWEEP_HELP,
            **DATA_HELP, "force": "start over: retrain every run"})
@user_errors
def dropout(c, seeds=None, probs=None, epochs=None, jobs=None, scheduler=None, quiet=False, source=None,
            allow_unofficial_data=False, force=False, device="cpu"):
    """CS182 5(c): model 1 with dropout p in {0, .25, .5, .75} over seeds: curves and the gap."""
    from pipeline import dropout as DO
    from pipeline import stages as S
    from pipeline.sweep import run_sweep
    p_values = DO.check_p_values(str(probs).split(",")) if probs is not None else DO.P_VALUES
    n, jobs, config, ref, info, store, base = _sweep_setup(
        "dropout", _default(seeds, 3), _default(epochs, 20), jobs, source, allow_unofficial_data,
        DO.TRAIN_EVAL_SIZE, scheduler=scheduler, device=device, design={"p_values": list(p_values)},
        summary_rel="cs182/dropout/summary.json")
    cid = S.config_id(config, ref)
    runs, curves = ([], []) if force else DO.read_rows(_sweep_rows(store, "cs182/dropout/runs.csv")[1],
                                                        _sweep_rows(store, "cs182/dropout/curves.csv")[1],
                                                        cid, config.epochs)
    done = {(r["p"], r["seed"]) for r in runs}
    todo = [s for s in DO.design(n, p_values) if (s["dropout"], s["seed"]) not in done]
    provenance = _sweep_provenance({"seeds": n, "p_values": list(p_values), "preprocess": DO.PREPROCESS,
                                    "batch_norm": DO.BATCH_NORM, **asdict(config), "config_id": cid},
                                   n, config, info)

    def on_result(result):  # curves first: a run counts as done only once runs.csv lists it
        run, rows = DO.run_rows(result, cid)
        runs.append(run)
        curves.extend(rows)
        runs.sort(key=lambda r: (r["p"], r["seed"]))
        curves.sort(key=lambda r: (r["p"], r["seed"], r["epoch"]))
        store.record("dropout", cid, [store.write("cs182/dropout/curves.csv", curves),
                                      store.write("cs182/dropout/runs.csv", runs)], provenance)

    print(f"dropout: {len(done)} runs already in runs.csv, {len(todo)} to train")
    sweep = run_sweep(todo, config, ref, on_result, scheduler=scheduler, jobs=jobs, progress=not quiet)
    previous = store.previous("cs182/dropout/summary.json")
    # the ablation's own runs only (its config: these settings without the train-eval measurement)
    ablation_cid = S.config_id(replace(config, train_eval_size=0), ref)
    ablation_runs = ([r for r in base.read_rows("ablation/runs.csv")[1] if r.get("config") == ablation_cid]
                     if config.epochs == 20 else None)
    out = DO.outputs(runs, curves, n, p_values, provenance["config"], S.sweep_history(previous, cid, sweep),
                     ablation_runs)
    store.record("dropout", cid, store.write_all(out), provenance)
    for s_ in out["cs182/dropout/summary.json"]["summary"]:
        print(f"dropout p={s_['p']:g}: train {100 * s_['train_eval_accuracy']:.2f}% val "
              f"{100 * s_['val_accuracy']:.2f}% gap {100 * s_['gap']:.2f} pp test {100 * s_['test_accuracy']:.2f}%")
    for line in out["cs182/dropout/summary.json"]["conclusion"]:
        print(f"  {line}")


# --- the own CNN (CS182 5(d)) ----------------------------------------------------------------

@task(name="train-own",
      help={"search": "run the hyperparameter search (validation only) instead of the final run",
            "epochs": "epochs of the final run (default: as many as fit the budget, from the search)",
            **DEVICE_HELP, **DATA_HELP, **FORCE_HELP})
@user_errors
def train_own(c, search=False, epochs=None, device="auto", source=None,
              allow_unofficial_data=False, force=False):
    """CS182 5(d): our own CNN. --search tries configurations on validation data; without it,
    train the chosen one and report test accuracy once -> artifacts/own_cnn/."""
    from pipeline import own_cnn as O
    from pipeline import stages as S
    from pipeline.store import stage_key
    from pipeline.train import device_description, select_device
    dev = select_device(device)
    epochs = _number(epochs, int, "--epochs", 1, MAX_EPOCHS)
    raw, info = S.load_dataset(source, allow_unofficial_data, CACHE)
    if search:
        store = _store("train-own --search")
        key = stage_key({"search": O.SEARCH, "md5s": info["md5s"]}, S.code_files("train-own"), repo=ROOT)
        provenance = _provenance({"stages": O.SEARCH, "trial_epochs": O.TRIAL_EPOCHS, "base": asdict(O.OwnConfig())},
                                 info, {"seed": O.OwnConfig().seed, "split_seed": S.SPLIT_SEED}, device_description(dev))
        previous = [] if force else _sweep_rows(store, "own_cnn/search.csv")[1]
        rows, others = S.own_search(previous, S.own_arrays(raw, ("train", "val")), dev, device_description(dev),
                            info["md5s"]["data_batch_1"],  # the test set is not even loaded
                            lambda rows: store.record("own-search", key, [store.write("own_cnn/search.csv", rows)], provenance))
        chosen = O.choose(rows)
        store.record("own-search", key, store.write_all({"own_cnn/search.csv": rows + others, "own_cnn/chosen.json": chosen}),
                     provenance)
        print(f"search: chose {chosen['trial']} (val {chosen['val_accuracy']:.2%})")
        return
    store = _store("train-own")
    chosen = store.read_json("own_cnn/chosen.json")
    config = replace(O.OwnConfig(device=device), **{
        **O.overrides_of(chosen), "epochs": epochs if epochs is not None else int(chosen["final_epochs"])})
    key = stage_key(S.train_key_config(config, info, S.arrays_digest(raw)), S.code_files("train-own"), repo=ROOT)
    if not force and store.is_up_to_date("train-own", key):
        return _skip("train-own")
    print(f"train-own: {O.describe(asdict(config))} on {device_description(dev)}")
    result = O.fit(config, S.own_arrays(raw), dev)
    previous = store.previous("own_cnn/metrics.json")
    entry = store.manifest()["artifacts"].get("own_cnn/metrics.json")
    out = S.own_outputs(config, chosen, result, info, device_description(dev), raw["y_test"], previous, entry)
    out["own_cnn/metrics.json"]["target"] = O.target_finding(result["final"]["test_accuracy"],
                                                             result["final"]["train_seconds"])
    store.record("train-own", key, store.write_all(out),
                 _provenance(asdict(config), info, {"seed": config.seed, "split_seed": S.SPLIT_SEED},
                             device_description(dev)))
    f = result["final"]
    print(f"train-own: test accuracy {f['test_accuracy']:.2%} (val {f['val_accuracy']:.2%}), "
          f"{f['train_seconds']:.0f} s training, {result['params']:,} parameters; `invoke plots` draws its log")


# --- plots, answers, layers, filters ---------------------------------------------------------

@task(help={**DATA_HELP, **FORCE_HELP,
            "source": "CIFAR-10 archive or cifar-10-batches-py/ folder the reference runs were tested on (the "
                      "galleries rerun them); default: $CIFAR10_PATH, then the data/ cache, then the source "
                      "`invoke data` recorded in dataset.json; never downloads"})
@user_errors
def plots(c, source=None, allow_unofficial_data=False, force=False):
    """Learning curves, confusion matrices, per-class accuracy (figure and lenet/per_class.csv), the
    sample grid, each reference model's most confident mistakes (its weights rerun on the test set,
    checked against predictions.csv), the own CNN's log, and the sentences the results page states
    (lenet/findings.json)."""
    import numpy as np
    import pandas as pd
    import torch

    from pipeline import stages as S
    from pipeline.errors import UserError
    from pipeline.store import stage_key
    store, samples = _store("plots"), CACHE / S.SAMPLES
    if not samples.exists():
        raise UserError(f"{_rel(samples)} is missing; run `invoke data` first")
    summary = store.read_csv("lenet/summary.csv")
    variants = [r["variant"] for r in summary]
    info = store.read_json("data/dataset.json")  # by its md5s and classes, not its bytes (its source path)
    inputs = ["lenet/summary.csv", *[f"lenet/{v}/{f}" for v in variants
                                     for f in ("log.csv", "confusion.csv", "predictions.csv", "weights.pt")]]
    own = store.exists("own_cnn/log.csv")
    inputs += ["own_cnn/log.csv"] if own else []
    # The sample cache is not an input by its bytes (a zip with timestamps): it is derived from the
    # data, whose md5s are in dataset.json, which is.
    key = stage_key({"variants": variants, "md5s": info["md5s"], "classes": info["classes"]}, S.code_files("plots"),
                    [store.path(p) for p in inputs], repo=ROOT)
    if not force and store.is_up_to_date("plots", key):
        return _skip("plots")
    logs = {v: pd.DataFrame(store.read_csv(f"lenet/{v}/log.csv")).astype(float) for v in variants}
    cms = {v: pd.read_csv(store.path(f"lenet/{v}/confusion.csv"), index_col=0).to_numpy() for v in variants}
    preds = {v: pd.DataFrame(store.read_csv(f"lenet/{v}/predictions.csv")).astype(int) for v in variants}
    with np.load(samples) as s:
        grid = s["images"][:24], s["labels"][:24], s["indices"][:24]
    raw = S.plots_data(source, allow_unofficial_data, info, CACHE)
    probs = {v: S.reference_softmax(v, _weights(store, f"lenet/{v}/weights.pt"), raw) for v in variants}
    out = S.plots_outputs(summary, logs, cms, preds, info["classes"], grid,
                          store.read_csv("own_cnn/log.csv") if own else None,
                          (raw["x_test"], raw["y_test"]), probs)
    store.record("plots", key, store.write_all(out), _provenance({"variants": variants}, info))
    print(f"plots: {len(out)} files -> {_rel(store.root / 'plots')}")
    return True


def _weights(store, rel: str) -> dict:
    """A state_dict the train task wrote, or one line: torch's own message on a tampered file
    suggests weights_only=False, which would run whatever code the file holds."""
    import pickle

    import torch

    from pipeline.errors import UserError
    path = store.path(rel)
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError, TypeError) as e:
        raise UserError(f"{store.show(rel)} is not a weights file this pipeline wrote ({type(e).__name__}); it "
                        f"is never loaded otherwise: restore it with `git checkout -- {store.show(rel)}` or rerun "
                        f"`invoke train --force`") from None


@task(help=FORCE_HELP)
@user_errors
def answers(c, force=False):
    """Compute the written-question answers into artifacts/answers.json (and their figures)."""
    from pipeline import stages as S
    from pipeline.answers import compute_all
    from pipeline.answers.figures import figures, png_bytes
    from pipeline.store import stage_key
    store = _store("answers")
    key = stage_key({}, S.code_files("answers"), repo=ROOT)
    if not force and store.is_up_to_date("answers", key):
        return _skip("answers")
    result = compute_all()
    out = {"answers.json": result, **{f"answers/{name}.png": png_bytes(fig)
                                      for name, fig in figures(result).items()}}
    store.record("answers", key, store.write_all(out), _provenance({}))
    print(f"answers: {len(result)} answers -> {_rel(store.root / 'answers.json')}")
    return True


@task(help=FORCE_HELP)
@user_errors
def layers(c, force=False):
    """Gradient-check the CS182 NumPy layers, time the convolutions, draw the batch-norm graph."""
    from pipeline import gradcheck as G
    from pipeline import stages as S
    from pipeline.store import stage_key
    store = _store("layers")
    config = {"seed": G.SEED, "threshold": G.GRADCHECK_THRESHOLD, "torch_threshold": G.TORCH_THRESHOLD}
    key = stage_key(config, S.code_files("layers"), repo=ROOT)
    if not force and store.is_up_to_date("layers", key):
        return _skip("layers")
    out = G.outputs(G.SEED)  # a failed check is a UserError: nothing is written
    timings = out["cs182/conv_timings.json"]
    store.record("layers", key, store.write_all(out),
                 _provenance({**config, "conv": timings["shape"], "repeats": timings["repeats"]},
                             seeds={"seed": G.SEED}, device=f"cpu ({timings['torch_threads']} torch threads)"))
    print(f"layers: {len(out['cs182/gradchecks.csv'])} gradient checks passed; conv forward + backward im2col "
          f"{timings['im2col_s']:.3f} s, torch {timings['torch_s']:.3f} s, naive {timings['naive_s']:.1f} s")
    return True


@task(help={**FORCE_HELP, "images": "how many test images to show, each of another class (default 6)"})
@user_errors
def filters(c, images=None, force=False):
    """CS182 question 4: hand-designed blur and Sobel filters on CIFAR-10 test images, checked
    against torch, with their frequency responses -> artifacts/cs182/filters*."""
    import numpy as np

    from pipeline import stages as S
    from pipeline.data import CLASSES
    from pipeline.errors import UserError
    from pipeline.store import stage_key
    images = _number(_default(images, 6), int, "--images", 1)
    if images > len(CLASSES):
        raise UserError(f"--images must be between 1 and {len(CLASSES)}, got {images}")
    store, samples = _store("filters"), CACHE / S.SAMPLES
    if not samples.exists():
        raise UserError(f"{_rel(samples)} is missing; run `invoke data` first")
    info = store.read_json("data/dataset.json")
    key = stage_key({"images": images, "md5s": info["md5s"]}, S.code_files("filters"), repo=ROOT)
    if not force and store.is_up_to_date("filters", key):
        return _skip("filters")
    with np.load(samples) as npz:
        out = S.filters_outputs(npz["images"], npz["labels"], npz["indices"], images)
    store.record("filters", key, store.write_all(out),
                 _provenance({"images": images}, info, device="cpu (NumPy)"))
    diff = max(out["cs182/filters.json"]["max_abs_diff_vs_torch"].values())
    print(f"filters: blur and Sobel on {images} test images; largest difference from torch {diff:.1e}")
    return True


# --- derive: what is computed from the reference runs ----------------------------------------

@task(help=DATA_HELP)
@user_errors
def derive(c, source=None, allow_unofficial_data=False):
    """Recompute what was derived from artifacts that have changed since (the seeds analysis, the
    plots, verify's and the benchmark's comparisons after a new reference run): the sources each
    file was computed from are recorded, and pipeline/contract.py's DERIVED_FROM says what derives
    from what. Trains nothing; part of `invoke all`."""
    from pipeline import contract
    from pipeline.errors import UserError
    store = _store(None)
    stale = store.stale()
    if not stale:
        print("derive: up to date (every derived file matches what it was computed from)")
        return False
    present = store.manifest()["artifacts"]
    # every derived file, each after what it derives from; those stale and all that follow them
    ranked = contract.downstream([r for r in present if not contract.sources(r, present)], present)
    affected = {r for r, _ in stale} | set(contract.downstream({r for r, _ in stale}, present))
    writers = list(dict.fromkeys(contract.writer_of(r) for r in ranked if r in affected))
    given = {"source": source, "allow_unofficial_data": allow_unofficial_data}
    for writer in writers:
        files = [r for r in ranked if r in affected and contract.writer_of(r) == writer]
        print(f"derive: {writer}: " + ", ".join(files))
        if writer == "seeds":
            config = store.previous("lenet/seeds.json")["config"]
            seeds(c, seeds=config["seeds"], epochs=config["epochs"], analyse_only=True, quiet=True, **given)
        elif writer == "plots":
            plots(c, **given)
        elif writer in ("verify", "bench"):
            _compare_again(store, writer)
        else:
            why = dict(stale).get(files[0], "follows a file that changed")
            raise UserError(f"{files[0]} {why}; it is written by `invoke {writer}`, which derive does not "
                            f"redo: run `{contract.invoke_command(writer)} --force`")
    return True


def _compare_again(store, writer: str) -> None:
    """verify's or the benchmark's comparison with the reference runs, redone against the runs in
    summary.csv now (stages.verify_rederived / bench_rederived), recorded with its old key and
    provenance: the measurements are the ones it made."""
    from pipeline import stages as S
    summary = store.read_csv("lenet/summary.csv")
    if writer == "verify":
        seeds_ = store.read_json("lenet/seeds.json") if store.exists("lenet/seeds.json") else None
        report = S.verify_rederived(store.previous("verify.json"), summary, seeds_,
                                    store.entry("lenet/summary.csv"), _runs_machine(store, summary))
        files = {"verify.csv": report["rows"], "verify.json": report}
    else:
        files = {"bench.json": S.bench_rederived(store.previous("bench.json"), summary)}
    out, entry = _store(writer), store.entry(next(iter(files)))
    out.record(writer, out.manifest()["tasks"].get(writer, {}).get("key", ""), out.write_all(files),
               {k: entry.get(k) for k in ("config", "seeds", "device", "data")})


def _runs_machine(store, summary: list[dict]):
    """The machine the runs of summary.csv recorded in their metrics.json (machine.recorded: one
    dict, or "unknown" / "differs")."""
    from pipeline import machine as M
    return M.recorded([store.read_json(f"lenet/{r['variant']}/metrics.json") for r in summary])


# --- verify, bench -------------------------------------------------------------------------

@task(help={**DEVICE_HELP, **DATA_HELP, "quiet": "no progress bar"})
@user_errors
def verify(c, device="auto", source=None, allow_unofficial_data=False, quiet=False):
    """Retrain the reference runs into build/verify/ and compare every metric with the committed
    ones: identical, within the seeds' spread, or not -> artifacts/verify.{csv,json}."""
    from pipeline import stages as S
    from pipeline.store import git_state
    committed = _store(None)
    summary = committed.read_csv("lenet/summary.csv")
    shutil.rmtree(SCRATCH, ignore_errors=True)
    t0 = time.perf_counter()
    from pipeline.contract import REFERENCE
    train(c, device=device, quiet=quiet, source=source, allow_unofficial_data=allow_unofficial_data,
          force=True, root=SCRATCH, **{k: REFERENCE[k] for k in ("epochs", "batch_size", "lr", "seed")})
    scratch = _store(None, SCRATCH)
    rerun = scratch.read_csv("lenet/summary.csv")
    seeds_ = committed.read_json("lenet/seeds.json") if committed.exists("lenet/seeds.json") else None
    rows = S.verify_rows(summary, rerun, seeds_)
    entry = committed.entry("lenet/summary.csv")
    # each side's machine as its training processes recorded it in metrics.json (older: "unknown")
    report = {"verdict": S.verdict_of(rows), "rows": rows,
              "committed": S.verify_committed(entry, _runs_machine(committed, summary)),
              "rerun": {**git_state(ROOT), "torch": __import__("torch").__version__,
                        "device": sorted({r["device"] for r in rerun}), "machine": _runs_machine(scratch, rerun),
                        "seconds": round(time.perf_counter() - t0, 1), "finished": S.now()}}
    store = _store("verify")
    store.record("verify", report["rerun"]["commit"], store.write_all({"verify.csv": rows, "verify.json": report}),
                 _provenance({"compared": "lenet/summary.csv"}, device=report["rerun"]["device"]))
    for r in rows:
        if r["metric"] == "test_accuracy":
            print(f"verify {r['variant']}: committed {r['committed']:.2%}, rerun {r['rerun']:.2%}: {r['verdict']}")
    print(f"verify: {report['verdict']} -> {_rel(store.root / 'verify.csv')}")


@task(help={"images": "training images per timed epoch (default 12800)",
            "repeats": "timed epochs per loop and variant, medians reported (default 5)",
            "end_to_end": "also time `invoke all --force` (into build/bench/, never over artifacts/) against "
                          "the plain way's training time (default true; a few minutes)",
            "plain_epochs": "epochs of each model the plain way is timed on, extrapolated to 20 (default 3; "
                            "20 times it in full)", **DATA_HELP})
@user_errors
def bench(c, images=None, repeats=None, end_to_end=True, plain_epochs=None, source=None,
          allow_unofficial_data=False):
    """Speed, measured: our loop vs the plain DataLoader loop per model and thread count, a per-op
    profile of one step of each, the options tried (channels-last, torch.compile), and `invoke all
    --force` against the plain way's training time, each with its target -> artifacts/bench.json,
    artifacts/profile.csv."""
    from pipeline import bench as B
    from pipeline import parallel
    from pipeline import stages as S
    from pipeline.machine import describe
    from pipeline.store import git_state, stage_key
    from pipeline.train import THREADS, select_device
    images = _number(_default(images, 12800), int, "--images", 128, 45000)
    repeats = _number(_default(repeats, 5), int, "--repeats", 1, 100)
    plain_epochs = _number(_default(plain_epochs, 3), int, "--plain-epochs", 1, 20)
    raw, info = S.load_dataset(source, allow_unofficial_data, CACHE)
    threads = sorted({THREADS, parallel.cores()})
    report, profile = B.run(raw, images, repeats, threads, log=print)
    # the loops ran on the "auto" device (TrainConfig's default) at each of `threads`
    report.update(targets=B.targets(report), machine=describe(select_device("auto"), threads),
                  cores=parallel.cores(), **git_state(ROOT))
    config = {"images": images, "repeats": repeats, "end_to_end": end_to_end, "plain_epochs": plain_epochs}

    def save(root=None):
        store = _store("bench", root)
        report["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        store.record("bench", stage_key(config), store.write_all({"bench.json": report, "profile.csv": profile}),
                     _provenance(config, info, device=report["device"]))

    if end_to_end:
        report["end_to_end"] = _bench_all(raw, plain_epochs, source, allow_unofficial_data, save)
        report["targets"] = B.targets(report)
    save()
    for t, loops in report["loops"].items():
        for v, r in loops["variants"].items():
            print(f"bench {v}, {t} thread(s): ours {r['ours_images_per_second']:.0f} img/s, plain "
                  f"{r['plain_images_per_second']:.0f} img/s, ratio {r['ratio']:.2f}x")
    for name, t in report["targets"].items():
        print(f"bench target {name}: {t['value']:.2f} ({t['target']}): {'met' if t['met'] else 'NOT met'}")


def _bench_all(raw, plain_epochs, source, allow_unofficial_data, save) -> dict:
    """`invoke all --force` timed in a subprocess on a copy of artifacts/ (build/bench/artifacts, so
    the committed reference is not replaced; save(scratch) first puts this run's other figures
    there, which its site build reads), then the plain way's training of the same two models in
    this process; their ratio, the stage times, and the runs' accuracies against the committed."""
    from pipeline import bench as B
    from pipeline import stages as S
    scratch = ROOT / "build" / "bench" / "artifacts"
    shutil.rmtree(scratch.parent, ignore_errors=True)
    shutil.copytree(ART, scratch)
    save(scratch)
    env = {**os.environ, "LENET_ARTIFACTS": str(scratch)}
    given = [*(["--source", source] if source else []), *(["--allow-unofficial-data"] if allow_unofficial_data else [])]
    start = time.perf_counter()
    # --no-pdf: the end-to-end time stays the pipeline's, comparable with the runs measured before
    # the PDF joined `invoke all` (printing it takes about 40 s more here)
    proc = _run([sys.executable, "-m", "invoke", "all", "--force", "--no-pdf", *given], env=env)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        from pipeline.errors import UserError
        raise UserError(f"`invoke all --force` failed in the benchmark (exit {proc.returncode}); run it by hand to see why")
    print(f"bench: invoke all --force took {seconds:.1f} s")
    plain = B.plain_training(raw, plain_epochs, log=print)
    rerun, committed = _store(None, scratch), _store(None)
    ours = {r["variant"]: r for r in rerun.read_csv("lenet/summary.csv")}
    accuracies = S.bench_accuracies(committed.read_csv("lenet/summary.csv"),
                                    {v: r["test_accuracy"] for v, r in ours.items()})
    return {"all_force_seconds": seconds, "stages": rerun.read_json("timings.json")["seconds"],
            "train_seconds": {v: float(r["train_seconds"]) for v, r in ours.items()},
            "plain": plain, "ratio": seconds / plain["seconds"], "accuracies": accuracies}


# --- site, tests, housekeeping -------------------------------------------------------------

SITE_MARK = ".lenet-site"  # in every folder the site build made; MkDocs' clean keeps hidden files


def _is_site(folder: Path) -> bool:
    """A folder this task built: its mark, or (built before the mark existed) MkDocs' own output."""
    return (folder / SITE_MARK).is_file() or all(
        (folder / f).is_file() for f in ("index.html", "sitemap.xml", "search/search_index.json"))


def _site_folder(site_dir) -> Path:
    """The folder a site build may write, or a UserError. MkDocs empties its output folder first,
    so it must be new, empty, or one this task made (SITE_MARK): `--site-dir artifacts` emptied the
    reference. Never the repository or a folder above it."""
    from pipeline.errors import UserError
    folder = (ROOT / site_dir).resolve()
    if folder == ROOT or folder in ROOT.parents or ROOT.is_relative_to(folder):
        raise UserError(f"--site-dir {site_dir} would hold the repository; give a folder of its own, e.g. site")
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--site-dir {site_dir} is a file; give a folder")
    if folder.is_dir() and any(folder.iterdir()) and not _is_site(folder):
        raise UserError(f"{_rel(folder)} holds files the site build did not make, and building would delete "
                        f"them; give a new or empty folder")
    return folder


@task(help={"strict": "fail on any warning (default true)",
            "site_dir": "output folder: new, empty, or one this task built (it is emptied first)",
            "force": "build even if the folder was built from these very files"})
@user_errors
def docs(c, strict=True, site_dir="site", force=False):
    """Build the site with MkDocs (reads artifacts/ only; a missing or stale artifact fails it)."""
    from pipeline.parallel import die_with_parent
    folder = _site_folder(site_dir)
    key, mark = _site_key(strict), folder / SITE_MARK
    if key and not force and (folder / "index.html").is_file() and mark.is_file() \
            and mark.read_text().split()[-1:] == [key]:
        print(f"docs: {_rel(folder)} is up to date (built from these very files)")
        return False
    folder.mkdir(parents=True, exist_ok=True)
    mark.write_text("built by `invoke docs`: it may empty and rewrite this folder\n")  # no key: not built yet
    # Material >= 9.7 prints an end-of-life banner about MkDocs 2 on every build; not ours to fix.
    cmd = [sys.executable, "-m", "mkdocs", "build", *(["--strict"] if strict else []), "-d", str(site_dir)]
    if subprocess.run(cmd, cwd=ROOT, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
                      preexec_fn=die_with_parent).returncode:
        raise Exit("error: the site build failed (see the message above)", code=1)
    if key:
        mark.write_text(f"built by `invoke docs`: it may empty and rewrite this folder\nfrom {key}\n")
    return True


def _site_key(strict: bool) -> str | None:
    """sha256 of everything a site build reads: every file of the checkout that git tracks or
    would (tests, site and build left out), the artifacts tree wherever $LENET_ARTIFACTS puts it,
    the commit and whether the tree is dirty (the citations name them), every installed
    package's version, and --strict. None outside a git checkout: then it always builds."""
    import hashlib
    import importlib.metadata

    from pipeline.store import sha256_file

    def git(*args):
        return _run(["git", *args], capture_output=True, text=True).stdout
    head = git("rev-parse", "HEAD")
    if not head:
        return None
    h = hashlib.sha256(f"{head}{git('status', '--porcelain', '--untracked-files=no')}{strict}".encode())
    files = [ROOT / f for f in git("ls-files", "-co", "--exclude-standard", "-z").split("\0")
             if f and not f.startswith(("tests/", "site/", "build/"))]
    if not ART.resolve().is_relative_to(ROOT):
        files += sorted(p for p in ART.rglob("*") if p.is_file())
    for path in files:
        if path.is_file():
            h.update(f"\0{path}\0{sha256_file(path)}".encode())
    h.update("".join(sorted(f"{d.metadata['Name']}=={d.version}\n" for d in importlib.metadata.distributions())).encode())
    return h.hexdigest()


@task(help={"port": "port to serve on (127.0.0.1; default 8000)"})
@user_errors
def serve(c, port=None):
    """Preview the site with live reload at http://127.0.0.1:PORT/."""
    port = _number(_default(port, 8000), int, "--port", 1)
    if port > 65535:
        raise Exit(f"error: --port must be at most 65535, got {port}", code=1)
    subprocess.run([sys.executable, "-m", "mkdocs", "serve", "-a", f"127.0.0.1:{port}"], cwd=ROOT,
                   env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})


# Tests of pages, prints and citations: they touch no float kernels, so the --lower-isa run leaves them out.
PAGE_TESTS = ("test_site", "test_pdf", "test_escaping", "test_escape_text", "test_citations", "test_cite_deploy",
              "test_maths", "test_browser", "test_notebook_css", "test_answers_site", "test_questions", "test_errata")


@task(help={"browser": "also run the browser tests of the built site (needs chromium)",
            "fast": "only the fast tests (not slow, not browser): under 3 minutes",
            "k": "only tests matching this pytest -k expression",
            "lower_isa": "run the tests that touch floating point with oneDNN held one instruction set below "
                         "this CPU's best (ONEDNN_MAX_CPU_ISA), as another CPU computes; CI runs it"})
@user_errors
def test(c, browser=True, fast=False, k=None, lower_isa=False):
    """Run the test suite (pytest)."""
    args = ["-m", "not slow and not browser"] if fast else [] if browser else ["-m", "not browser"]
    args += ["-k", k] if k else []
    env = dict(os.environ)
    if lower_isa:
        import torch

        from pipeline.machine import lower_isa as below
        best = torch.backends.cpu.get_cpu_capability()
        if below(best) is None:
            print(f"test: this CPU's instruction set is {best}; there is none below it to test with")
            return
        env["ONEDNN_MAX_CPU_ISA"] = below(best)
        args = ["-m", "not slow and not browser" if fast else "not browser", *(["-k", k] if k else []),
                *(f"--ignore=tests/{name}.py" for name in PAGE_TESTS)]
        print(f"test: ONEDNN_MAX_CPU_ISA={below(best)} (this CPU: {best}); page tests left out")
    code = subprocess.run([sys.executable, "-m", "pytest", "-q", *args], cwd=ROOT, env=env).returncode
    if code:
        raise Exit(code=code)


def _publish_pdf(site_dir="site", force=False, optional=False):
    """SITE_DIR/report.pdf, printed or copied from build/pdf/ (pipeline/pdf.py's publish), and the
    link to it on every page. `optional` (invoke all): without Chromium, one line and no link."""
    from pipeline import pdf as P
    from pipeline.errors import UserError
    from pipeline.store import git_state
    folder = (ROOT / site_dir).resolve()
    if not (folder / "index.html").is_file() or not _is_site(folder):
        raise UserError(f"no built site in {_rel(folder)}; run `invoke docs --site-dir {site_dir}` first")
    state = git_state(ROOT)
    commit = state["commit"][:12] + (" (with uncommitted changes)" if state["dirty"] else "")
    t0 = time.perf_counter()
    try:
        done = P.publish(folder, ROOT / "mkdocs.yml", commit, ROOT / "build" / "pdf", force=force)
    except P.NoBrowser as e:
        if not optional:
            raise
        print(f"pdf: skipped: {e}; the site links no PDF")
        return
    for problem in done.problems:
        print(f"pdf: warning: {problem}")
    how = "printed" if done.printed else "up to date, copied from build/pdf/"
    print(f"pdf: {how}: {_rel(folder / P.PDF_NAME)}, {done.pages} pages, {done.size / 1e6:.1f} MB, "
          f"{time.perf_counter() - t0:.1f} s; {done.linked} pages link it")


@task(help={"site_dir": "the built site to print (default site); report.pdf is written into it",
            "force": "print again even if build/pdf/ holds the PDF of these same pages"})
@user_errors
def pdf(c, site_dir="site", force=False):
    """Print the built site to SITE_DIR/report.pdf with Chromium (offline): cover, every nav page in
    order, page numbers, bookmarks; then link it from every page. Build the site first (`invoke
    docs`). The last PDF is kept in build/pdf/ and copied when the pages are the same."""
    _publish_pdf(site_dir, force=force)


@task(name="test-site")
@user_errors
def test_site(c):
    """Build the site and check it in Chromium: links, images, math, no outside requests."""
    code = subprocess.run([sys.executable, "-m", "pytest", "-q", "tests/test_site.py", "tests/test_browser.py"],
                          cwd=ROOT).returncode
    if code:
        raise Exit(code=code)


@task
def contract(c):
    """Write ARTIFACTS.md from pipeline/contract.py (a test checks they agree)."""
    from pipeline import contract as K
    from pipeline.store import write_bytes_atomic
    print("contract: " + ("wrote" if write_bytes_atomic(ROOT / "ARTIFACTS.md", K.markdown().encode()) else "unchanged")
          + " ARTIFACTS.md")


@task
@user_errors
def lock(c):
    """Refresh requirements.lock from requirements.txt: every package but torch pinned exactly,
    with the sha256 of every file the registry offers (pip-compile --generate-hashes)."""
    # torch stays out: the CPU wheel on the CI disk and the registry's wheels have different
    # hashes, and pip's hash mode is all or nothing; it is pinned exactly in requirements.txt.
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "requirements.txt"
        # ...but its dependencies go in (hash-checked, installed before torch), all but the CUDA
        # wheels' own libraries (nvidia-*, triton: only the CUDA builds want them)
        import importlib.metadata
        torch_needs = [r for r in importlib.metadata.requires("torch") or [] if "extra ==" not in r
                       and not r.lower().startswith(("nvidia", "triton"))]
        source.write_text("".join(line for line in (ROOT / "requirements.txt").read_text().splitlines(True)
                                  if not line.startswith("torch")) + "".join(f"{r}\n" for r in torch_needs))
        out = Path(tmp) / "requirements.lock"
        cmd = [sys.executable, "-m", "piptools", "compile", "-q", "--generate-hashes", "--allow-unsafe",
               "--strip-extras", "--no-emit-index-url", "--no-emit-find-links", "-o", str(out), str(source)]
        if subprocess.run(cmd, cwd=tmp).returncode:
            raise Exit("error: pip-compile failed (pip install pip-tools, and the registry must be reachable)", code=1)
        text = out.read_text().replace(str(source), "requirements.txt")
        text = re.sub(r"#    pip-compile .*\n", "#    invoke lock   (pip-compile --generate-hashes of requirements.txt without torch; see README)\n", text)
        (ROOT / "requirements.lock").write_text(text)
    print("lock: wrote requirements.lock")


@task(help={"artifacts": "also remove the repository's artifacts/ (the reference run: `git checkout -- "
                         "artifacts` restores what is committed, not uncommitted runs)"})
@user_errors
def clean(c, artifacts=False):
    """Remove generated files (site/, build/, caches, left-over temp files); never data/."""
    from pipeline.errors import UserError
    from pipeline.store import clean_litter
    if artifacts and ART != (ROOT / "artifacts").resolve():  # never a tree named by the environment
        raise UserError(f"LENET_ARTIFACTS points at {ART}; `clean --artifacts` removes only this repository's "
                        f"artifacts/: unset it, or delete that folder yourself")
    for p in [ROOT / "site", ROOT / "build", ROOT / ".pytest_cache", ROOT / ".hypothesis"] + ([ART] if artifacts else []):
        if p.exists():
            shutil.rmtree(p)
            print(f"removed {_rel(p)}")
    for p in clean_litter(ART):
        print(f"removed {_rel(p)}")
    for p in ROOT.rglob("__pycache__"):
        if CACHE not in p.parents:
            shutil.rmtree(p, ignore_errors=True)


@task(name="all", help={**DATA_HELP, **FORCE_HELP, **DEVICE_HELP,
                        "pdf": "print the site's PDF after it, where Chromium is (default true)"})
@user_errors
def all_(c, source=None, allow_unofficial_data=False, device="auto", force=False, pdf=True):
    """Everything: data -> train both variants -> plots -> derive (what is computed from the
    reference runs: seeds analysis, verify and bench comparisons) -> answers -> layers -> filters -> site ->
    its PDF (skipped, with one line, without Chromium); times each stage. A stage that is up to date
    writes nothing, and a run that redid nothing leaves timings.json as it was. The site also reads
    `invoke seeds`, `ablation`, `dropout` and `train-own`, which take longer (10-75 min each on 2
    cores), are run by hand and committed."""
    from pipeline.store import clean_litter, git_state
    clean_litter(ART, older_than=600)  # temp files a killed write left behind (not a running one's)
    given = {"source": source, "allow_unofficial_data": allow_unofficial_data}
    stages = [("data", lambda: data(c, force=force, **given)),
              ("train", lambda: train(c, device=device, quiet=True, force=force, **given)),
              ("plots", lambda: plots(c, force=force)), ("derive", lambda: derive(c, **given)),
              ("answers", lambda: answers(c, force=force)),
              ("layers", lambda: layers(c, force=force)), ("filters", lambda: filters(c, force=force)),
              ("docs", lambda: docs(c, force=force))]
    if pdf:  # the PDF is a copy from build/pdf/ when the pages are those it was printed from
        stages.append(("pdf", lambda: _publish_pdf(optional=True)))
    timings, redone, roots, start = {}, [], set(), time.perf_counter()
    for name, run in stages:
        t0 = time.perf_counter()
        wrote = run()  # False, True (into artifacts/) or the folder it wrote into
        if wrote and name not in ("docs", "pdf"):  # the site and its PDF are no artifacts
            redone.append(name)
            roots.add(Path(wrote) if isinstance(wrote, (str, Path)) else ART)
        timings[name] = round(time.perf_counter() - t0, 2)
    timings["total"] = round(time.perf_counter() - start, 2)
    print("all: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    # The timings of a run that redid nothing would only churn a tracked file; those of a run on
    # other data or settings go to its own folder, leaving every tracked file as it was.
    for root in sorted(roots, key=lambda r: r != ART):
        store = _store("all", root)
        store.record("all", "timings", store.write_all({"timings.json": {
            "seconds": timings, "forced": force, "redone": redone, **git_state(ROOT)}}), _provenance({}))
        if root != ART:
            print(f"all: site/ shows the reference run (artifacts/); this run, on other data or settings, is in "
                  f"{_rel(root)} (its summary: {_rel(root / 'lenet' / 'summary.csv')})")
    print(json.dumps(timings))


# --- deploy (by hand, never in CI) ---------------------------------------------------------

@task(help={"remote": "git remote to push the site to (needs push rights; default origin)",
            "branch": "branch GitHub Pages serves the site from (default gh-pages)",
            "dry_run": "print the commit and the mkdocs gh-deploy command, run nothing"})
@user_errors
def deploy(c, remote="origin", branch="gh-pages", dry_run=False):
    """Build the site strictly and publish it to GitHub Pages (mkdocs gh-deploy) from HEAD."""
    import shlex

    def git(*args):
        return _run(["git", *args], capture_output=True, text=True)

    head = git("rev-parse", "HEAD")
    if head.returncode:
        raise Exit("error: not a git repository (or git is missing); deploy publishes a commit, "
                   "so run it in a clone of the repository.", code=1)
    commit = head.stdout.strip()
    # The site's "How to cite" block names the commit it was built from, so the published site
    # must be exactly that commit: uncommitted changes to tracked files (code, artifacts/, docs/)
    # are refused; untracked files are ignored (MkDocs reads only what mkdocs.yml and docs/ name).
    changed = git("status", "--porcelain", "--untracked-files=no").stdout.splitlines()
    problems = []
    if changed:
        problems.append(f"{len(changed)} tracked file(s) have uncommitted changes "
                        f"(first: {changed[0][3:]}); commit or stash them, since the published "
                        f"site must correspond to a commit")
    if git("remote", "get-url", remote).returncode:
        problems.append(f"there is no git remote {remote!r}; add one (git remote add {remote} URL) "
                        f"or pass --remote NAME")
    problems += _deploy_branch_problems(git, remote, branch)
    if os.environ.get("LENET_ARTIFACTS"):  # the site would publish that tree under this commit's name
        problems.append(f"LENET_ARTIFACTS is set ({os.environ['LENET_ARTIFACTS']}); deploy publishes the "
                        f"committed artifacts/ only: unset it")
    from pipeline import citation
    url = citation.site_url()  # CITATION.cff's url, the site's one address setting
    if citation.is_placeholder(url):  # every citation on the published site would point at it
        problems.append(f"the site URL is the placeholder {url or '(empty)'}; set `url` in CITATION.cff "
                        f"to the address the site will have")
    # --force and --no-history: gh-pages holds only the latest build (one commit), so old sites
    # do not pile up in the repository; the default commit message names the source commit.
    cmd = [sys.executable, "-m", "mkdocs", "gh-deploy", "--strict", "--force", "--no-history",
           "--remote-name", remote, "--remote-branch", branch]
    if dry_run:
        print(f"deploy: would publish commit {commit} to {remote}/{branch}")
        for p in problems:
            print(f"deploy: note: {p}")
        print(shlex.join(cmd))
        return
    if problems:
        raise Exit(f"error: {problems[0]}.", code=1)
    print(f"deploy: publishing commit {commit} to {remote}/{branch}")
    if _run(cmd, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}).returncode:
        raise Exit("error: mkdocs gh-deploy failed (see above)", code=1)


DEPLOYED = "Deployed "  # how mkdocs gh-deploy's commit messages begin ("Deployed <sha> with MkDocs version: ...")


def _deploy_branch_problems(git, remote: str, branch: str) -> list[str]:
    """gh-deploy force-pushes one commit over --branch, so it must be a branch only the site lives
    on: not the branch checked out, and, where it exists here or as the remote's, one whose last
    commit gh-deploy made. Else `invoke deploy --branch main` would replace the source's history."""
    if branch == git("rev-parse", "--abbrev-ref", "HEAD").stdout.strip():
        return [f"--branch {branch} is the branch checked out here; the site goes to a branch of its own "
                f"(gh-pages), since publishing replaces that branch's history"]
    for ref in (f"refs/heads/{branch}", f"refs/remotes/{remote}/{branch}"):
        tip = git("log", "-1", "--format=%s", ref, "--")
        if tip.returncode == 0 and not tip.stdout.startswith(DEPLOYED):
            return [f"{ref} holds commits that `mkdocs gh-deploy` did not make (its last: "
                    f"{tip.stdout.strip()[:60]!r}); publishing would replace its history: choose the "
                    f"site's own branch (gh-pages)"]
    return []


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    """A command as an argument list, in the repository: no shell ever reads a flag's value."""
    return subprocess.run(args, cwd=ROOT, **kwargs)
