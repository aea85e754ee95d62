"""Invoke tasks: the pipeline's stages, run in order by `invoke all`.

Each task builds a config, calls pipeline functions, and writes their results to `artifacts/`
(atomically, with provenance in `artifacts/manifest.json`). A task whose config, code and inputs
are unchanged since it last wrote its outputs skips its work; `--force` reruns it. Errors the
user can cause print one sentence and exit non-zero.
"""
import functools
import json
import os
import resource
import shutil
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

from invoke import task
from invoke.exceptions import Exit

ROOT = Path(__file__).resolve().parent
ART = Path(os.environ.get("LENET_ARTIFACTS", ROOT / "artifacts"))
CACHE = ROOT / "data"
SMOKE = ROOT / "build" / "smoke"      # smoke runs never touch artifacts/
SAMPLES = "test_samples.npz"          # raw test images for the sample grid: data, so under data/, never committed
EXPECTED_COUNTS = (50000, 10000)      # CIFAR-10's train / test sizes; tests use a tiny archive
VAL_SIZE, SPLIT_SEED = 5000, 0        # the 45,000 / 5,000 train / validation split, fixed by seed
PIPELINE = ROOT / "pipeline"
DATA_HELP = {
    "source": "CIFAR-10 archive (cifar-10-python.tar.gz) or extracted cifar-10-batches-py/ "
              "folder; default: $CIFAR10_PATH, then the data/ cache, then download",
    "allow_unofficial_data": "accept batch files whose md5 differs from the official CIFAR-10 "
                             "(e.g. the rebuilt copy); the run and every page say so "
                             "(or set CIFAR10_ALLOW_UNOFFICIAL=1)",
}
FORCE_HELP = {"force": "rerun even if config, code and inputs are unchanged"}


def user_errors(fn):
    """Turn a UserError into one line on stderr and exit code 1; bugs keep their traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from pipeline.errors import UserError
        try:
            return fn(*args, **kwargs)
        except UserError as e:
            raise Exit(f"error: {e}", code=1)
    return wrapper


def _rel(path: Path) -> str:
    return Path(path).resolve().relative_to(ROOT).as_posix() if Path(path).resolve().is_relative_to(ROOT) else str(path)


def _code(*names: str) -> list[Path]:
    return [PIPELINE / f"{n}.py" for n in names]


# --- data ----------------------------------------------------------------------------------

def load_dataset(source=None, allow_unofficial_data=False):
    """Locate, verify and load CIFAR-10, then split it. Returns (arrays, info) where arrays
    holds x_train/y_train (the 45,000), x_val/y_val, x_test/y_test as uint8 HWC / int64."""
    from pipeline import data
    batch_dir, info = data.prepare(source, allow_unofficial_data, cache_dir=CACHE)
    arrays, split = data.split_arrays(*data.load_data(batch_dir, expected_counts=EXPECTED_COUNTS),
                                      val_size=VAL_SIZE, seed=SPLIT_SEED)
    info = {**info, "batch_dir": str(batch_dir), "split": split}
    return arrays, info


def data_provenance(info: dict) -> dict:
    """The part of the data info every artifact records."""
    return {"source": info["source"], "official": info["official"], "md5s": info["md5s"],
            "mismatched": info["mismatched"]}


@task(help={**DATA_HELP, **FORCE_HELP,
            "samples": "how many test images to keep for the sample grid"})
@user_errors
def data(c, source=None, allow_unofficial_data=False, samples=40, force=False):
    """Locate, download if needed, verify and load CIFAR-10; write artifacts/data/."""
    import numpy as np

    from pipeline import artifacts as A
    from pipeline import data as D
    t0 = time.perf_counter()
    arrays, info = load_dataset(source, allow_unofficial_data)
    key = A.task_key({"samples": samples, "md5s": info["md5s"], "split": info["split"]},
                     _code("data"))
    out_npz = CACHE / SAMPLES
    if not force and A.is_up_to_date(ART, "data", key) and out_npz.exists():
        print("data: up to date (use --force to redo)")
        return info
    dataset = {
        "source": info["source"], "official": info["official"], "md5s": info["md5s"],
        "official_md5s": D.OFFICIAL_MD5S, "mismatched": info["mismatched"],
        "classes": list(D.CLASSES), "image_shape": [32, 32, 3],
        "counts": {k: int(len(arrays[f"y_{k}"])) for k in ("train", "val", "test")},
        "class_counts": {k: D.class_counts(arrays[f"y_{k}"]) for k in ("train", "val", "test")},
        "split": info["split"],
    }
    out_json = A.write_json(ART / "data" / "dataset.json", dataset)
    k = samples
    out_npz.parent.mkdir(parents=True, exist_ok=True)
    with A.atomic_path(out_npz) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, images=arrays["x_test"][:k], labels=arrays["y_test"][:k],
                                indices=np.arange(k))
    A.record(ART, "data", key, [out_json],
             {"config": {"samples": samples}, "seeds": {"split_seed": info["split"]["seed"]},
              "device": None, "data": data_provenance(info)})
    print(f"data: {dataset['counts']} official={info['official']} "
          f"({time.perf_counter() - t0:.1f} s) -> {_rel(out_json)}")
    return info


# --- train ---------------------------------------------------------------------------------

def _parse(value, kind, flag):
    """A flag invoke passes as a string (its default is None) converted, or a one-line error."""
    from pipeline.errors import UserError
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        raise UserError(f"{flag} must be a{'n integer' if kind is int else ' number'}, "
                        f"got {value!r}") from None


def _check_train_args(epochs, batch_size, lr, seed):
    from pipeline.errors import UserError
    if epochs < 1:
        raise UserError(f"--epochs must be at least 1, got {epochs}")
    if batch_size is not None and batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    if lr is not None and not lr > 0:
        raise UserError(f"--lr must be positive, got {lr}")
    if seed < 0:
        raise UserError(f"--seed must be non-negative, got {seed}")


def _variants(variant: str) -> list[str]:
    from pipeline.model import VARIANTS, get_variant
    if variant == "all":
        return list(VARIANTS)
    get_variant(variant)  # an unknown name is a one-line UserError
    return [variant]


SUMMARY_COLUMNS = ("variant", "seed", "epochs", "preprocess", "batch_size", "lr",
                   "test_accuracy", "test_loss", "best_val_accuracy", "best_val_epoch",
                   "final_train_loss", "final_train_accuracy", "train_seconds", "eval_seconds",
                   "images_per_second", "params", "device", "official_data")


def _write_predictions(path: Path, labels, predictions) -> Path:
    """predictions.csv: index, true label and predicted class of every test image."""
    from pipeline import artifacts as A
    return A.write_csv(path, [{"index": i, "label": int(y), "prediction": int(p)}
                              for i, (y, p) in enumerate(zip(labels, predictions))])


def write_run(out: Path, config, result: dict, info: dict, classes) -> list[Path]:
    """Write one run's artifacts under out/<variant>/ and update out/summary.csv."""
    from pipeline import artifacts as A
    from pipeline.model import get_variant
    from pipeline.train import LOG_COLUMNS
    vdir = out / config.variant
    paths = [A.write_csv(vdir / "log.csv", result["log"], LOG_COLUMNS)]
    metrics = {"variant": config.variant, "description": get_variant(config.variant).description,
               "config": asdict(config), "preprocess": config.preprocess,
               "final": result["final"], "params_by_layer": result["params_by_layer"],
               "device": result["device"], "peak_rss_mib": result["peak_rss_mib"],
               "data": data_provenance(info)}
    paths.append(A.write_json(vdir / "metrics.json", metrics))
    cm = result["confusion"]
    paths.append(A.write_csv(vdir / "confusion.csv",
                             [{"true\\pred": name, **dict(zip(classes, map(int, row)))}
                              for name, row in zip(classes, cm)],
                             ["true\\pred", *classes]))
    preds = result["test_predictions"]
    paths.append(_write_predictions(vdir / "predictions.csv", result["y_test"], preds))
    paths.append(A.write_torch(vdir / "weights.pt", result["state_dict"]))
    row = {"variant": config.variant, "seed": config.seed, "preprocess": config.preprocess,
           "batch_size": config.batch_size, "lr": config.lr, "device": result["device"],
           "official_data": info["official"], **result["final"]}
    summary = out / "summary.csv"
    rows = A.read_csv(summary) if summary.exists() else []
    rows = [r for r in rows if (r["variant"], int(r["seed"])) != (config.variant, config.seed)]
    rows = sorted(rows + [row], key=lambda r: (r["variant"], int(r["seed"])))
    paths.append(A.write_csv(summary, rows, SUMMARY_COLUMNS))
    return paths


