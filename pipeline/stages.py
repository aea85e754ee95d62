"""The stages behind the invoke tasks: each takes settings and inputs and returns
`{artifact path: content}` for the store to write (pipeline/store.py), plus what the task prints.

tasks.py parses flags, calls one function here and writes through the store. Policies that
decide what a stage does (which runs are the reference, what a sweep still has to train, the
own-CNN search and its budget, the seeds' row checks) live here, with tests.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict
from pathlib import Path

from pipeline import contract
from pipeline.errors import UserError
from pipeline.store import REPO

EXPECTED_COUNTS = (50000, 10000)      # CIFAR-10's train / test sizes; tests use a tiny archive
VAL_SIZE, SPLIT_SEED = 5000, 0        # the 45,000 / 5,000 train / validation split, fixed by seed
CACHE = REPO / "data"
SAMPLES = "test_samples.npz"          # raw test images for the sample grid: data, never committed

def code_files(stage: str) -> list[Path]:
    """The code whose contents make up `stage`'s key, relative to the repository: read off the
    import graph from the stage's invoke task (pipeline/deps.py), never listed by hand."""
    from pipeline import deps
    return deps.code_files(stage, REPO)


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# --- data ------------------------------------------------------------------------------------

def load_dataset(source=None, allow_unofficial_data=False, cache_dir: Path = CACHE):
    """Locate, verify and load CIFAR-10, then split it. Returns (arrays, info): x_train/y_train
    (the 45,000), x_val/y_val, x_test/y_test as uint8 HWC / int64."""
    from pipeline import data
    batch_dir, info = data.prepare(source, allow_unofficial_data, cache_dir=cache_dir)
    arrays, split = data.split_arrays(*data.load_data(batch_dir, expected_counts=EXPECTED_COUNTS),
                                      val_size=VAL_SIZE, seed=SPLIT_SEED)
    return arrays, {**info, "batch_dir": str(batch_dir), "split": split}


def data_provenance(info: dict) -> dict:
    """The part of the data info every artifact records."""
    return {k: info[k] for k in ("source", "official", "md5s", "mismatched")}


def data_key_config(info: dict) -> dict:
    """The data part of a stage key: the files' md5s and how they are split (known before the
    data is loaded, so an up-to-date stage never loads it)."""
    return {"md5s": info["md5s"], "val_size": VAL_SIZE, "split_seed": SPLIT_SEED}


ARRAYS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


def arrays_digest(arrays: dict) -> str:
    """sha256 of the split arrays (dtype, shape and bytes of each, in ARRAYS order): what the
    training stages see of the data, whatever code loaded it."""
    import numpy as np
    h = hashlib.sha256()
    for k in ARRAYS:
        a = np.ascontiguousarray(arrays[k])
        h.update(f"{k}:{a.dtype.str}:{a.shape}".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def recorded_digest(dataset: dict | None, info: dict) -> str | None:
    """The arrays digest dataset.json recorded, if it describes these files split this way."""
    if not dataset or dataset.get("md5s") != info["md5s"] or dataset.get("split", {}).get("seed") != SPLIT_SEED:
        return None
    if dataset.get("counts", {}).get("val") != VAL_SIZE:
        return None
    return dataset.get("arrays_sha256")


def dataset_json(arrays: dict, info: dict) -> dict:
    from pipeline import data as D
    return {"source": info["source"], "official": info["official"], "md5s": info["md5s"],
            "official_md5s": D.OFFICIAL_MD5S, "mismatched": info["mismatched"],
            "classes": list(D.CLASSES), "image_shape": [32, 32, 3],
            "counts": {k: int(len(arrays[f"y_{k}"])) for k in ("train", "val", "test")},
            "class_counts": {k: D.class_counts(arrays[f"y_{k}"]) for k in ("train", "val", "test")},
            "split": info["split"], "arrays_sha256": arrays_digest(arrays)}


# --- train: the reference and other runs -------------------------------------------------------

def settings_of(config) -> dict:
    return {k: getattr(config, k) for k in contract.REFERENCE}


def run_folder(settings: dict) -> str | None:
    """None for the reference settings (they go to artifacts/); otherwise the folder under
    build/runs/ named by what differs, e.g. "epochs1-lr0.01" or "smoke"."""
    # repr of a float is its shortest exact form: lr 0.0012345678 and 0.0012345679 get two folders
    # (`:g` rounded both to 0.00123457, and one run overwrote the other)
    differ = [f"{k}{settings[k]!r}" if isinstance(settings[k], float) else f"{k}{settings[k]}"
              for k in contract.REFERENCE if k != "smoke" and settings[k] != contract.REFERENCE[k]]
    return "-".join((["smoke"] if settings.get("smoke") else []) + differ) or None


def train_key_config(config, info: dict, digest: str) -> dict:
    """A run's key config: its settings and the arrays it trains on (their digest), not the device
    name ('auto' resolves per machine; a rerun on another device is what `invoke verify` compares)."""
    return {"config": {k: v for k, v in asdict(config).items() if k != "device"},
            "md5s": info["md5s"], "arrays_sha256": digest}


def predictions_rows(labels, predictions) -> list[dict]:
    return [{"index": i, "label": int(y), "prediction": int(p)}
            for i, (y, p) in enumerate(zip(labels, predictions))]


def summary_row(config, result: dict, info: dict) -> dict:
    return {"variant": config.variant, "seed": config.seed, "preprocess": config.preprocess,
            "batch_size": config.batch_size, "lr": config.lr, "device": result["device"],
            "official_data": info["official"], **result["final"]}


def merge_rows(rows: list[dict], new: dict) -> list[dict]:
    """rows with `new` replacing the row of the same (variant, seed), sorted."""
    key = (new["variant"], int(new["seed"]))
    return sorted([r for r in rows if (r["variant"], int(r["seed"])) != key] + [new],
                  key=lambda r: (r["variant"], int(r["seed"])))


def train_outputs(config, result: dict, info: dict, classes) -> dict:
    """One run's artifacts under lenet/<variant>/ (its summary.csv row is summary_row's: that
    file is shared by the variants and merged under the manifest lock)."""
    from pipeline.model import get_variant
    v = f"lenet/{config.variant}"
    metrics = {"variant": config.variant, "description": get_variant(config.variant).description,
               "config": asdict(config), "preprocess": config.preprocess,
               "final": result["final"], "params_by_layer": result["params_by_layer"],
               "device": result["device"], "peak_rss_mib": result["peak_rss_mib"],
               "data": data_provenance(info),
               # fit's describe(), taken in the training process with the threads it used
               "machine": result["machine"]}
    confusion = [{"true\\pred": name, **dict(zip(classes, map(int, row)))}
                 for name, row in zip(classes, result["confusion"])]
    return {f"{v}/log.csv": result["log"], f"{v}/metrics.json": metrics,
            f"{v}/confusion.csv": (["true\\pred", *classes], confusion),
            f"{v}/predictions.csv": predictions_rows(result["y_test"], result["test_predictions"]),
            f"{v}/weights.pt": result["state_dict"]}


# --- sweeps: seeds, ablation, dropout ----------------------------------------------------------

def config_id(config, ref) -> str:
    """Names what makes two sweep runs comparable (not threads or jobs, which change only speed)."""
    ident = {"epochs": config.epochs, "batch_size": config.batch_size, "lr": config.lr,
             "md5s": ref.md5s, "val_size": ref.val_size, "split_seed": ref.split_seed}
    if config.train_eval_size:  # only the dropout experiment's runs measure it
        ident["train_eval_size"] = config.train_eval_size
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:12]


def sweep_history(previous: dict | None, cid: str, sweep: dict) -> list[dict]:
    """Every invocation that trained runs for this config (a resumed sweep has several), so the
    reported sweep time survives a later rerun that only redoes the analysis."""
    prev = previous or {}
    history = []
    if prev.get("config", {}).get("config_id") == cid:
        history = prev.get("sweeps") or ([prev["sweep"]] if prev.get("sweep") else [])
    if sweep["runs"]:
        history = [*history, {**sweep, "finished": now()}]
    return history