@task(help={"variant": "lenet_bn_dropout, lenet_plain, or all",
            "epochs": "training epochs (default 20, as in the homework)",
            "batch_size": "training batch size (default: TrainConfig's)",
            "lr": "Adam learning rate (default: TrainConfig's)",
            "seed": "seed for weight init, dropout and batch order",
            "device": "auto (cuda, then mps, then cpu), cpu, cuda or mps",
            "smoke": "tiny subset, one epoch, written to build/smoke/ (never to artifacts/)",
            "quiet": "no progress bar",
            **DATA_HELP, **FORCE_HELP})
@user_errors
def train(c, variant="all", epochs=20, batch_size=None, lr=None, seed=0, device="auto",
          smoke=False, quiet=False, source=None, allow_unofficial_data=False, force=False):
    """Train the LeNet variants; write logs, metrics, weights, confusion matrices."""
    from pipeline import artifacts as A
    from pipeline.data import CLASSES
    from pipeline.preprocess import preprocess
    from pipeline.train import TrainConfig, fit, select_device
    batch_size, lr = _parse(batch_size, int, "--batch-size"), _parse(lr, float, "--lr")
    _check_train_args(epochs, batch_size, lr, seed)
    names = _variants(variant)
    select_device(device)  # fail on a bad device before loading 180 MB of data
    overrides = {k: v for k, v in {"batch_size": batch_size, "lr": lr}.items() if v is not None}
    configs = [replace(TrainConfig(variant=v, epochs=epochs, seed=seed, device=device,
                                   smoke=smoke), **overrides) for v in names]
    root = SMOKE if smoke else ART
    out = root / "lenet"
    raw, info = load_dataset(source, allow_unofficial_data)
    code = _code("data", "preprocess", "model", "train")
    for config in configs:
        key = A.task_key({"config": asdict(config), "md5s": info["md5s"],
                          "split": info["split"]}, code)
        name = f"train:{config.variant}"
        if not force and A.is_up_to_date(root, name, key):
            print(f"{name}: up to date (use --force to retrain)")
            continue
        print(f"{name}: {config.preprocess} inputs, {1 if config.smoke else config.epochs} epochs, "
              f"batch {config.batch_size}, lr {config.lr}, seed {config.seed}")
        (x_tr, x_va, x_te), stats = preprocess(raw["x_train"], raw["x_val"], raw["x_test"],
                                               mode=config.preprocess)
        arrays = {"x_train": x_tr, "y_train": raw["y_train"], "x_val": x_va,
                  "y_val": raw["y_val"], "x_test": x_te, "y_test": raw["y_test"]}
        result = fit(config, arrays, progress=not quiet)
        del arrays, x_tr, x_va, x_te
        # Peak resident memory of this process so far: data + preprocessing + training.
        result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        result["y_test"] = raw["y_test"]
        paths = write_run(out, config, result, info, CLASSES)
        A.record(root, name, key, paths,
                 {"config": asdict(config), "seeds": {"seed": config.seed,
                                                      "split_seed": info["split"]["seed"]},
                  "device": result["device"], "data": data_provenance(info)})
        f = result["final"]
        print(f"{name}: test accuracy {f['test_accuracy']:.2%}, best val "
              f"{f['best_val_accuracy']:.2%}, {f['train_seconds']:.1f} s, "
              f"{f['images_per_second']:.0f} img/s -> {_rel(out / config.variant)}")


# --- seeds, ablation: many runs on Dask -------------------------------------------------------

SWEEP_HELP = {
    "epochs": "training epochs per run (default 20, as in the homework)",
    "jobs": "worker processes of the local Dask cluster (default: one per core)",
    "scheduler": "address of an existing Dask scheduler (tcp://host:8786) instead of a local "
                 "cluster; its workers need this repository on PYTHONPATH and the data at the same path",
    "quiet": "no progress bar",
}


def _sweep_setup(seeds, epochs, jobs, source, allow_unofficial_data, train_eval_size=0):
    """Checked flags, the verified data and what the workers need: (config, ref, info)."""
    from pipeline import data as D
    from pipeline.errors import UserError
    from pipeline.sweep import DataRef, SweepConfig, default_jobs
    seeds, epochs, jobs = (_parse(seeds, int, "--seeds"), _parse(epochs, int, "--epochs"),
                           _parse(jobs, int, "--jobs"))
    for flag, value in (("--seeds", seeds), ("--epochs", epochs), ("--jobs", jobs)):
        if value is not None and value < 1:
            raise UserError(f"{flag} must be at least 1, got {value}")
    batch_dir, info = D.prepare(source, allow_unofficial_data, cache_dir=CACHE)
    # One worker process per core, each run single-threaded; fewer jobs get more threads each.
    threads = max(1, default_jobs() // jobs) if jobs else 1
    config = SweepConfig(epochs=epochs, threads=threads, train_eval_size=train_eval_size)
    ref = DataRef(str(batch_dir), info["md5s"], tuple(EXPECTED_COUNTS), VAL_SIZE, SPLIT_SEED)
    return seeds, jobs, config, ref, info


def _config_id(config, ref) -> str:
    """Names what makes two runs comparable (not threads or jobs, which change only speed)."""
    import hashlib
    ident = {"epochs": config.epochs, "batch_size": config.batch_size, "lr": config.lr,
             "md5s": ref.md5s, "val_size": ref.val_size, "split_seed": ref.split_seed}
    if config.train_eval_size:  # only the dropout experiment's runs measure it
        ident["train_eval_size"] = config.train_eval_size
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:12]


def _sweep_history(previous: Path, config_id: str, sweep: dict) -> list[dict]:
    """Every invocation that trained runs for this config (a resumed sweep has several), so the
    reported sweep time survives a later rerun that only redoes the analysis."""
    from pipeline import artifacts as A
    prev = A.read_json(previous, {}) if previous.exists() else {}
    history = []
    if prev.get("config", {}).get("config_id") == config_id:
        history = prev.get("sweeps") or ([prev["sweep"]] if prev.get("sweep") else [])
    if sweep["runs"]:
        history = [*history, {**sweep, "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}]
    return history


def _read_rows(path: Path) -> tuple[list[str] | None, list[dict]]:
    import csv
    if not path.exists():
        return None, []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


@task(help={"seeds": "seeds per variant (default 5; seeds 0..N-1)", **SWEEP_HELP,
            **DATA_HELP, "force": "retrain seeds already in summary.csv (all but the reference runs)"})
@user_errors
def seeds(c, seeds=5, epochs=20, jobs=None, scheduler=None, quiet=False, source=None,
          allow_unofficial_data=False, force=False):
    """Both LeNet variants over several seeds: summary.csv rows, mean, 95% CI, paired comparison."""
    from pipeline import ablation as AB
    from pipeline import artifacts as A
    from pipeline import stats
    from pipeline.errors import UserError
    from pipeline.model import VARIANTS, spec_name
    from pipeline.sweep import run_sweep, spec
    n, jobs, config, ref, info = _sweep_setup(seeds, epochs, jobs, source, allow_unofficial_data)
    out = ART / "lenet"
    summary_path = out / "summary.csv"
    if not summary_path.exists():
        raise UserError(f"{_rel(summary_path)} is missing; run `invoke train` first (seed 0 of each "
                        "variant is the reference run, with its logs and weights)")
    rows = A.read_csv(summary_path)

    def same_settings(r):
        return (int(r["epochs"]), int(r["batch_size"]), float(r["lr"])) == (config.epochs, config.batch_size, config.lr)
    names = {spec_name(v.preprocess, v.batch_norm, v.dropout > 0): k for k, v in VARIANTS.items()}
    # Seed 0 is the reference run of `invoke train` (with its logs, confusion matrix and weights);
    # the other seeds must use the same settings, or they are not repeats of it.
    for name in VARIANTS:
        if not any(r["variant"] == name and int(r["seed"]) == 0 and same_settings(r) for r in rows):
            raise UserError(f"{_rel(summary_path)} has no seed-0 run of {name} with {config.epochs} "
                            f"epochs, batch {config.batch_size}, lr {config.lr}; run `invoke train "
                            f"--epochs {config.epochs}` first")
    done = {(r["variant"], int(r["seed"])) for r in rows if same_settings(r)
            and not (force and int(r["seed"]) > 0)}
    todo = [spec(v.preprocess, v.batch_norm, v.dropout > 0, False, s) for s in range(n)
            for name, v in VARIANTS.items() if (name, s) not in done]

    def on_result(r):
        variant = names[spec_name(r["preprocess"], r["batch_norm"], r["dropout"])]
        row = {**r, "variant": variant, "batch_size": config.batch_size, "lr": config.lr,
               "official_data": info["official"]}
        nonlocal rows
        rows = sorted([x for x in rows if (x["variant"], int(x["seed"])) != (variant, r["seed"])] + [row],
                      key=lambda x: (x["variant"], int(x["seed"])))
        A.write_csv(summary_path, rows, SUMMARY_COLUMNS)

    print(f"seeds: {len(done)} runs already in {_rel(summary_path)}, {len(todo)} to train")
    sweep = run_sweep(todo, config, ref, on_result, scheduler=scheduler, jobs=jobs, progress=not quiet)
    rows = [r for r in A.read_csv(summary_path) if same_settings(r) and int(r["seed"]) < n]
    found = AB.seeds_summary(rows, list(VARIANTS))
    config_id = _config_id(config, ref)
    result = {"config": {"seeds": n, **asdict(config), "config_id": config_id}, **found,
              "level": stats.LEVEL, "sweeps": _sweep_history(out / "seeds.json", config_id, sweep)}
    per_variant = found["variants"]
    table = [{"variant": v, **{k: s[k] for k in AB.SEEDS_COLUMNS[1:]}} for v, s in per_variant.items()]
    paths = [summary_path, A.write_json(out / "seeds.json", result),
             A.write_csv(out / "seeds.csv", table, AB.SEEDS_COLUMNS)]
    A.record(ART, "seeds", config_id, paths,
             {"config": result["config"], "seeds": {"seeds": list(range(n)), "split_seed": SPLIT_SEED},
              "device": f"cpu ({config.threads} thread(s) per run)", "data": data_provenance(info)})
    for v, s in per_variant.items():
        print(f"seeds {v}: {100 * s['mean']:.2f}% +- {100 * s['std']:.2f} (n={s['n']}, 95% CI "
              f"{100 * s['ci_low']:.2f} to {100 * s['ci_high']:.2f})")
    p = result["paired"]
    a, b = p["a"], p["b"]
    print(f"seeds: {a} - {b} = {100 * p['mean']:+.2f} pp (95% CI {100 * p['ci_low']:+.2f} to "
          f"{100 * p['ci_high']:+.2f}, p = {p['p']:.2g}) -> {_rel(out / 'seeds.json')}")


@task(help={"seeds": "seeds per cell (default 3; seeds 0..N-1)", **SWEEP_HELP,
            "augment": "also the two homework models with crop + flip augmentation (default on)",
            **DATA_HELP, "force": "start over: retrain every run, ignoring runs.csv"})
@user_errors
def ablation(c, seeds=3, epochs=20, jobs=None, scheduler=None, augment=True, quiet=False,
             source=None, allow_unofficial_data=False, force=False):
    """Factorial ablation preprocess x BN x dropout over seeds on Dask: runs, effects, plots."""
    from pipeline import ablation as AB
    from pipeline import artifacts as A
    from pipeline import plots as P
    from pipeline import stats
    from pipeline.sweep import run_sweep
    n, jobs, config, ref, info = _sweep_setup(seeds, epochs, jobs, source, allow_unofficial_data)
    out = ART / "ablation"
    runs_path = out / "runs.csv"
    config_id = _config_id(config, ref)
    header, raw_rows = _read_rows(runs_path)
    rows, problems = AB.read_runs(header, raw_rows, config_id)
    for problem in problems:
        print(f"ablation: {_rel(runs_path)} {problem}", file=sys.stderr)
    if problems:  # keep the file as it was, for a look; the rewrite below drops the bad lines
        shutil.copyfile(runs_path, runs_path.with_name("runs.rejected.csv"))
    if force:
        rows = []
    done = {AB.key_of(r) for r in rows}
    todo = [s for s in AB.design(n, augment) if AB.key_of(s) not in done]

    def save():
        rows.sort(key=AB.key_of)
        return A.write_csv(runs_path, rows, AB.RUN_COLUMNS)

    def on_result(r):
        rows.append({**r, "config": config_id})
        save()

    if problems or force:
        save()
    print(f"ablation: {len(done)} runs already in {_rel(runs_path)}, {len(todo)} to train")
    sweep = run_sweep(todo, config, ref, on_result, scheduler=scheduler, jobs=jobs, progress=not quiet)
    found = AB.analyse(rows, n, augment)
    used, effects, cells = found["used"], found["effects"], found["cells"]
    summary = {"config": {"seeds": n, "augment": augment, **asdict(config), "config_id": config_id},
               "factors": {k: list(v) for k, v in AB.FACTORS.items()}, "response": AB.RESPONSE,
               "level": stats.LEVEL, "runs": len(used),
               "sweeps": _sweep_history(out / "summary.json", config_id, sweep),
               "sum_train_seconds": sum(r["train_seconds"] for r in used),
               "augmentation": found["augmentation"], "published_source": AB.PUBLISHED_SOURCE,
               "conclusion": found["conclusion"],
               "rejected_lines": problems}
    paths = [save(), A.write_csv(out / "effects.csv", effects, AB.EFFECT_COLUMNS),
             A.write_csv(out / "cells.csv", cells, AB.CELL_COLUMNS),
             A.write_json(out / "summary.json", summary)]
    for name, fig in P.ablation_figures(used, effects, AB.FACTORS).items():
        for ext in ("png", "svg"):
            paths.append(A.write_bytes(out / f"{name}.{ext}", P.to_bytes(fig, ext)))
    A.record(ART, "ablation", config_id, paths,
             {"config": summary["config"], "seeds": {"seeds": list(range(n)), "split_seed": SPLIT_SEED},
              "device": f"cpu ({config.threads} thread(s) per run)", "data": data_provenance(info)})
    minutes = sum(x["wall_seconds"] for x in summary["sweeps"]) / 60
    print(f"ablation: {len(used)} runs, sweep {minutes:.1f} min in {len(summary['sweeps'])} "
          f"invocation(s) -> {_rel(out)}")
    for line in summary["conclusion"]:
        print(f"  {line}")


@task(help={"seeds": "seeds per dropout probability (default 3; seeds 0..N-1)",
            "probs": "comma-separated dropout probabilities (default 0,0.25,0.5,0.75)", **SWEEP_HELP,
            **DATA_HELP, "force": "start over: retrain every run"})
@user_errors
def dropout(c, seeds=3, probs=None, epochs=20, jobs=None, scheduler=None, quiet=False, source=None,
            allow_unofficial_data=False, force=False):
    """CS182 5(c): model 1 with dropout p in {0, .25, .5, .75} over seeds: curves and the gap."""
    from pipeline import artifacts as A
    from pipeline import dropout as DO
    from pipeline import plots as P
    from pipeline import stats
    from pipeline.sweep import run_sweep
    p_values = DO.check_p_values(str(probs).split(",")) if probs is not None else DO.P_VALUES
    n, jobs, config, ref, info = _sweep_setup(seeds, epochs, jobs, source, allow_unofficial_data,
                                              train_eval_size=DO.TRAIN_EVAL_SIZE)
    out = ART / "cs182" / "dropout"
    config_id = _config_id(config, ref)
    runs_path, curves_path = out / "runs.csv", out / "curves.csv"
    runs, curves = ([], []) if force else DO.read_rows(_read_rows(runs_path)[1], _read_rows(curves_path)[1],
                                                        config_id, config.epochs)
    done = {(r["p"], r["seed"]) for r in runs}
    todo = [s for s in DO.design(n, p_values) if (s["dropout"], s["seed"]) not in done]

    def save():  # curves first: a run counts as done only once runs.csv lists it
        runs.sort(key=lambda r: (r["p"], r["seed"]))
        curves.sort(key=lambda r: (r["p"], r["seed"], r["epoch"]))
        return [A.write_csv(curves_path, curves, DO.CURVE_COLUMNS),
                A.write_csv(runs_path, runs, DO.RUN_COLUMNS)]

    def on_result(result):
        run, rows = DO.run_rows(result, config_id)
        runs.append(run)
        curves.extend(rows)
        save()

    print(f"dropout: {len(done)} runs already in {_rel(runs_path)}, {len(todo)} to train")
    sweep = run_sweep(todo, config, ref, on_result, scheduler=scheduler, jobs=jobs, progress=not quiet)
    wanted = {(p_, s) for p_ in p_values for s in range(n)}
    used = [r for r in runs if (r["p"], r["seed"]) in wanted]
    summary = DO.summarise(used)
    result = {"config": {"seeds": n, "p_values": list(p_values), "preprocess": DO.PREPROCESS,
                         "batch_norm": DO.BATCH_NORM, **asdict(config), "config_id": config_id},
              "variants": {f"{p_:g}": DO.variant_of(p_) for p_ in p_values}, "level": stats.LEVEL,
              "runs": len(used), "summary": summary, "conclusion": DO.conclusion(summary),
              "repeat_of_ablation": DO.repeat_of_ablation(
                  used, _read_rows(ART / "ablation" / "runs.csv")[1]) if config.epochs == 20 else None,
              "sweeps": _sweep_history(out / "summary.json", config_id, sweep),
              "sum_train_seconds": sum(r["train_seconds"] for r in used)}
    fig = P.dropout_figure([c_ for c_ in curves if (c_["p"], c_["seed"]) in wanted], summary)
    paths = [*save(), A.write_csv(out / "summary.csv", summary, DO.SUMMARY_COLUMNS),
             A.write_json(out / "summary.json", result)]
    paths += [A.write_bytes(out / f"{P.DROPOUT_CURVES}.{ext}", P.to_bytes(fig, ext)) for ext in ("png", "svg")]
    A.record(ART, "dropout", config_id, paths,
             {"config": result["config"], "seeds": {"seeds": list(range(n)), "split_seed": SPLIT_SEED},
              "device": f"cpu ({config.threads} thread(s) per run)", "data": data_provenance(info)})
    for s_ in summary:
        print(f"dropout p={s_['p']:g}: train {100 * s_['train_eval_accuracy']:.2f}% val "
              f"{100 * s_['val_accuracy']:.2f}% gap {100 * s_['gap']:.2f} pp test {100 * s_['test_accuracy']:.2f}%")
    for line in result["conclusion"]:
        print(f"  {line}")


def _recorded(path: Path) -> dict | None:
    """Commit and time of an artifact as the manifest recorded them."""
    from pipeline import artifacts as A
    entry = A.read_json(ART / "manifest.json", {}).get("artifacts", {}).get(path.relative_to(ART).as_posix())
    return {k: entry[k] for k in ("commit", "dirty", "timestamp")} if entry else None


def _own_log_figure(log: list[dict]) -> list[Path]:
    """The own CNN's training log as a figure, artifacts/own_cnn/own_cnn_log.{png,svg}
    (drawn by train-own after its run, and by plots from the log.csv it wrote)."""
    from pipeline import artifacts as A
    from pipeline import plots as P
    rows = [{k: float(v) for k, v in r.items()} for r in log]
    fig = P.own_log_figure(rows)
    return [A.write_bytes(ART / "own_cnn" / f"{P.OWN_LOG}.{ext}", P.to_bytes(fig, ext)) for ext in ("png", "svg")]


def _own_arrays(raw: dict, splits=("train", "val", "test")) -> dict:
    """The splits the own CNN sees, per-channel standardised with training statistics."""
    from pipeline.preprocess import preprocess
    (x_tr, x_va, x_te), _ = preprocess(raw["x_train"], raw["x_val"], raw["x_test"], mode="per_channel")
    arrays = {"x_train": x_tr, "y_train": raw["y_train"], "x_val": x_va, "y_val": raw["y_val"],
              "x_test": x_te, "y_test": raw["y_test"]}
    return {k: v for k, v in arrays.items() if k.split("_")[1] in splits}


@task(name="train-own",
      help={"search": "run the hyperparameter search (validation only) instead of the final run",
            "epochs": "epochs of the final run (default: as many as fit the budget, from the search)",
            "device": "auto (cuda, then mps, then cpu), cpu, cuda or mps",
            **DATA_HELP, **FORCE_HELP})
@user_errors
def train_own(c, search=False, epochs=None, device="auto", source=None,
              allow_unofficial_data=False, force=False):
    """CS182 5(d): our own CNN. --search tries configurations on validation data; without it,
    train the chosen one and report test accuracy once -> artifacts/own_cnn/."""
    from pipeline import artifacts as A
    from pipeline import own_cnn as O
    from pipeline import plots as P
    from pipeline.errors import UserError
    from pipeline.train import device_description, select_device
    dev = select_device(device)
    epochs = _parse(epochs, int, "--epochs")
    out = ART / "own_cnn"
    raw, info = load_dataset(source, allow_unofficial_data)
    code = _code("data", "preprocess", "train", "own_cnn")
    if search:
        arrays = _own_arrays(raw, ("train", "val"))  # the test set is not even loaded
        path = out / "search.csv"
        rows = [r for r in (A.read_csv(path) if path.exists() and not force else [])
                if r.get("data_md5") == info["md5s"]["data_batch_1"]]
        for stage in range(len(O.SEARCH)):
            earlier = [r for r in rows if r["trial"] in {t for st in O.SEARCH[:stage] for t in st}]
            for trial, overrides in O.stage_trials(stage, earlier).items():
                config = replace(O.OwnConfig(device=device), **overrides)
                done = [r for r in rows if r["trial"] == trial]
                if done and O.overrides_of(done[0]) == O.overrides_of(O.search_row(config, {})):
                    continue  # resumable: a trial already run with these settings is kept
                rows = [r for r in rows if r["trial"] != trial]
                print(f"search stage {stage + 1} {trial}: {O.describe(asdict(config))}")
                try:
                    result = O.fit(config, arrays, dev)
                except FloatingPointError as e:  # a learning rate too high diverges: a result, not a crash
                    print(f"search {trial}: diverged ({e}); recorded with validation accuracy 0")
                    result = {"final": {"val_accuracy": 0.0, "train_seconds": 0.0},
                              "params": O.count_params(O.OwnCNN(config.widths))}
                f = result["final"]
                rows.append({"trial": trial, **O.search_row(config, overrides), "val_accuracy": f["val_accuracy"],
                             "train_seconds": f["train_seconds"], "params": result["params"],
                             "device": device_description(dev), "data_md5": info["md5s"]["data_batch_1"]})
                A.write_csv(path, rows, O.SEARCH_COLUMNS)  # after every trial: resumable
                print(f"search {trial}: val {f['val_accuracy']:.2%} in {f['train_seconds']:.0f} s")
        chosen = O.choose(rows)
        paths = [A.write_csv(path, rows, O.SEARCH_COLUMNS),
                 A.write_json(out / "chosen.json", chosen)]
        A.record(ART, "own_search", A.task_key({"search": O.SEARCH, "md5s": info["md5s"]}, code), paths,
                 {"config": {"stages": O.SEARCH, "trial_epochs": O.TRIAL_EPOCHS, "base": asdict(O.OwnConfig())},
                  "seeds": {"seed": O.OwnConfig().seed, "split_seed": SPLIT_SEED},
                  "device": device_description(dev), "data": data_provenance(info)})
        print(f"search: chose {chosen['trial']} (val {chosen['val_accuracy']:.2%}) -> {_rel(out / 'chosen.json')}")
        return
    chosen = A.read_json(out / "chosen.json", None)
    if chosen is None:
        raise UserError(f"{_rel(out / 'chosen.json')} is missing; run `invoke train-own --search` first")
    config = replace(O.OwnConfig(device=device), **{
        **O.overrides_of(chosen), "epochs": epochs if epochs is not None else int(chosen["final_epochs"])})
    key = A.task_key({"config": asdict(config), "md5s": info["md5s"], "split": info["split"]}, code)
    if not force and A.is_up_to_date(ART, "train_own", key):
        print("train-own: up to date (use --force to retrain)")
        return
    print(f"train-own: {O.describe(asdict(config))} on {device_description(dev)}")
    result = O.fit(config, _own_arrays(raw), dev)
    f = result["final"]
    row = {"variant": "own_cnn", "seed": config.seed, "epochs": config.epochs,
           "preprocess": "per_channel", "batch_size": config.batch_size, "lr": config.lr,
           "test_accuracy": f["test_accuracy"], "test_loss": f["test_loss"],
           "best_val_accuracy": f["val_accuracy"], "best_val_epoch": config.epochs,
           "final_train_loss": f["final_train_loss"], "final_train_accuracy": f["final_train_accuracy"],
           "train_seconds": f["train_seconds"], "eval_seconds": f["eval_seconds"],
           "images_per_second": f["images_per_second"], "params": result["params"],
           "device": device_description(dev), "official_data": info["official"]}
    # Every earlier final run stays on record: the test set is used once per final run, and a
    # reader should see all of them, not only the last.
    previous = A.read_json(out / "metrics.json", None) if (out / "metrics.json").exists() else None
    history = (previous or {}).get("history", [])
    if previous and "final" in previous:
        history = [*history, {"config": previous["config"], "chosen_trial": previous["chosen"]["trial"],
                              "test_accuracy": previous["final"]["test_accuracy"],
                              "val_accuracy": previous["final"]["val_accuracy"],
                              "train_seconds": previous["final"]["train_seconds"],
                              "device": previous["device"],
                              "recorded": previous.get("recorded") or _recorded(out / "metrics.json")}]
    metrics = {"config": asdict(config), "chosen": chosen, "final": f, "params": result["params"],
               "device": device_description(dev), "budget_seconds": O.BUDGET_SECONDS,
               "budget_share": O.BUDGET_SHARE, "budget_used": f["train_seconds"] / O.BUDGET_SECONDS,
               "within_budget": f["train_seconds"] <= O.BUDGET_SECONDS, "data": data_provenance(info),
               "recorded": {**A.git_state(), "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
               "history": history}
    paths = [A.write_csv(out / "summary.csv", [row], SUMMARY_COLUMNS),
             A.write_csv(out / "log.csv", result["log"]),
             A.write_json(out / "metrics.json", metrics),
             _write_predictions(out / "predictions.csv", raw["y_test"], result["test_predictions"]),
             A.write_torch(out / "weights.pt", result["state_dict"])]
    paths += _own_log_figure(result["log"])
    A.record(ART, "train_own", key, paths,
             {"config": asdict(config), "seeds": {"seed": config.seed, "split_seed": SPLIT_SEED},
              "device": device_description(dev), "data": data_provenance(info)})
    print(f"train-own: test accuracy {f['test_accuracy']:.2%} (val {f['val_accuracy']:.2%}), "
          f"{f['train_seconds']:.0f} s training ({f['train_seconds'] / 60:.1f} min), "
          f"{result['params']:,} parameters -> {_rel(out)}")


# --- plots, answers, docs ------------------------------------------------------------------

@task(help=FORCE_HELP)
@user_errors
def plots(c, force=False):
    """Render learning curves, confusion matrices and the sample grid from artifacts/."""
    import numpy as np
    import pandas as pd

    from pipeline import artifacts as A
    from pipeline import plots as P
    from pipeline.errors import UserError
    summary = ART / "lenet" / "summary.csv"
    dataset = ART / "data" / "dataset.json"
    samples = CACHE / SAMPLES
    for p in (summary, dataset, samples):
        if not p.exists():
            raise UserError(f"{_rel(p)} is missing; run `invoke data` and `invoke train` first")
    variants = list(dict.fromkeys(r["variant"] for r in A.read_csv(summary)))
    inputs = [summary, dataset, samples]
    for v in variants:
        inputs += [ART / "lenet" / v / "log.csv", ART / "lenet" / v / "confusion.csv",
                   ART / "lenet" / v / "predictions.csv"]
    own_log = ART / "own_cnn" / "log.csv"  # `invoke train-own`'s, when it has run
    if own_log.exists():
        inputs.append(own_log)
    key = A.task_key({"variants": variants}, _code("plots"), inputs)
    if not force and A.is_up_to_date(ART, "plots", key):
        print("plots: up to date (use --force to redo)")
        return
    info = A.read_json(dataset)
    classes = info["classes"]
    logs = {v: pd.read_csv(ART / "lenet" / v / "log.csv") for v in variants}
    cms = {v: pd.read_csv(ART / "lenet" / v / "confusion.csv", index_col=0).to_numpy()
           for v in variants}
    with np.load(samples) as s:
        images, labels, indices = s["images"][:24], s["labels"][:24], s["indices"][:24]
    preds = {v: pd.read_csv(ART / "lenet" / v / "predictions.csv")
             .set_index("index").loc[indices, "prediction"].to_numpy() for v in variants}
    paths = []
    for name, fig in P.figures(logs, cms, classes, images, labels, preds).items():
        for ext in ("png", "svg"):
            paths.append(A.write_bytes(ART / "plots" / f"{name}.{ext}", P.to_bytes(fig, ext)))
    if own_log.exists():
        paths += _own_log_figure(A.read_csv(own_log))
    A.record(ART, "plots", key, paths, {"config": {"variants": variants}, "seeds": {},
                                        "device": None, "data": data_provenance(info)})
    print(f"plots: {len(paths)} files -> {_rel(ART / 'plots')}")


@task(help=FORCE_HELP)
@user_errors
def answers(c, force=False):
    """Compute the written-question answers into artifacts/answers.json."""
    from pipeline import artifacts as A
    from pipeline.answers import compute_all
    code = sorted((PIPELINE / "answers").glob("*.py"))
    key = A.task_key({}, code)
    if not force and A.is_up_to_date(ART, "answers", key):
        print("answers: up to date (use --force to redo)")
        return
    result = compute_all()
    paths = [A.write_json(ART / "answers.json", result)]
    try:
        from pipeline.answers.figures import figures
    except ImportError:
        figures = None
    if figures is not None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        for name, fig in figures(result).items():
            path = ART / "answers" / f"{name}.png"
            with A.atomic_path(path) as tmp:
                fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight",
                            metadata={"Software": None})
            plt.close(fig)
            paths.append(path)
    A.record(ART, "answers", key, paths, {"config": {}, "seeds": {}, "device": None,
                                          "data": None})
    print(f"answers: {len(result)} answers -> {_rel(ART / 'answers.json')}")


@task(help={"strict": "fail on any warning (default true)", "site_dir": "output folder"})
def docs(c, strict=True, site_dir="site"):
    """Build the site with MkDocs (reads artifacts/ only; a missing artifact fails the build)."""
    # Material >= 9.7 prints an end-of-life banner about MkDocs 2 on every build; not ours to fix.
    c.run(f"{sys.executable} -m mkdocs build {'--strict' if strict else ''} -d {site_dir}",
          pty=False, env={"NO_MKDOCS_2_WARNING": "1"})


@task(help={"port": "port to serve on (127.0.0.1)"})
def serve(c, port=8000):
    """Preview the site with live reload at http://127.0.0.1:PORT/."""
    c.run(f"{sys.executable} -m mkdocs serve -a 127.0.0.1:{port}", pty=False,
          env={"NO_MKDOCS_2_WARNING": "1"})


# --- layers: CS182's NumPy layers ----------------------------------------------------------

@task(help=FORCE_HELP)
@user_errors
def layers(c, force=False):
    """Gradient-check the CS182 NumPy layers, time the convolutions, draw the batch-norm graph."""
    from pipeline import artifacts as A
    from pipeline import gradcheck as G
    from pipeline import numpy_bench
    from pipeline import plots as P
    from pipeline.errors import UserError
    out = ART / "cs182"
    config = {"seed": G.SEED, "threshold": G.GRADCHECK_THRESHOLD, "torch_threshold": G.TORCH_THRESHOLD}
    key = A.task_key(config, _code("numpy_layers", "gradcheck", "numpy_bench"))
    if not force and A.is_up_to_date(ART, "layers", key):
        print("layers: up to date (use --force to redo)")
        return
    rows = G.gradient_checks(G.SEED)
    failed = [f"{r['backward']} {r['gradient']}" for r in rows if not r["passed"]]
    if failed:  # nothing is written: the site must never show a failing check as a result
        raise UserError(f"{len(failed)} gradient check(s) failed ({', '.join(failed)}); fix "
                        "pipeline/numpy_layers.py until tests/test_numpy_layers.py passes, then rerun.")
    timings = numpy_bench.conv_timings()
    paths = [A.write_csv(out / "gradchecks.csv", rows, G.COLUMNS),
             A.write_json(out / "conv_timings.json", timings)]
    fig = G.bn_graph_figure()
    for ext in ("svg", "png"):
        paths.append(A.write_bytes(out / f"bn_graph.{ext}", P.to_bytes(fig, ext)))
    A.record(ART, "layers", key, paths,
             {"config": {**config, "conv": timings["shape"], "repeats": timings["repeats"]},
              "seeds": {"seed": G.SEED}, "device": f"cpu ({timings['torch_threads']} torch threads)",
              "data": None})
    print(f"layers: {len(rows)} gradient checks passed; conv forward + backward im2col "
          f"{timings['im2col_s']:.3f} s, torch {timings['torch_s']:.3f} s, naive "
          f"{timings['naive_s']:.1f} s -> {_rel(out)}")


@task(help={**FORCE_HELP, "images": "how many test images to show (each of another class)"})
@user_errors
def filters(c, images=6, force=False):
    """CS182 question 4: hand-designed blur and Sobel filters on CIFAR-10 test images, checked
    against torch, with their frequency responses -> artifacts/cs182/filters*."""
    import numpy as np

    from pipeline import artifacts as A
    from pipeline import filters as FI
    from pipeline import plots as P
    from pipeline.data import CLASSES
    from pipeline.errors import UserError
    images = _parse(images, int, "--images")
    if not 1 <= images <= len(CLASSES):
        raise UserError(f"--images must be between 1 and {len(CLASSES)}, got {images}")
    samples, dataset = CACHE / SAMPLES, ART / "data" / "dataset.json"
    if not samples.exists() or not dataset.exists():
        raise UserError(f"{_rel(samples)} or {_rel(dataset)} is missing; run `invoke data` first")
    with np.load(samples) as npz:
        x, y, idx = npz["images"], npz["labels"], npz["indices"]
    info = A.read_json(dataset)
    key = A.task_key({"images": images, "md5s": info["md5s"]}, _code("filters", "numpy_layers", "plots"))
    out = ART / "cs182"
    if not force and A.is_up_to_date(ART, "filters", key):
        print("filters: up to date (use --force to redo)")
        return
    first = [int(np.flatnonzero(y == k)[0]) for k in dict.fromkeys(y.tolist())][:images]  # one per class
    if len(first) < images:
        raise UserError(f"the {len(y)} cached test images hold only {len(first)} classes; "
                        f"rerun `invoke data --samples N` with a larger N")
    chosen = x[first]
    outputs = FI.apply_filters(chosen)
    diffs = FI.check(chosen)
    if max(diffs.values()) > FI.TOLERANCE:
        raise UserError(f"our NumPy filters differ from torch's conv2d by {max(diffs.values()):.2g} "
                        f"(more than {FI.TOLERANCE:g}); nothing written")
    responses = {name: FI.frequency_response(k) for name, k in FI.KERNELS.items()}
    result = {"kernels": {k: v.tolist() for k, v in FI.KERNELS.items()},
              "kernel_sums": {k: float(v.sum()) for k, v in FI.KERNELS.items()},
              "test_indices": [int(idx[i]) for i in first], "classes": [CLASSES[int(y[i])] for i in first],
              "max_abs_diff_vs_torch": diffs, "tolerance": FI.TOLERANCE,
              "response_at_zero": {k: float(r[r.shape[0] // 2, r.shape[1] // 2]) for k, r in responses.items()},
              "response_max": {k: float(r.max()) for k, r in responses.items()},
              "response_at_nyquist": {k: float(r[0, 0]) for k, r in responses.items()},
              "high_frequency_energy": {
                  "cutoff": FI.CUTOFF,
                  "blur": FI.energy_kept(outputs["original"], outputs["blur"], FI.CUTOFF),
                  "edges": FI.energy_kept(FI.to_grey(chosen), outputs["magnitude"], FI.CUTOFF)}}
    paths = [A.write_json(out / "filters.json", result),
             A.write_bytes(out / f"{P.FILTERS_IMAGES}.png",
                           P.to_bytes(P.filters_figure(outputs, result["classes"]), "png")),
             A.write_bytes(out / f"{P.FILTERS_RESPONSE}.png",
                           P.to_bytes(P.frequency_figure(responses), "png"))]
    A.record(ART, "filters", key, paths,
             {"config": {"images": images}, "seeds": None, "device": "cpu (NumPy)",
              "data": data_provenance(info)})
    print(f"filters: blur and Sobel on {images} test images; largest difference from torch "
          f"{max(diffs.values()):.1e} -> {_rel(out)}")


# --- bench, test, clean, all ---------------------------------------------------------------

@task(help={"images": "training images per timed epoch",
            "repeats": "timed epochs per loop and variant (medians are reported)",
            **DATA_HELP})
@user_errors
def bench(c, images=12800, repeats=5, source=None, allow_unofficial_data=False):
    """Throughput of our training loop vs the plain DataLoader loop; writes artifacts/bench.json."""
    from pipeline import artifacts as A
    from pipeline import bench as B
    from pipeline.model import VARIANTS
    from pipeline.preprocess import preprocess
    from pipeline.train import TrainConfig
    raw, info = load_dataset(source, allow_unofficial_data)
    results = {}
    for v in VARIANTS:
        config = TrainConfig(variant=v)
        (x,), _ = preprocess(raw["x_train"][:images], mode=config.preprocess)
        results[v] = B.compare_loops(config, x, raw["y_train"][:images], repeats=repeats,
                                     log=print)
    report = B.report(results, images=images, repeats=repeats)
    from pipeline import numpy_bench
    # CS182: our NumPy im2col convolution against torch's on the CIFAR-sized layer (issue 5)
    report["conv"] = numpy_bench.conv_timings(repeats=repeats)
    report["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    path = A.write_json(ART / "bench.json", report)
    A.record(ART, "bench", A.task_key(report, []), [path],
             {"config": {"images": images, "repeats": repeats}, "seeds": {},
              "device": report["device"], "data": data_provenance(info)})
    for v, r in report["variants"].items():
        print(f"bench {v}: ours {r['ours_images_per_second']:.0f} img/s, plain "
              f"{r['plain_images_per_second']:.0f} img/s, ratio {r['ratio']:.2f}x")
    t = report["conv"]
    print(f"bench conv {tuple(t['shape']['x'])} x {tuple(t['shape']['w'])}, forward + backward: im2col "
          f"{t['im2col_s']:.4f} s, torch {t['torch_s']:.4f} s ({t['im2col_over_torch']:.2f}x), naive "
          f"{t['naive_s']:.1f} s")


@task(help={"browser": "also run the browser tests of the built site (needs chromium)",
            "k": "only tests matching this pytest -k expression"})
def test(c, browser=True, k=None):
    """Run the test suite (pytest)."""
    args = [] if browser else ["-m", "'not browser'"]
    if k:
        args += ["-k", f"'{k}'"]
    c.run(f"{sys.executable} -m pytest -q {' '.join(args)}", pty=False)


@task(name="test-site")
def test_site(c):
    """Build the site and check it in Chromium: links, images, math, no outside requests."""
    c.run(f"{sys.executable} -m pytest -q tests/test_site.py tests/test_browser.py", pty=False)


@task(help={"artifacts": "also remove artifacts/ (the committed reference run; git restores it)"})
def clean(c, artifacts=False):
    """Remove generated files (site/, build/, caches); never the downloaded data/."""
    targets = [ROOT / "site", ROOT / "build", ROOT / ".pytest_cache", ROOT / ".hypothesis"]
    for p in targets + ([ART] if artifacts else []):
        if p.exists():
            shutil.rmtree(p)
            print(f"removed {_rel(p)}")
    for p in ROOT.rglob("__pycache__"):
        if CACHE not in p.parents:
            shutil.rmtree(p, ignore_errors=True)


@task(name="all", help={**DATA_HELP, **FORCE_HELP,
                        "device": "auto (cuda, then mps, then cpu), cpu, cuda or mps"})
@user_errors
def all_(c, source=None, allow_unofficial_data=False, device="auto", force=False):
    """Everything: data -> train both variants -> plots -> answers -> layers -> filters -> site; times
    each stage. The site also reads `invoke seeds`, `ablation`, `dropout` and `train-own`, which
    take longer (10-75 min each on 2 cores) and are run by hand; their artifacts are committed."""
    stages = [
        ("data", lambda: data(c, source=source, allow_unofficial_data=allow_unofficial_data,
                              force=force)),
        ("train", lambda: train(c, device=device, source=source, quiet=True,
                                allow_unofficial_data=allow_unofficial_data, force=force)),
        ("plots", lambda: plots(c, force=force)),
        ("answers", lambda: answers(c, force=force)),
        ("layers", lambda: layers(c, force=force)),
        ("filters", lambda: filters(c, force=force)),
        ("docs", lambda: docs(c)),
    ]
    timings, start = {}, time.perf_counter()
    for name, run in stages:
        t0 = time.perf_counter()
        run()
        timings[name] = round(time.perf_counter() - t0, 2)
    timings["total"] = round(time.perf_counter() - start, 2)
    from pipeline import artifacts as A
    A.write_json(ART / "timings.json", {"seconds": timings, "forced": force,
                                        **A.git_state()})
    print("all: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    print(json.dumps(timings))


# --- deploy (by hand, never in CI) ---------------------------------------------------------

@task(help={"remote": "git remote to push the site to (needs push rights; default origin)",
            "branch": "branch GitHub Pages serves the site from (default gh-pages)",
            "dry_run": "print the commit and the mkdocs gh-deploy command, run nothing"})
def deploy(c, remote="origin", branch="gh-pages", dry_run=False):
    """Build the site strictly and publish it to GitHub Pages (mkdocs gh-deploy) from HEAD."""
    import shlex

    def git(args):
        return c.run(f"git {args}", hide=True, warn=True, pty=False)

    head = git("rev-parse HEAD")
    if not head.ok:
        raise Exit("error: not a git repository (or git is missing); deploy publishes a commit, "
                   "so run it in a clone of the repository.", code=1)
    commit = head.stdout.strip()
    # The site's "How to cite" block names the commit it was built from, so the published site
    # must be exactly that commit: uncommitted changes to tracked files (code, artifacts/, docs/)
    # are refused; untracked files are ignored (MkDocs reads only what mkdocs.yml and docs/ name).
    changed = git("status --porcelain --untracked-files=no").stdout.splitlines()
    problems = []
    if changed:
        problems.append(f"{len(changed)} tracked file(s) have uncommitted changes "
                        f"(first: {changed[0][3:]}); commit or stash them, since the published "
                        f"site must correspond to a commit")
    if not git(f"remote get-url {shlex.quote(remote)}").ok:
        problems.append(f"there is no git remote {remote!r}; add one (git remote add {remote} URL) "
                        f"or pass --remote NAME")
    # --force and --no-history: gh-pages holds only the latest build (one commit), so old sites
    # do not pile up in the repository; the default commit message names the source commit.
    cmd = (f"{sys.executable} -m mkdocs gh-deploy --strict --force --no-history "
           f"--remote-name {shlex.quote(remote)} --remote-branch {shlex.quote(branch)}")
    if dry_run:
        print(f"deploy: would publish commit {commit} to {remote}/{branch}")
        for p in problems:
            print(f"deploy: note: {p}")
        print(cmd)
        return
    if problems:
        raise Exit(f"error: {problems[0]}.", code=1)
    print(f"deploy: publishing commit {commit} to {remote}/{branch}")
    c.run(cmd, pty=False, env={"NO_MKDOCS_2_WARNING": "1"})