def same_settings(row: dict, config) -> bool:
    return (int(row["epochs"]), int(row["batch_size"]), float(row["lr"])) == (
        config.epochs, config.batch_size, config.lr)


def seeds_reference(summary: list[dict], config) -> dict:
    """The seed-0 test accuracy of each variant from train's summary.csv; each must exist with
    the sweep's settings (the other seeds are repeats of it)."""
    from pipeline.model import VARIANTS
    found = {}
    for name in VARIANTS:
        rows = [r for r in summary if r["variant"] == name and int(r["seed"]) == 0 and same_settings(r, config)]
        if not rows:
            raise UserError(f"lenet/summary.csv has no seed-0 run of {name} with {config.epochs} epochs, "
                            f"batch {config.batch_size}, lr {config.lr}; run `invoke train` with those "
                            f"settings first")
        found[name] = float(rows[0]["test_accuracy"])
    return found


def seeds_todo(seed_runs: list[dict], n: int, config, force: bool) -> tuple[list[dict], list]:
    """(rows to keep, specs to train) for seeds 1..n-1 of both variants."""
    from pipeline.model import VARIANTS
    from pipeline.sweep import spec
    keep = [r for r in seed_runs if same_settings(r, config) and int(r["seed"]) > 0 and not force]
    done = {(r["variant"], int(r["seed"])) for r in keep}
    todo = [spec(v.preprocess, v.batch_norm, v.dropout > 0, False, s) for s in range(1, n)
            for name, v in VARIANTS.items() if (name, s) not in done]
    return keep, todo


def seeds_row(result: dict, config, official: bool) -> dict:
    from pipeline.model import VARIANTS, spec_name
    names = {spec_name(v.preprocess, v.batch_norm, v.dropout > 0): k for k, v in VARIANTS.items()}
    variant = names[spec_name(result["preprocess"], result["batch_norm"], result["dropout"])]
    return {**result, "variant": variant, "batch_size": config.batch_size, "lr": config.lr,
            "official_data": official}


def seeds_outputs(summary: list[dict], seed_runs: list[dict], n: int, config, cid: str,
                  previous: dict | None, sweep: dict) -> dict:
    """seeds.json / seeds.csv from the reference runs (seed 0) and the extra seeds."""
    from pipeline import ablation as AB
    from pipeline import findings, stats
    from pipeline.model import VARIANTS
    reference = seeds_reference(summary, config)
    rows = ([r for r in summary if int(r["seed"]) == 0 and same_settings(r, config)]
            + [r for r in seed_runs if same_settings(r, config) and 0 < int(r["seed"]) < n])
    found = AB.seeds_summary(rows, list(VARIANTS))
    result = {"config": {"seeds": n, **asdict(config), "config_id": cid}, **found,
              "reference": reference, "sentence": findings.seeds_paired(found["paired"], stats.LEVEL),
              "level": stats.LEVEL, "sweeps": sweep_history(previous, cid, sweep)}
    table = [{"variant": v, **{k: s[k] for k in contract.SEEDS_COLUMNS[1:]}} for v, s in found["variants"].items()]
    return {"lenet/seed_runs.csv": seed_runs, "lenet/seeds.json": result, "lenet/seeds.csv": table}


# --- the own CNN (CS182 5(d)) -------------------------------------------------------------------

def own_arrays(raw: dict, splits=("train", "val", "test")) -> dict:
    """The splits the own CNN sees, per-channel standardised with training statistics."""
    from pipeline.preprocess import preprocess
    (x_tr, x_va, x_te), _ = preprocess(raw["x_train"], raw["x_val"], raw["x_test"], mode="per_channel")
    arrays = {"x_train": x_tr, "y_train": raw["y_train"], "x_val": x_va, "y_val": raw["y_val"],
              "x_test": x_te, "y_test": raw["y_test"]}
    return {k: v for k, v in arrays.items() if k.split("_")[1] in splits}


def own_search(rows: list[dict], arrays: dict, device, device_name: str, data_md5: str, save,
               log=print) -> tuple[list[dict], list[dict]]:
    """Run the staged search (own_cnn.SEARCH) on validation data only, resuming from `rows`
    (search.csv rows of this data); `save(rows)` after every trial. Returns (this data's rows,
    the other data's rows, kept as they were)."""
    from dataclasses import replace

    from pipeline import own_cnn as O
    kept = [r for r in rows if r.get("data_md5") != data_md5]  # trials on other data: kept, not used
    rows = [r for r in rows if r.get("data_md5") == data_md5]
    for stage in range(len(O.SEARCH)):
        earlier = [r for r in rows if r["trial"] in {t for st in O.SEARCH[:stage] for t in st}]
        for trial, overrides in O.stage_trials(stage, earlier).items():
            config = replace(O.OwnConfig(device=device_name), **overrides)
            done = [r for r in rows if r["trial"] == trial]
            if done and O.overrides_of(done[0]) == O.overrides_of(O.search_row(config, {})):
                continue  # resumable: a trial already run with these settings is kept
            rows = [r for r in rows if r["trial"] != trial]
            log(f"search stage {stage + 1} {trial}: {O.describe(asdict(config))}")
            try:
                result = O.fit(config, arrays, device)
            except FloatingPointError as e:  # a learning rate too high diverges: a result, not a crash
                log(f"search {trial}: diverged ({e}); recorded with validation accuracy 0")
                result = {"final": {"val_accuracy": 0.0, "train_seconds": 0.0},
                          "params": O.count_params(O.OwnCNN(config.widths))}
            f = result["final"]
            rows.append({"trial": trial, **O.search_row(config, overrides), "val_accuracy": f["val_accuracy"],
                         "train_seconds": f["train_seconds"], "params": result["params"],
                         "device": device_name, "data_md5": data_md5})
            save(rows + kept)
            log(f"search {trial}: val {f['val_accuracy']:.2%} in {f['train_seconds']:.0f} s")
    return rows, kept


def own_outputs(config, chosen: dict, result: dict, info: dict, device_name: str, y_test,
                previous: dict | None, previous_entry: dict | None) -> dict:
    """The final run's artifacts. Every earlier final run stays in metrics.json's history: the
    test set is read once per final run, and a reader should see all of them."""
    from pipeline import own_cnn as O
    from pipeline.store import git_state
    f = result["final"]
    row = {"variant": "own_cnn", "seed": config.seed, "epochs": config.epochs,
           "preprocess": "per_channel", "batch_size": config.batch_size, "lr": config.lr,
           "test_accuracy": f["test_accuracy"], "test_loss": f["test_loss"],
           "best_val_accuracy": f["val_accuracy"], "best_val_epoch": config.epochs,
           "final_train_loss": f["final_train_loss"], "final_train_accuracy": f["final_train_accuracy"],
           "train_seconds": f["train_seconds"], "eval_seconds": f["eval_seconds"],
           "images_per_second": f["images_per_second"], "params": result["params"],
           "device": device_name, "official_data": info["official"]}
    history = (previous or {}).get("history", [])
    if previous and "final" in previous:
        recorded = previous.get("recorded") or (
            {k: previous_entry[k] for k in ("commit", "dirty", "timestamp")} if previous_entry else None)
        history = [*history, {"config": previous["config"], "chosen_trial": previous["chosen"]["trial"],
                              "test_accuracy": previous["final"]["test_accuracy"],
                              "val_accuracy": previous["final"]["val_accuracy"],
                              "train_seconds": previous["final"]["train_seconds"],
                              "device": previous["device"], "recorded": recorded}]
    metrics = {"config": asdict(config), "chosen": chosen, "final": f, "params": result["params"],
               "device": device_name, "budget_seconds": O.BUDGET_SECONDS,
               "budget_share": O.BUDGET_SHARE, "budget_used": f["train_seconds"] / O.BUDGET_SECONDS,
               "within_budget": f["train_seconds"] <= O.BUDGET_SECONDS, "data": data_provenance(info),
               "recorded": {**git_state(), "finished": now()}, "history": history}
    return {"own_cnn/summary.csv": [row], "own_cnn/log.csv": result["log"],
            "own_cnn/metrics.json": metrics,
            "own_cnn/predictions.csv": predictions_rows(y_test, result["test_predictions"]),
            "own_cnn/weights.pt": result["state_dict"]}


# --- filters (CS182 q4) ---------------------------------------------------------------------------

def filters_outputs(x, y, idx, images: int) -> dict:
    """Blur and Sobel through our im2col conv on `images` cached test images of distinct classes,
    checked against torch, with frequency responses. x (N, 32, 32, 3) uint8, y, idx (N,)."""
    import numpy as np

    from pipeline import filters as FI
    from pipeline import plots as P
    from pipeline.data import CLASSES
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
              **FI.response_summary(responses),
              "high_frequency_energy": {
                  "cutoff": FI.CUTOFF,
                  "blur": FI.energy_kept(outputs["original"], outputs["blur"], FI.CUTOFF),
                  "edges": FI.energy_kept(FI.to_grey(chosen), outputs["magnitude"], FI.CUTOFF)}}
    return {"cs182/filters.json": result,
            f"cs182/{P.FILTERS_IMAGES}.png": P.to_bytes(P.filters_figure(outputs, result["classes"]), "png"),
            f"cs182/{P.FILTERS_RESPONSE}.png": P.to_bytes(P.frequency_figure(responses), "png")}


# --- plots ------------------------------------------------------------------------------------------

EVAL_BATCH = 1000  # test images per forward pass of the galleries (eval mode: no effect on the result)


def plots_data(source, allow_unofficial: bool, dataset: dict, cache_dir: Path = CACHE) -> dict:
    """The split arrays of the data the reference runs were trained on (the galleries need every
    test image). Found as every stage finds it (--source, $CIFAR10_PATH, the cache), else where
    `invoke data` recorded it (dataset.json's source); never downloaded here. Data that is not
    official is accepted if dataset.json says the reference was trained on it (the user accepted
    it then); either way its md5s must be dataset.json's."""
    from pipeline import data as D
    if source is None and D.resolve_source(None, cache_dir=cache_dir) is None:
        source = dataset.get("source")
        if not source or not Path(source).exists():
            raise UserError("the plots stage needs the CIFAR-10 test images the reference runs were tested "
                            f"on (md5s in artifacts/data/dataset.json), and {source or 'no source'} is not "
                            f"there; pass --source or set {D.PATH_ENV}")
    raw, info = load_dataset(source, allow_unofficial or not dataset["official"], cache_dir)
    if info["md5s"] != dataset["md5s"]:
        raise UserError(f"the CIFAR-10 files at {info['source']} are not the ones the reference runs were "
                        "trained on (their md5s differ from artifacts/data/dataset.json); pass --source "
                        "with that data")
    return raw


def reference_softmax(variant: str, state_dict: dict, raw: dict):
    """(N_test, n_classes) float64: a reference run's softmax on the test set, as its training run
    evaluated it: the test images preprocessed in the variant's mode (fitted on the training
    images, as `invoke train` does), the weights in build_model(variant), eval mode (batch-norm's
    running statistics, no dropout)."""
    import torch

    from pipeline.model import build_model, get_variant
    from pipeline.preprocess import preprocess
    (_, x_test), _ = preprocess(raw["x_train"], raw["x_test"], mode=get_variant(variant).preprocess)
    model = build_model(variant)
    model.load_state_dict(state_dict)  # strict: the file must hold exactly this model's tensors
    model.eval()
    with torch.inference_mode():
        logits = torch.cat([model(torch.from_numpy(x_test[i:i + EVAL_BATCH]))          # (B, n_classes)
                            for i in range(0, len(x_test), EVAL_BATCH)])
    return torch.softmax(logits.double(), dim=1).numpy()


# A float32 forward pass is not bit-stable across CPUs: another instruction set (oneDNN's AVX-512,
# AVX2 or SSE4.1 kernels) sums in another order. Measured here with ONEDNN_MAX_CPU_ISA=SSE41 against
# the AVX2 reference: softmax probabilities differ by up to 7.2e-9. So where a recomputation meets a
# committed value, probabilities agree to PROB_TOLERANCE, and the argmax is compared only where the
# two most probable classes are more than ARGMAX_MARGIN apart (a near-tie may flip, honestly).
PROB_TOLERANCE = 1e-6
ARGMAX_MARGIN = 1e-5


def top_margin(probs):
    """(N,) the gap between each row's two largest probabilities."""
    import numpy as np
    top2 = np.sort(np.asarray(probs), axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def check_reference_run(variant: str, probs, predictions, confusion, y_test) -> None:
    """A reference run's files must agree with each other and with the data: predictions.csv lists
    the test images in order with the data's labels, the weights' argmax is its prediction for
    every image, and confusion.csv counts those predictions. Otherwise a one-line UserError."""
    import numpy as np
    where = f"lenet/{variant}"
    index, labels = predictions["index"].to_numpy(), predictions["label"].to_numpy()
    committed = predictions["prediction"].to_numpy()
    if not (np.array_equal(index, np.arange(len(y_test))) and np.array_equal(labels, y_test)):
        raise UserError(f"{where}/predictions.csv does not list the {len(y_test):,} test images of "
                        "artifacts/data/dataset.json in order with their labels; it is not a run on this data")
    differ = np.flatnonzero((np.asarray(probs).argmax(axis=1) != committed) & (top_margin(probs) > ARGMAX_MARGIN))
    if differ.size:
        raise UserError(f"{where}/weights.pt predicts another class than {where}/predictions.csv for "
                        f"{differ.size:,} of {len(y_test):,} test images (first: index {differ[0]}); the "
                        "two files are not of one run, or the test images are not its; nothing written")
    n = len(confusion)
    if not np.array_equal(np.asarray(confusion), np.bincount(labels * n + committed, minlength=n * n).reshape(n, n)):
        raise UserError(f"{where}/confusion.csv does not count the predictions of {where}/predictions.csv; "
                        "the two files are not of one run; nothing written")


def plots_outputs(summary, logs: dict, confusions: dict, predictions: dict, classes, samples,
                  own_log: list[dict] | None, test_set, probs: dict) -> dict:
    """Figures of the reference runs (and the own CNN's log when it exists), the galleries of
    their most confident mistakes, per-class accuracy as numbers, and the sentences the results
    page states about them (lenet/findings.json).

    Args: predictions: variant -> predictions.csv as an int DataFrame; samples: the sample grid's
    (images, labels, indices); test_set: (x_test (N, 32, 32, 3) uint8, y_test (N,)) of the data the
    runs were tested on; probs: variant -> reference_softmax (checked against predictions.csv).
    """
    from pipeline import findings
    from pipeline import plots as P
    missing = [v for v in contract.REFERENCE_VARIANTS if v not in confusions]
    if missing:
        raise UserError(f"lenet/per_class.csv needs every reference run, and lenet/summary.csv lacks "
                        f"{', '.join(missing)}; run `invoke train` first")
    x_test, y_test = test_set
    images, labels, indices = samples
    preds = {v: p.set_index("index").loc[indices, "prediction"].to_numpy() for v, p in predictions.items()}
    out = {}
    figures = P.figures(logs, confusions, classes, images, labels, preds)
    for v in confusions:
        check_reference_run(v, probs[v], predictions[v], confusions[v], y_test)
        rows = P.confident_mistakes(probs[v], y_test, P.MISTAKES_SHOWN)
        wrong = int((probs[v].argmax(axis=1) != y_test).sum())
        chosen = x_test[[r["index"] for r in rows]] if rows else x_test[:0]
        figures[f"{P.MISTAKES_PREFIX}{v}"] = P.mistakes_figure(chosen, rows, classes, v, wrong)
        out[f"lenet/{v}/confident_mistakes.csv"] = rows
    for name, fig in figures.items():
        for ext in ("png", "svg"):
            out[f"plots/{name}.{ext}"] = P.to_bytes(fig, ext)
    out["lenet/per_class.csv"] = P.per_class_rows({v: confusions[v] for v in contract.REFERENCE_VARIANTS},
                                                  classes)
    if own_log is not None:
        fig = P.own_log_figure([{k: float(v) for k, v in r.items()} for r in own_log])
        for ext in ("png", "svg"):
            out[f"own_cnn/{P.OWN_LOG}.{ext}"] = P.to_bytes(fig, ext)
    out["lenet/findings.json"] = findings.findings(summary, {v: log.to_dict("records") for v, log in logs.items()})
    return out


# --- verify -----------------------------------------------------------------------------------------

VERIFY_METRICS = ("test_accuracy", "best_val_accuracy", "best_val_epoch", "final_train_accuracy",
                  "final_train_loss", "test_loss")


def verify_rows(committed: list[dict], rerun: list[dict], seeds: dict | None) -> list[dict]:
    """Committed vs rerun reference runs, per variant and metric: `identical`, `within seeds'
    spread` (|difference| <= 2 sd of the seeds' test accuracies; accuracy metrics only) or
    `differs`."""
    out = []
    by_variant = {r["variant"]: r for r in rerun}
    for c in committed:
        r = by_variant.get(c["variant"])
        if r is None or int(c["seed"]) != 0:
            continue
        sd = (seeds or {}).get("variants", {}).get(c["variant"], {}).get("std")
        for m in VERIFY_METRICS:
            a, b = float(c[m]), float(r[m])
            if a == b:
                verdict = "identical"
            elif sd is not None and m.endswith("accuracy") and abs(a - b) <= 2 * sd:
                verdict = "within seeds' spread"
            else:
                verdict = "differs"
            out.append({"variant": c["variant"], "metric": m, "committed": a, "rerun": b,
                        "difference": b - a, "seeds_sd": sd if m.endswith("accuracy") else "",
                        "verdict": verdict})
    return out


def verdict_of(rows: list[dict]) -> str:
    test = [r["verdict"] for r in rows if r["metric"] == "test_accuracy"]
    if not test:
        return "no reference run to compare"
    if all(v == "identical" for v in test):
        return "identical"
    return "within seeds' spread" if "differs" not in test else "differs"


# --- derive: what is computed from the reference runs, computed again ----------------------------
# `invoke derive` (part of `invoke all`) recomputes every artifact whose sources changed
# (contract.DERIVED_FROM, checked by Store.stale): after `invoke train --force` on another CPU the
# seeds analysis, verify's and the benchmark's comparisons follow the new reference runs. These
# two functions redo the comparisons from the measurements already stored; nothing is retrained.

def verify_committed(entry: dict, machine) -> dict:
    """verify.json's "committed" side: summary.csv's manifest entry and the machine its runs'
    metrics.json recorded (pipeline.machine.recorded)."""
    return {**{k: entry.get(k) for k in ("commit", "dirty", "torch", "device", "timestamp")}, "machine": machine}


def verify_rederived(report: dict, summary: list[dict], seeds: dict | None, entry: dict, machine) -> dict:
    """verify.json compared again: the rerun's values (report["rows"]) against the reference runs
    now in summary.csv (`entry`: its manifest entry; `machine`: theirs), with the seeds' spread."""
    rerun = {}
    for r in report["rows"]:
        rerun.setdefault(r["variant"], {"variant": r["variant"]})[r["metric"]] = r["rerun"]
    rows = verify_rows(summary, list(rerun.values()), seeds)
    return {**report, "verdict": verdict_of(rows), "rows": rows, "committed": verify_committed(entry, machine)}


def bench_rederived(report: dict, summary: list[dict]) -> dict:
    """bench.json with its end-to-end run's accuracies compared again with the reference runs now
    in summary.csv (the timings are measurements and stay as they were)."""
    e = report.get("end_to_end")
    if not e:
        return report
    bench_run = {v: a["bench_run"] for v, a in e["accuracies"].items()}
    return {**report, "end_to_end": {**e, "accuracies": bench_accuracies(summary, bench_run)}}


def bench_accuracies(summary: list[dict], bench_run: dict) -> dict:
    """Per reference run of summary.csv: its test accuracy, the benchmark's run's (`bench_run`:
    variant -> accuracy) and whether the two are identical."""
    return {r["variant"]: {"committed": float(r["test_accuracy"]), "bench_run": float(bench_run[r["variant"]]),
                           "identical": float(r["test_accuracy"]) == float(bench_run[r["variant"]])}
            for r in summary}
