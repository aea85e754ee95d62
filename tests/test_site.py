"""Tests of the report site: `mkdocs build --strict` against a complete FAKE artifacts tree (written
here as the artifacts contract (pipeline/contract.py) lays it out, plots drawn by pipeline.plots,
the stored sentences by pipeline.findings, the written answers computed by pipeline.answers), with
one artifact removed, with a run that is not the reference run, with official and unofficial data,
with a bad placeholder and with a notebook page that fails; plus unit tests of the hooks
(placeholders, the notebook cell time limit; hooks/maths.py has its own tests/test_maths.py). The real artifacts are never read:
LENET_ARTIFACTS points the hook and the notebook pages at the fake tree. (tests/test_browser.py
opens the site built from the real artifacts in Chromium.)
"""
from __future__ import annotations

import hashlib
import html as htmllib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from pipeline import ablation, contract, dropout, filters, findings, gradcheck, own_cnn, plots, stages
from pipeline import pdf as P
from pipeline.answers import compute_all
from pipeline.answers.figures import figures as answer_figures

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
VARIANTS = ("lenet_bn_dropout", "lenet_plain")
EPOCHS = contract.REFERENCE["epochs"]  # the site publishes only reference runs
SEEDS = 5  # runs per variant: seed 0 in summary.csv, seeds 1..4 in seed_runs.csv (`invoke seeds`)
N_TEST = 10_000
SAMPLES = 16
REBUILT_MD5S = {  # shared/cifar10/README.md
    "data_batch_1": "d3fd03c778611e5fdb74612cb89a5134", "data_batch_2": "9b5f15303522bd5a69b8a2b9cfb4f08c",
    "data_batch_3": "cba830b6d1320250895b04f7ffd8f1ce", "data_batch_4": "a6d47f5dff16b9a92e38e3e4b162a7ae",
    "data_batch_5": "64e2accdedf2a53598176bd8c71e6407", "test_batch": "328708d8965ef6bd364a7a13d64d35e6",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}
OFFICIAL_MD5S = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f", "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751", "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb", "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}
# Hand count (question 4(c)): conv (k*k*C_in + 1) * C_out, linear (in + 1) * out, BN 2 * channels.
PARAMS = {"conv1": 456, "bn1": 12, "conv2": 2416, "bn2": 32, "fc1": 48120, "bn3": 240,
          "fc2": 10164, "bn4": 168, "fc3": 850}
# The fake runs: model 1 ends higher on test accuracy; model 2's validation loss rises (overfits).
FAKE = {
    "lenet_bn_dropout": {"test_accuracy": 0.6593, "val_loss_end": 1.06, "preprocess": "normalize",
                         "seconds": 6.0, "final_train_loss": 0.8123},
    "lenet_plain": {"test_accuracy": 0.6184, "val_loss_end": 1.30, "preprocess": "rescale",
                    "seconds": 4.0, "final_train_loss": 0.5432},
}
# The machine every fake record names (pipeline.machine.describe's keys; test_machine checks them).
FAKE_MACHINE = {"cpu": "Fake CPU 9000", "cores": 2, "isa": "AVX2", "onednn_max_cpu_isa": None, "threads": 1,
                "device": "cpu", "gpu": None, "torch": "2.13.0+cpu", "torch_git": "0123456789abcdef0123",
                "torch_cuda": None, "torch_debug": False, "python": "3.11.7", "platform": "Linux-x86_64"}
BUILD_TIMEOUT_S = 180  # a build executes the four answer notebooks
PAGES = {"index.html", "lenet/data/index.html", "lenet/preprocess/index.html", "lenet/model/index.html",
         "lenet/training/index.html", "lenet/results/index.html", "ablation/index.html", "reproducibility/index.html", "maintaining/index.html",
         "answers/csce421/index.html", "answers/coms573/index.html", "answers/cs182/index.html",
         "answers/errata/index.html", "cs182/layers/index.html", "cs182/filters/index.html",
         "cs182/dropout/index.html", "cs182/own_cnn/index.html", "questions/index.html",
         "references/index.html"}
NOTEBOOK_PAGES = {p for p in PAGES if p.startswith("answers/")}
MATHS_SCRIPT = re.compile(r"<script[^>]*(mathjax|katex)|text/x-mathjax-config", re.I)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2) + "\n")


def fake_log(variant: str) -> pd.DataFrame:
    f = FAKE[variant]
    e = np.arange(1, EPOCHS + 1)
    val_loss = np.linspace(1.6, 1.0, EPOCHS)
    val_loss[-2:] = [1.05, f["val_loss_end"]]  # the minimum is at epoch EPOCHS - 2
    acc = np.linspace(0.40, f["test_accuracy"], EPOCHS)
    return pd.DataFrame({
        "epoch": e, "train_loss": np.linspace(1.7, f["final_train_loss"], EPOCHS),
        "train_accuracy": acc + 0.05, "val_loss": val_loss, "val_accuracy": acc + 0.004,
        "test_loss": val_loss + 0.01, "test_accuracy": acc, "seconds": np.full(EPOCHS, f["seconds"]),
        "eval_seconds": np.full(EPOCHS, 0.5), "images_per_second": np.full(EPOCHS, 45000 / f["seconds"]),
    })


def fake_predictions(variant: str, labels: np.ndarray) -> np.ndarray:
    """Predictions exactly FAKE's test accuracy right; the wrong ones spread over the other classes."""
    rng = np.random.default_rng(VARIANTS.index(variant))
    n_wrong = round(len(labels) * (1 - FAKE[variant]["test_accuracy"]))
    wrong = rng.permutation(len(labels))[:n_wrong]
    preds = labels.copy()
    preds[wrong] = (labels[wrong] + rng.integers(1, 10, n_wrong)) % 10
    return preds


def write_fake_artifacts(root: Path, official: bool = False) -> Path:
    """A complete artifacts tree as ARTIFACTS.md (and tasks.py) write it, with a matching manifest."""
    rng = np.random.default_rng(0)
    md5s = OFFICIAL_MD5S if official else REBUILT_MD5S
    data_info = {"source": "/data/cifar-10-python.tar.gz", "official": official, "md5s": md5s,
                 "mismatched": [] if official else [n for n in md5s if md5s[n] != OFFICIAL_MD5S[n]]}
    y_test = np.repeat(np.arange(10), N_TEST // 10)
    rng.shuffle(y_test)
    write_json(root / "data/dataset.json", {
        **data_info, "official_md5s": OFFICIAL_MD5S, "classes": list(CLASSES), "image_shape": [32, 32, 3],
        "counts": {"train": 45000, "val": 5000, "test": N_TEST},
        "class_counts": {"train": [4500] * 10, "val": [500] * 10, "test": [1000] * 10},
        "split": {"seed": 0, "val_size": 5000, "train": 45000, "val": 5000, "val_indices_sha256": "ab" * 32},
        "arrays_sha256": "cd" * 32,
    })
    images = rng.integers(0, 256, (SAMPLES, 32, 32, 3), dtype=np.uint8)
    summary, logs, cms, preds = [], {}, {}, {}
    for v in VARIANTS:
        vdir = root / "lenet" / v
        vdir.mkdir(parents=True)
        logs[v] = fake_log(v)
        logs[v].to_csv(vdir / "log.csv", index=False)
        preds[v] = fake_predictions(v, y_test)
        cms[v] = np.bincount(y_test * 10 + preds[v], minlength=100).reshape(10, 10)
        pd.DataFrame(cms[v], columns=CLASSES, index=pd.Index(CLASSES, name="true\\pred")).to_csv(vdir / "confusion.csv")
        pd.DataFrame({"index": np.arange(N_TEST), "label": y_test, "prediction": preds[v]}).to_csv(
            vdir / "predictions.csv", index=False)
        (vdir / "weights.pt").write_bytes(b"not a real state_dict")
        last = logs[v].iloc[-1]
        best = logs[v].loc[logs[v]["val_accuracy"].idxmax()]
        by_layer = {k: n for k, n in PARAMS.items() if v == "lenet_bn_dropout" or not k.startswith("bn")}
        final = {"test_accuracy": float(np.mean(preds[v] == y_test)), "test_loss": float(last["test_loss"]),
                 "best_val_accuracy": float(best["val_accuracy"]), "best_val_epoch": int(best["epoch"]),
                 "final_train_loss": float(last["train_loss"]), "final_train_accuracy": float(last["train_accuracy"]),
                 "epochs": EPOCHS, "train_seconds": float(logs[v]["seconds"].sum()), "eval_seconds": 3.0,
                 "images_per_second": float(last["images_per_second"]), "params": sum(by_layer.values())}
        config = {"variant": v, **contract.REFERENCE, "split_seed": 0, "eval_batch_size": 1000, "device": "auto",
                  "smoke_size": 2000}
        write_json(vdir / "metrics.json", {
            "variant": v, "description": f"fake {v}", "config": config, "preprocess": FAKE[v]["preprocess"],
            "final": final, "params_by_layer": by_layer, "device": "cpu (2 threads)", "peak_rss_mib": 400.0,
            "data": data_info, "machine": FAKE_MACHINE})
        summary.append({"variant": v, "seed": 0, "epochs": EPOCHS, "preprocess": FAKE[v]["preprocess"],
                        "batch_size": 128, "lr": 0.001, **final, "device": "cpu (2 threads)",
                        "official_data": official})
    columns = list(contract.SUMMARY_COLUMNS)
    pd.DataFrame(summary)[columns].to_csv(root / "lenet/summary.csv", index=False)  # the reference runs only
    seed_runs = [{**row, "seed": seed, "test_accuracy": row["test_accuracy"] + 0.004 * (seed - 2)
                  + 0.001 * (seed % 2) * (row["variant"] == "lenet_plain")}
                 for seed in range(1, SEEDS) for row in summary]  # accuracies spread around seed 0's
    pd.DataFrame(seed_runs)[columns].to_csv(root / "lenet/seed_runs.csv", index=False)
    found = ablation.seeds_summary(summary + seed_runs, list(VARIANTS))
    write_json(root / "lenet/seeds.json", {
        "config": {"seeds": SEEDS, **contract.REFERENCE}, **found, "level": 0.95,
        "reference": {r["variant"]: r["test_accuracy"] for r in summary},
        "sentence": findings.seeds_paired(found["paired"], 0.95),
        "sweeps": [{"runs": 8, "wall_seconds": 700.0, "workers": 2, "scheduler": "LocalCluster(2 processes x 1 thread)"}]})
    write_json(root / "lenet/findings.json",
               findings.findings(summary, {v: log.to_dict("records") for v, log in logs.items()}))
    # `invoke verify`: a rerun identical to the committed runs but for one loss in its last digits
    rerun = [{**r, "test_loss": r["test_loss"] + 1e-9 * (r["variant"] == "lenet_plain")} for r in summary]
    rows = stages.verify_rows(summary, rerun, found)
    pd.DataFrame(rows)[list(contract.VERIFY_COLUMNS)].to_csv(root / "verify.csv", index=False)
    write_json(root / "verify.json", {
        "verdict": stages.verdict_of(rows), "rows": rows,
        "committed": {"commit": "0123456789abcdef", "dirty": False, "torch": "2.13.0+cpu", "device": "cpu",
                      "timestamp": "2025-01-01T00:00:00Z", "machine": FAKE_MACHINE},
        "rerun": {"commit": "fedcba9876543210", "dirty": False, "torch": "2.13.0+cpu", "device": ["cpu (2 threads)"],
                  "machine": {**FAKE_MACHINE, "cpu": "Other CPU 42", "isa": "AVX512"}, "seconds": 300.0,
                  "finished": "2025-01-02T00:00:00Z"}})
    pd.DataFrame([{"variant": v, **s} for v, s in found["variants"].items()])[list(ablation.SEEDS_COLUMNS)].to_csv(
        root / "lenet/seeds.csv", index=False)
    write_fake_ablation(root)
    figures = plots.figures(logs, cms, CLASSES, images, y_test[:SAMPLES], {v: p[:SAMPLES] for v, p in preds.items()})
    pd.DataFrame(plots.per_class_rows(cms, CLASSES))[list(contract.PER_CLASS_COLUMNS)].to_csv(
        root / "lenet/per_class.csv", index=False)
    for v in VARIANTS:  # made-up softmax outputs that predict exactly predictions.csv
        probs = np.full((N_TEST, 10), 0.02)
        probs[np.arange(N_TEST), preds[v]] = 0.5 + 0.4 * rng.random(N_TEST)
        rows = [r for r in plots.confident_mistakes(probs, y_test) if r["index"] < SAMPLES]
        pd.DataFrame(rows, columns=list(contract.MISTAKE_COLUMNS)).to_csv(
            root / "lenet" / v / "confident_mistakes.csv", index=False)
        figures[f"{plots.MISTAKES_PREFIX}{v}"] = plots.mistakes_figure(
            images[[r["index"] for r in rows]], rows, CLASSES, v, int(np.sum(preds[v] != y_test)))
    (root / "plots").mkdir()
    for name, fig in figures.items():
        for fmt in ("png", "svg"):
            (root / "plots" / f"{name}.{fmt}").write_bytes(plots.to_bytes(fig, fmt))
    write_answers(root)
    write_fake_layers(root)
    write_fake_bench(root)
    write_fake_cs182(root, images, data_info)
    write_fake_own_cnn(root, y_test, official)
    write_manifest(root)
    return root


def write_fake_cs182(root: Path, images: np.ndarray, data_info: dict) -> None:
    """cs182/filters* and cs182/dropout/ as `invoke filters` and `invoke dropout` write them: the
    real filters on the fake images; made-up dropout runs analysed by the real functions."""
    out = root / "cs182"
    chosen = images[:3]
    outputs = filters.apply_filters(chosen)
    responses = {n: filters.frequency_response(k) for n, k in filters.KERNELS.items()}
    write_json(out / "filters.json", {
        "kernels": {k: v.tolist() for k, v in filters.KERNELS.items()},
        "kernel_sums": {k: float(v.sum()) for k, v in filters.KERNELS.items()},
        "test_indices": [0, 1, 2], "classes": ["cat", "ship", "frog"],
        "max_abs_diff_vs_torch": filters.check(chosen), "tolerance": filters.TOLERANCE,
        "response_at_zero": {k: float(r[32, 32]) for k, r in responses.items()},
        "response_max": {k: float(r.max()) for k, r in responses.items()},
        "response_at_nyquist": {k: float(r[0, 0]) for k, r in responses.items()},
        "high_frequency_energy": {"cutoff": filters.CUTOFF,
                                  "blur": filters.energy_kept(outputs["original"], outputs["blur"]),
                                  "edges": filters.energy_kept(filters.to_grey(chosen), outputs["magnitude"])}})
    (out / f"{plots.FILTERS_IMAGES}.png").write_bytes(
        plots.to_bytes(plots.filters_figure(outputs, ["cat", "ship", "frog"]), "png"))
    (out / f"{plots.FILTERS_RESPONSE}.png").write_bytes(plots.to_bytes(plots.frequency_figure(responses), "png"))
    runs, curves = [], []
    for p in dropout.P_VALUES:
        for seed in range(3):
            log = [{"epoch": e, "train_accuracy": 0.5 + 0.02 * e - 0.1 * p, "train_eval_accuracy": 0.55 + 0.02 * e - 0.05 * p,
                    "val_accuracy": 0.5 + 0.01 * e + 0.002 * seed, "test_accuracy": 0.6, "train_loss": 1.0,
                    "train_eval_loss": 0.9, "val_loss": 1.1} for e in range(1, EPOCHS + 1)]
            run, c = dropout.run_rows({"dropout": p, "seed": seed, "test_accuracy": 0.6 + 0.01 * p + 0.003 * seed,
                                       "final_val_accuracy": log[-1]["val_accuracy"], "best_val_accuracy": 0.6,
                                       "best_val_epoch": EPOCHS, "final_train_accuracy": log[-1]["train_accuracy"],
                                       "test_loss": 1.1, "final_train_loss": 1.0, "epochs": EPOCHS,
                                       "train_seconds": 200.0, "images_per_second": 4000.0,
                                       "device": "cpu (1 threads)", "threads": 1, "log": log}, "fakeconfig02")
            runs.append(run)
            curves += c
    summary = dropout.summarise(runs)
    d = out / "dropout"
    d.mkdir()
    pd.DataFrame(runs)[list(dropout.RUN_COLUMNS)].to_csv(d / "runs.csv", index=False)
    pd.DataFrame(curves)[list(dropout.CURVE_COLUMNS)].to_csv(d / "curves.csv", index=False)
    pd.DataFrame(summary).reindex(columns=dropout.SUMMARY_COLUMNS).to_csv(d / "summary.csv", index=False)
    write_json(d / "summary.json", {
        "config": {"seeds": 3, "epochs": EPOCHS, "lr": 0.001, "batch_size": 128,
                   "train_eval_size": dropout.TRAIN_EVAL_SIZE}, "summary": summary,
        "conclusion": dropout.conclusion(summary), "level": 0.95,
        "repeat_of_ablation": {"n": 6, "identical": 2, "max_abs_diff": 0.004, "mean_diff": -0.001, "pairs": []},
        "sweeps": [{"runs": 12, "wall_seconds": 1500.0, "workers": 2,
                    "scheduler": "LocalCluster(2 processes x 1 thread)"}]})
    (d / f"{plots.DROPOUT_CURVES}.svg").write_bytes(plots.to_bytes(plots.dropout_figure(curves, summary), "svg"))


def write_fake_own_cnn(root: Path, y_test: np.ndarray, official: bool) -> None:
    """own_cnn/ as `invoke train-own --search` and `invoke train-own` write it, made up."""
    out = root / "own_cnn"
    out.mkdir()
    config = own_cnn.OwnConfig()
    search = [{"trial": t, **own_cnn.search_row(replace(config, **o), o), "val_accuracy": 0.8 + 0.01 * i,
               "train_seconds": 300.0, "params": 295096, "device": "cpu (2 threads)", "data_md5": "x"}
              for i, (t, o) in enumerate(own_cnn.stage_trials(0, []).items())]
    pd.DataFrame(search)[list(own_cnn.SEARCH_COLUMNS)].to_csv(out / "search.csv", index=False)
    chosen = own_cnn.choose(search)
    write_json(out / "chosen.json", chosen)
    preds = fake_predictions("lenet_bn_dropout", y_test)
    pd.DataFrame({"index": np.arange(N_TEST), "label": y_test, "prediction": preds}).to_csv(
        out / "predictions.csv", index=False)
    acc = float(np.mean(preds == y_test))
    final = {"train_seconds": 800.0, "epochs": chosen["final_epochs"], "images_per_second": 500.0,
             "final_train_loss": 0.9, "final_train_accuracy": 0.9, "val_accuracy": acc + 0.01,
             "val_loss": 0.5, "test_accuracy": acc, "test_loss": 0.5, "eval_seconds": 5.0}
    full = replace(config, **{**own_cnn.overrides_of(chosen), "epochs": chosen["final_epochs"]})
    write_json(out / "metrics.json", {"config": asdict(full), "chosen": chosen, "final": final, "params": 295096,
                                      "device": "cpu (2 threads)", "budget_seconds": own_cnn.BUDGET_SECONDS,
                                      "budget_share": own_cnn.BUDGET_SHARE, "budget_used": 800.0 / 900,
                                      "within_budget": True, "data": {},
                                      "target": own_cnn.target_finding(acc, 800.0),
                                      "recorded": {"commit": "0123456789ab", "dirty": False, "finished": "2025-01-01"},
                                      "history": [{"config": asdict(full), "chosen_trial": "lr0.25",
                                                   "test_accuracy": 0.8123, "val_accuracy": 0.82,
                                                   "train_seconds": 700.0, "device": "cpu (2 threads)",
                                                   "recorded": None}]})
    pd.DataFrame([{"variant": "own_cnn", "seed": 0, "epochs": full.epochs, "preprocess": "per_channel",
                   "batch_size": full.batch_size, "lr": full.lr, "test_accuracy": acc, "test_loss": 0.5,
                   "best_val_accuracy": acc + 0.01, "best_val_epoch": full.epochs, "final_train_loss": 0.9,
                   "final_train_accuracy": 0.9, "train_seconds": 800.0, "eval_seconds": 5.0,
                   "images_per_second": 500.0, "params": 295096, "device": "cpu (2 threads)",
                   "official_data": official}]).to_csv(out / "summary.csv", index=False)
    log = [{"epoch": e, "train_loss": 2.0 - 0.1 * e, "train_accuracy": 0.5 + 0.04 * e, "seconds": 100.0,
            "images_per_second": 450.0, "elapsed_train_seconds": 100.0 * e} for e in range(1, full.epochs + 1)]
    pd.DataFrame(log).to_csv(out / "log.csv", index=False)
    (out / "weights.pt").write_bytes(b"not a real state_dict")
    (out / f"{plots.OWN_LOG}.svg").write_bytes(plots.to_bytes(plots.own_log_figure(log), "svg"))


FAKE_CONV_TIMINGS = {"im2col_s": 0.0512, "torch_s": 0.0123, "naive_s": 41.7, "naive_measured_images": 4,
                     "naive_extrapolated": True, "im2col_over_torch": 0.0512 / 0.0123,
                     "naive_over_torch": 41.7 / 0.0123, "repeats": 5, "torch_threads": 2,
                     "shape": {"x": [128, 3, 32, 32], "w": [32, 3, 3, 3], "stride": 1, "pad": 1, "dtype": "float32"}}


def write_fake_bench(root: Path) -> None:
    """bench.json and profile.csv as `invoke bench` writes them, with made-up timings: the loops
    at one and two threads, the options (torch.compile failed), the end-to-end run and targets."""
    from pipeline import bench
    loops = {str(t): bench.report({v: {"plain_seconds": [4.0, 4.2], "ours_seconds": [3.0 + t, 3.1 + t], "images": 12800,
                                       "batch_size": 128, "plain_batch_size": 128, "lr": 0.001,
                                       "device": f"cpu ({t} threads)"} for v in VARIANTS}, images=12800, repeats=2)
             for t in (1, 2)}
    options = {v: {"ours": {"ms_per_step": 30.0, "first_step_seconds": 0.1, "speed_vs_ours": 1.0},
                   "channels_last": {"ms_per_step": 45.0, "first_step_seconds": 0.1, "speed_vs_ours": 30 / 45},
                   "torch.compile": {"error": "RuntimeError: no C++ compiler <script>alert(1)</script>"}}
               for v in VARIANTS}
    end = {"all_force_seconds": 300.0, "stages": {"data": 5.0, "train": 250.0, "docs": 30.0, "total": 285.0},
           "train_seconds": {v: 200.0 for v in VARIANTS}, "ratio": 300.0 / 320.0,
           "plain": {"variants": {}, "epochs_measured": 3, "extrapolated": True, "threads": 2, "seconds": 320.0},
           "accuracies": {"lenet_bn_dropout": {"committed": 0.63, "bench_run": 0.63, "identical": True},
                          "lenet_plain": {"committed": 0.61, "bench_run": 0.6, "identical": False}}}
    report = {**loops["1"], "loops": loops, "options": options, "end_to_end": end, "profile_threads": 1,
              "machine": {**FAKE_MACHINE, "threads": [1, 2]}, "cores": 2, "commit": "0123456789abcdef", "dirty": False}
    report["targets"] = bench.targets(report)
    write_json(root / "bench.json", report)
    rows = [{"variant": v, "loop": loop, "op": op, "ms_per_step": ms, "share": ms / 30.0}
            for v in VARIANTS for loop in ("plain", "ours")
            for op, ms in (("aten::mkldnn_convolution", 20.0), ("other", 10.0), ("total", 30.0))]
    pd.DataFrame(rows).to_csv(root / "profile.csv", index=False)


def write_fake_layers(root: Path) -> None:
    """cs182/ as `invoke layers` writes it: the real gradient checks and figure, made-up timings."""
    out = root / "cs182"
    out.mkdir()
    pd.DataFrame(gradcheck.gradient_checks())[list(gradcheck.COLUMNS)].to_csv(out / "gradchecks.csv", index=False)
    write_json(out / "conv_timings.json", FAKE_CONV_TIMINGS)
    fig = gradcheck.bn_graph_figure()
    for fmt in ("svg", "png"):
        (out / f"bn_graph.{fmt}").write_bytes(plots.to_bytes(fig, fmt))


def write_fake_ablation(root: Path) -> None:
    """ablation/ as `invoke ablation` writes it, from made-up runs with a planted BN effect, analysed
    by the real pipeline functions."""
    rows = []
    for i, spec in enumerate(ablation.design(3)):
        acc = 0.5 + 0.08 * spec["batch_norm"] + 0.01 * spec["augment"] + 0.003 * ((i * 7) % 5)
        rows.append({**spec, "test_accuracy": acc, "best_val_accuracy": acc + 0.005, "train_seconds": 150.0 + i,
                     "epochs": EPOCHS, "best_val_epoch": EPOCHS, "final_val_accuracy": acc,
                     "final_train_accuracy": acc + 0.05, "final_train_loss": 0.9, "test_loss": 1.1,
                     "images_per_second": 6000.0, "params": 62006, "device": "cpu (1 threads)", "threads": 1,
                     "config": "fakeconfig01"})
    found = ablation.analyse(rows, 3)
    out = root / "ablation"
    out.mkdir()
    pd.DataFrame(rows)[list(ablation.RUN_COLUMNS)].to_csv(out / "runs.csv", index=False)
    pd.DataFrame(found["effects"])[list(ablation.EFFECT_COLUMNS)].to_csv(out / "effects.csv", index=False)
    pd.DataFrame(found["cells"])[list(ablation.CELL_COLUMNS)].to_csv(out / "cells.csv", index=False)
    write_json(out / "summary.json", {
        "config": {"seeds": 3, "epochs": EPOCHS, "lr": 0.001, "batch_size": 128, "augment": True},
        "factors": {k: list(v) for k, v in ablation.FACTORS.items()}, "response": "test_accuracy",
        "runs": len(found["used"]), "augmentation": found["augmentation"], "conclusion": found["conclusion"],
        "published_source": ablation.PUBLISHED_SOURCE, "level": 0.95,
        "sweeps": [{"runs": len(rows), "wall_seconds": 3600.0, "workers": 2,
                    "scheduler": "LocalCluster(2 processes x 1 thread)"}]})
    for name, fig in plots.ablation_figures(found["used"], found["effects"], ablation.FACTORS).items():
        (out / f"{name}.svg").write_bytes(plots.to_bytes(fig, "svg"))


def write_answers(root: Path) -> None:
    """answers.json and answers/*.png as `invoke answers` writes them (computed, not copied)."""
    threads = torch.get_num_threads()
    try:
        answers = compute_all()
    finally:
        torch.set_num_threads(threads)
    (root / "answers").mkdir()
    (root / "answers.json").write_text(json.dumps(answers, allow_nan=False))
    for name, fig in answer_figures(answers).items():
        fig.savefig(root / "answers" / f"{name}.png", dpi=40)


def write_manifest(root: Path) -> None:
    """manifest.json listing every file under root with its sha256 and writer (as Store.record does)."""
    official = json.loads((root / "data/dataset.json").read_text())["official"]
    entries = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and rel != "manifest.json":
            assert contract.spec_of(rel), f"the fake tree has {rel}, which the contract does not list"
            entries[rel] = {"task": contract.writer_of(rel), "commit": "0123456789abcdef", "dirty": False,
                            "torch": "2.13.0+cpu", "config": {}, "seeds": {"seed": 0, "split_seed": 0},
                            "device": "cpu (2 threads)", "data": {"source": "/data/x", "official": official,
                                                                  "md5s": {}, "mismatched": []},
                            "timestamp": "2025-01-01T00:00:00Z", "sha256": sha256(p), "bytes": p.stat().st_size}
    for rel, entry in entries.items():  # what each derived file was computed from, as Store.record keeps it
        derived = contract.sources(rel, entries)
        if derived:
            entry["sources"] = {src: entries[src]["sha256"] for src in derived}
    write_json(root / "manifest.json", {"artifacts": entries, "tasks": {}})


def set_official(root: Path, official: bool) -> None:
    path = root / "data/dataset.json"
    dataset = json.loads(path.read_text())
    md5s = OFFICIAL_MD5S if official else REBUILT_MD5S
    dataset.update(official=official, md5s=md5s,
                   mismatched=[n for n in md5s if md5s[n] != OFFICIAL_MD5S[n]])
    write_json(path, dataset)
    write_manifest(root)


@pytest.fixture(scope="module")
def fake_template(tmp_path_factory) -> Path:
    """One fake tree per module (drawing the plots takes seconds); tests copy it."""
    return write_fake_artifacts(tmp_path_factory.mktemp("template") / "artifacts")


@pytest.fixture
def fake_artifacts(fake_template, tmp_path) -> Path:
    return Path(shutil.copytree(fake_template, tmp_path / "artifacts"))


@dataclass
class Build:
    returncode: int
    output: str
    site: Path

    def pages(self) -> dict[str, str]:
        """Every content page of the built site (not the 404 page): path -> HTML."""
        return {p.relative_to(self.site).as_posix(): p.read_text()
                for p in self.site.rglob("*.html") if p.name != "404.html"}


def build(artifacts: Path, out: Path, config: Path = ROOT / "mkdocs.yml") -> Build:
    env = {**os.environ, "LENET_ARTIFACTS": str(artifacts), "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(out)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    return Build(result.returncode, result.stdout + result.stderr, out)


def text(html: str) -> str:
    """The visible text of a page: tags dropped, entities decoded (code is split into spans)."""
    return htmllib.unescape(re.sub(r"<[^>]+>", "", html))


# ASCII stand-ins for maths that a reader should see typeset: Y~, A^T, W^{ij}, sigma^2_B, z_hat,
# dL/dX, x_{ij}. Checked on the visible prose of every built page (code, pre and maths removed).
ASCII_MATHS = re.compile(r"\b[A-Za-z]~|\w\^[\w{]|\b(?:sigma|mu|gamma|beta|eps)\^|_hat\b|\bd[A-Z]/d[A-Za-z]|\w_\{")


def prose(html: str) -> str:
    """The visible text of a page outside code, preformatted blocks, maths, scripts and collapsed
    blocks (machine records may sit there, as they are stored)."""
    for tag in ("details", "pre", "code", "math", "script", "style", "svg"):
        html = re.sub(rf"<{tag}\b.*?</{tag}>", " ", html, flags=re.S)
    html = re.sub(r'<(span|div) class="arithmatex">.*?</\1>', " ", html, flags=re.S)
    return text(html)


def ascii_maths(html: str) -> list[str]:
    body = prose(html)
    return [body[max(0, m.start() - 30):m.end() + 30] for m in ASCII_MATHS.finditer(body)]


def test_ascii_maths_detector_finds_what_it_should():
    assert ascii_maths("<p>so B = A^T and Y~ = A X~, sigma^2_B</p>")
    assert ascii_maths("<p>dL/dX~ and W^{ij}</p>")
    assert not ascii_maths("<p>plain words, 15 × 15, <code>A^T</code> <math><mi>A</mi></math></p>")
    assert not ascii_maths("<details><summary>record</summary><p>w3^11</p></details>")


def figure_problems(html: str) -> list[str]:
    """Every image in a page's article is a numbered figure: inside <figure> with a caption
    "Figure N." (N = 1, 2, ... in page order) and real alt text."""
    article = html.split('<article', 1)[-1].split("</article>", 1)[0]
    problems = []
    figures = re.findall(r"<figure\b.*?</figure>", article, flags=re.S)
    loose = re.sub(r"<figure\b.*?</figure>", "", article, flags=re.S)
    problems += [f"image outside a figure: {m[:80]}" for m in re.findall(r"<img\b[^>]*>", loose)]
    for n, f in enumerate(figures, 1):
        if not re.search(rf"<figcaption[^>]*>\s*(?:<p>)?<strong>Figure {n}\.</strong>", f):
            problems.append(f"figure {n} has no 'Figure {n}.' caption")
        alts = re.findall(r'<img\b[^>]*\balt="([^"]*)"', f)
        if not alts or any(len(a.strip()) < 10 or "No description" in a for a in alts):
            problems.append(f"figure {n} has no real alt text: {alts}")
    return problems


def unofficial_notices(html: str) -> int:
    return html.count("Results from an unofficial copy of CIFAR-10")


# ------------------------------------------------------------------------------------------ builds

@pytest.mark.slow  # a full site build: 10-25 s
def test_build_passes_with_unofficial_fake_artifacts(fake_artifacts, tmp_path):
    b = build(fake_artifacts, tmp_path / "site")
    assert b.returncode == 0, b.output
    pages = b.pages()
    assert set(pages) == PAGES
    for path, html in pages.items():
        assert unofficial_notices(html) == 1, f"{path} lacks the unofficial-data notice (or has it twice)"
        assert not ascii_maths(html), f"{path} has maths written in ASCII: {ascii_maths(html)[:3]}"
        assert figure_problems(html) == [], (path, figure_problems(html))
        assert "{{" not in html, f"{path} has an unreplaced placeholder"
        # Nothing is fetched from elsewhere: no external script, stylesheet or image.
        external = re.findall(r'<(?:script|img|iframe)[^>]+src="(?:https?:)?//[^"]+"|'
                              r'<link[^>]+rel="(?:stylesheet|preload|preconnect)"[^>]+href="(?:https?:)?//[^"]+"', html)
        assert not external, f"{path} requests {external}"
    speed = text(pages["reproducibility/index.html"])  # bench.json and profile.csv, formatted
    assert "took 300 s" in speed and "needs 320 s" in speed and "a ratio of 0.94" in speed
    assert "plain 60.00% vs 61.00%" in speed  # a run that did not reproduce is named, not hidden
    assert "failed: RuntimeError: no C++ compiler <script>" in speed  # an option's error, as text
    assert "<script>alert" not in pages["reproducibility/index.html"]
    # the machines behind the figures (issue 22, item 4): the benchmark's, verify's two, the runs'
    assert ("on Fake CPU 9000 (2 cores), instruction set AVX2, torch threads 1 and 2, torch 2.13.0+cpu, "
            "CPU build, git 0123456789ab, Python 3.11.7, Linux-x86_64;") in speed
    assert "Other CPU 42 (2 cores)" in speed and "AVX512" in speed
    assert "Fake CPU 9000 (2 cores), instruction set AVX2, torch threads 1," in text(pages["lenet/training/index.html"])
    assert "No GPU figure has been measured" in speed  # every fake run is on the CPU (item 6)
    results = pages["lenet/results/index.html"]
    assert "65.9%" in results and "61.8%" in results  # from summary.csv, formatted
    assert 'title="code name: lenet_bn_dropout">Model 1: BN + dropout</abbr> has the higher test accuracy' in results
    assert "65.9%" in pages["index.html"] and "homework" in text(pages["index.html"])  # the walkthrough's column
    assert "confident_mistakes_lenet_plain" in results and "per_class.csv" in results
    index = pages["questions/index.html"]
    assert text(index).count("COM\u00a0S\u00a0573\u00a0HW5") == 11 and (b.site / "questions.csv").is_file()
    assert "percentage points" in results
    assert "overfits" in results  # lenet_plain's fake validation loss rises at the end
    for name in ("learning_curves", "per_class_accuracy", "samples", "confusion_lenet_plain"):
        assert (b.site / "assets/plots" / f"{name}.svg").is_file()
        assert f"assets/plots/{name}" in results or name == "learning_curves"
    # The code is the real source, included by pymdownx.snippets.
    assert (ROOT / "pipeline/model.py").read_text().splitlines()[0] in text(pages["lenet/model/index.html"])
    assert "class LeNet(nn.Module):" in text(pages["lenet/model/index.html"])
    assert "def per_image_standardize(x: np.ndarray, inplace: bool = False)" in text(pages["lenet/preprocess/index.html"])
    # Parameter counts from metrics.json, with totals that match the hand count.
    assert f"{sum(PARAMS.values()):,}" in pages["lenet/model/index.html"]
    # The answer pages are the executed notebooks, their code cells hidden, answers from answers.json.
    answers = json.loads((fake_artifacts / "answers.json").read_text())
    assert "csce421.q1.params" in text(pages["answers/csce421/index.html"])
    assert f"{answers['csce421.q1.params']['value']:,}" in text(pages["answers/csce421/index.html"])
    assert "page.solve(" not in text(pages["answers/csce421/index.html"])  # hide-input cells
    cs182 = pages["answers/cs182/index.html"]  # the figures, published beside the pages, not inlined
    assert "data:image/png;base64," not in cs182 and '../../assets/answers/fir_1d.png' in cs182
    assert (b.site / "assets/answers/fir_1d.png").is_file()
    layers = pages["cs182/layers/index.html"]
    assert text(layers).count("batchnorm_backward_alt") >= 3 and "**no**" not in layers  # table rows, all passed
    assert "../../assets/cs182/bn_graph.svg" in layers and (b.site / "assets/cs182/bn_graph.svg").is_file()
    assert "extrapolated" in text(layers) and "0.0512" in text(layers)  # conv_timings.json, formatted
    assert "assets/artifacts/cs182/gradchecks.csv" in layers and 'class="arithmatex"' in layers
    assert "def batchnorm_backward_alt(dy: np.ndarray, cache: BatchNormCache):" in text(layers)  # the source
    # Maths: MathML written at build time (hooks/maths.py); no page loads a maths script.
    for path, html in pages.items():
        assert not MATHS_SCRIPT.search(html) and "mathjax-loader" not in html, path
    for path in ("answers/csce421/index.html", "answers/coms573/index.html", "answers/cs182/index.html",
                 "cs182/layers/index.html", "lenet/model/index.html"):
        assert '<annotation encoding="application/x-tex">' in pages[path] and "$$" not in text(pages[path]), path
    assert '<span class="arithmatex"><math alttext=' in pages["lenet/model/index.html"]
    assert not (b.site / "assets/mathjax").exists()
    # Notebook pages link one shared, pruned JupyterLab sheet instead of inlining ~575 KB each.
    sheet = b.site / "assets/stylesheets/notebook.css"
    assert sheet.is_file() and 1_000 < sheet.stat().st_size < 100_000
    for path in NOTEBOOK_PAGES:
        html = pages[path]
        assert '<link rel="stylesheet" href="../../assets/stylesheets/notebook.css">' in html, path
        assert max(map(len, re.findall(r"<style[^>]*>(.*?)</style>", html, re.DOTALL)), default=0) < 50_000, path
        assert len(html.encode()) < 400_000, path
    # The CS182 coding pages: filters, the dropout experiment, the own CNN, numbers from artifacts.
    filt = pages["cs182/filters/index.html"]
    assert "tfrac{1}{16}" in filt and (b.site / "assets/cs182/filters_images.png").is_file()
    assert "low-pass" in filt and "band-pass" in filt and "**no**" not in filt
    drop = pages["cs182/dropout/index.html"]
    assert "assets/artifacts/cs182/dropout/summary.csv" in drop and "gap" in text(drop)
    own = text(pages["cs182/own_cnn/index.html"])
    assert "own_cnn" in own and "Model 2: plain" in own and "295,096" in own  # the comparison table
    assert "assets/own_cnn/own_cnn_log.svg" in pages["cs182/own_cnn/index.html"]
    assert "81.23%" in own and "(this page)" in own  # every final run, the earlier one first
    # No PDF yet (`invoke pdf` prints it after the build): no page links one (issue 22, item 5) ...
    assert [path for path, html in pages.items() if P.PDF_NAME in html] == []
    assert P.PDF_NAME not in (b.site / "404.html").read_text()
    # ... and once it is there, every page does, and every link resolves to it.
    (b.site / P.PDF_NAME).write_bytes(b"%PDF-1.7 stand-in")
    assert P.link_site(b.site) == len(PAGES)
    for path in b.site.rglob("*.html"):
        targets = {(path.parent / h).resolve() for h in re.findall(r'href="([^"]*report\.pdf)"', path.read_text())}
        assert targets == (set() if path.name == "404.html" else {(b.site / P.PDF_NAME).resolve()}), path


@pytest.mark.slow  # a full site build: 10-25 s
def test_official_data_has_no_notice(fake_artifacts, tmp_path):
    set_official(fake_artifacts, True)
    b = build(fake_artifacts, tmp_path / "site")
    assert b.returncode == 0, b.output
    for path, html in b.pages().items():
        assert unofficial_notices(html) == 0, f"{path} shows the unofficial notice for official data"
    assert "come from the official data" in b.pages()["reproducibility/index.html"]


@pytest.mark.slow  # full site builds
@pytest.mark.parametrize("missing, task", [
    ("lenet/lenet_plain/log.csv", "invoke train"),
    ("data/dataset.json", "invoke data"),
    ("plots/confusion_lenet_bn_dropout.svg", "invoke plots"),
])
def test_build_fails_when_an_artifact_is_missing(fake_artifacts, tmp_path, missing, task):
    (fake_artifacts / missing).unlink()
    b = build(fake_artifacts, tmp_path / "site")
    assert b.returncode != 0
    assert f"{missing} is missing; run `{task}`" in b.output, b.output


def edit_json(root: Path, rel: str, change) -> None:
    """Change an artifact by hand and re-record its sha256, so only the content checks can object."""
    data = json.loads((root / rel).read_text())
    change(data)
    write_json(root / rel, data)
    write_manifest(root)


@pytest.mark.slow  # a site build (it fails early, but starts MkDocs and the hook)
def test_build_fails_on_a_run_that_is_not_the_reference(fake_artifacts, tmp_path):
    edit_json(fake_artifacts, "lenet/lenet_plain/metrics.json", lambda m: m["config"].update(epochs=1))
    b = build(fake_artifacts, tmp_path / "site")
    assert b.returncode != 0
    assert ("lenet/lenet_plain/metrics.json was trained with epochs=1, not the reference 20: the site "
            "publishes only reference runs; rerun `invoke train --force`") in b.output, b.output


@pytest.mark.slow  # a site build (it fails early, but starts MkDocs and the hook)
def test_build_fails_when_seeds_used_other_reference_runs(fake_artifacts, tmp_path):
    edit_json(fake_artifacts, "lenet/seeds.json", lambda s: s["reference"].update(lenet_plain=0.6012))
    b = build(fake_artifacts, tmp_path / "site")
    assert b.returncode != 0
    assert ("lenet/seeds.json used 0.6012 as the seed-0 test accuracy of lenet_plain, but the reference run "
            "in lenet/summary.csv has 0.6184") in b.output, b.output
    assert "rerun `invoke seeds`" in b.output, b.output


@pytest.mark.slow  # a site build (it fails early, but starts MkDocs and the hook)
def test_build_fails_on_a_hand_edited_accuracy(fake_artifacts, tmp_path):
    """63.5 (a percentage typed into a column of fractions), with the manifest re-hashed: the store's
    value rules catch what the sha256 no longer can."""
    summary = fake_artifacts / "lenet/summary.csv"
    df = pd.read_csv(summary)
    df.loc[df.variant == "lenet_plain", "test_accuracy"] = 63.5
    df.to_csv(summary, index=False)
    write_manifest(fake_artifacts)
    b = build(fake_artifacts, tmp_path / "site")
    assert b.returncode != 0
    assert "lenet/summary.csv line 3: test_accuracy = '63.5' is not a fraction in [0, 1]" in b.output, b.output


def config_with_docs(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of docs/ to add pages to, and an mkdocs.yml that builds it: (docs, config path)."""
    docs = Path(shutil.copytree(ROOT / "docs", tmp_path / "docs"))
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    # Paths in mkdocs.yml are relative to its folder: point them back at the repository.
    config.update(docs_dir=str(docs), hooks=[str(ROOT / h) for h in config["hooks"]],
                  watch=[str(ROOT / p) for p in config.get("watch", [])])
    config_path = tmp_path / "mkdocs.yml"
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True))
    return docs, config_path


@pytest.mark.slow  # a full site build: 10-25 s
def test_build_fails_on_an_unknown_placeholder(fake_artifacts, tmp_path):
    docs, config_path = config_with_docs(tmp_path)
    (docs / "bad.md").write_text("# Bad\n\nAccuracy: {{ metrik lenet_plain test_accuracy pct }}\n")
    b = build(fake_artifacts, tmp_path / "site", config_path)
    assert b.returncode != 0
    assert "bad.md" in b.output and "unknown placeholder 'metrik'" in b.output, b.output


@pytest.mark.slow  # a full site build: 10-25 s
def test_build_fails_when_a_notebook_cell_fails(fake_artifacts, tmp_path):
    """allow_errors: false. (The file sorts first, so the build stops before the real notebooks.)"""
    docs, config_path = config_with_docs(tmp_path)
    (docs / "answers/aaa_fails.py").write_text(
        "# %% [markdown]\n# # Fails\n\n# %%\nraise RuntimeError('this cell fails on purpose')\n")
    b = build(fake_artifacts, tmp_path / "site", config_path)
    assert b.returncode != 0
    assert "this cell fails on purpose" in b.output, b.output


# ------------------------------------------------------------------------------------ hook units

def load_hook(name: str):
    """hooks/<name>.py as a module (MkDocs loads hooks by path, not as a package)."""
    spec = importlib.util.spec_from_file_location(f"{name}_hook", ROOT / "hooks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def hook():
    return load_hook("artifacts")


class FakePage:
    def __init__(self, src_uri: str):
        self.file = type("F", (), {"src_uri": src_uri})()


def fill(hook, root: Path, text: str, src_uri: str = "lenet/results.md") -> str:
    return hook.substitute(hook.Store(root), text, FakePage(src_uri))


def test_placeholders_read_the_artifacts(hook, fake_artifacts):
    assert fill(hook, fake_artifacts, "{{ metric lenet_plain test_accuracy pct }}") == "61.8%"
    assert fill(hook, fake_artifacts, "x {{ metric lenet_bn_dropout epochs }} y") == f"x {EPOCHS} y"
    assert fill(hook, fake_artifacts, "{{ run lenet_plain config.eval_batch_size int }}") == "1,000"
    assert fill(hook, fake_artifacts, "{{ dataset counts.test int }}") == "10,000"
    assert fill(hook, fake_artifacts, "{{ value lenet/summary.csv lenet_plain.test_accuracy pct }}") == "61.8%"
    assert fill(hook, fake_artifacts, "{{ expect lenet_plain preprocess rescale }}") == ""
    fig = fill(hook, fake_artifacts, '{{ plot samples.png "Some images, labelled." "A grid" }}')
    assert "[![A grid](../assets/plots/samples.png){ loading=lazy }](../assets/plots/samples.png)" in fig
    assert "<figcaption" in fig and "**Figure 1.** Some images, labelled." in fig
    again = fill(hook, fake_artifacts, '{{ plot samples.png "Caption only." }}')  # alt = caption
    assert "[![Caption only.]" in again
    table = fill(hook, fake_artifacts, "    {{ log_table lenet_plain }}")
    assert len(table.split("\n")) == 2 + EPOCHS and all(line.startswith("    |") for line in table.split("\n"))


def test_machine_placeholders_show_the_record_or_say_it_is_missing(hook, fake_artifacts):
    """The machine of a run, the benchmark and verify's two sides (issue 22, item 4); files written
    before machines were recorded (the committed artifacts until they are redone) say so."""
    from pipeline.machine import KEYS
    assert tuple(FAKE_MACHINE) == KEYS  # the fake record is shaped as describe() writes it
    assert fill(hook, fake_artifacts, "{{ machine lenet/lenet_plain/metrics.json }}") == (
        "Fake CPU 9000 (2 cores), instruction set AVX2, torch threads 1, torch 2.13.0+cpu, CPU build, "
        "git 0123456789ab, Python 3.11.7, Linux-x86&#95;64")
    gpu = hook.machine_line({**FAKE_MACHINE, "onednn_max_cpu_isa": "AVX2", "device": "cuda:0",
                             "gpu": "NVIDIA H100", "torch_cuda": "12.4", "torch": "2.13.0+cu124"})
    assert "instruction set AVX2 (ONEDNN&#95;MAX&#95;CPU&#95;ISA=AVX2)" in gpu
    assert "torch 2.13.0+cu124, CUDA 12.4, git 0123456789ab, GPU NVIDIA H100," in gpu
    verify = fill(hook, fake_artifacts, "{{ verify_table }}")
    assert "| CPU | Fake CPU 9000 (2 cores) | Other CPU 42 (2 cores) |" in verify
    assert "| instruction set | AVX2 | AVX512 |" in verify and "The rerun ran in 300.0 s." in verify

    def edit(rel, change):
        data = json.loads((fake_artifacts / rel).read_text())
        change(data)
        write_json(fake_artifacts / rel, data)
    # (metrics.json must hold its machine: the contract requires the key)
    edit("bench.json", lambda d: d.update(machine="Linux-x86_64", processor="x86_64"))
    edit("verify.json", lambda d: (d["committed"].pop("machine"),
                                   d["rerun"].update(machine="Linux-x86_64", processor="x86_64")))
    write_manifest(fake_artifacts)
    assert ("on x86&#95;64, 2 cores (Linux-x86&#95;64), torch 2.13.0+cpu (CPU model, instruction set and torch "
            "build not recorded") in fill(hook, fake_artifacts, "{{ bench_setting }}")
    verify = fill(hook, fake_artifacts, "{{ verify_table }}")
    assert "| CPU, instruction set, torch build | not recorded | not recorded |" in verify
    assert "The rerun ran on `Linux-x86_64` (x86&#95;64) in 300.0 s." in verify
    edit("verify.json", lambda d: d["committed"].update(machine="differs"))  # machine.DIFFERS
    write_manifest(fake_artifacts)
    assert "| CPU, instruction set, torch build | differs between the runs | not recorded |" in fill(
        hook, fake_artifacts, "{{ verify_table }}")


def test_gpu_note_names_the_runs_on_a_gpu(hook, fake_artifacts):
    """The GPU sentence is decided from the devices the artifacts recorded (pipeline.machine)."""
    assert fill(hook, fake_artifacts, "{{ gpu_note }}").startswith("No GPU figure has been measured: every published run")
    verify = json.loads((fake_artifacts / "verify.json").read_text())
    verify["rerun"]["device"] = ["cuda (NVIDIA H100)"]
    write_json(fake_artifacts / "verify.json", verify)
    write_manifest(fake_artifacts)
    note = fill(hook, fake_artifacts, "{{ gpu_note }}")
    assert note.startswith("Measured on a GPU: `invoke verify`'s rerun on cuda (NVIDIA H100).")
    assert "The others (the reference runs, the seed runs" in note


def test_docstring_examples_are_valid(hook, fake_artifacts):
    """Every example in the hook's docstring expands against a complete tree, as written."""
    examples = hook.__doc__.split("Examples, each valid as written")[1]
    lines = [line.strip() for line in examples.splitlines() if line.strip().startswith("{{")]
    assert len(lines) >= 8
    for line in lines:
        assert fill(hook, fake_artifacts, line, "index.md"), line


def test_sentences_are_the_stored_ones(hook, fake_artifacts):
    """compare, val_trend and seeds_paired place what the pipeline stored; the hook judges nothing."""
    a, b = VARIANTS
    stored = json.loads((fake_artifacts / "lenet/findings.json").read_text())
    assert stored["compare"]["test_accuracy"]["sentence"] == (
        f"`{a}` has the higher test accuracy: 65.9% against 61.8% for `{b}` (4.1 percentage points).")
    # placed as stored, each run's code name shown as its model name (the code name in its tooltip)
    assert fill(hook, fake_artifacts, f"{{{{ compare test_accuracy {a} {b} }}}}") == (
        f'<abbr title="code name: {a}">Model 1: BN + dropout</abbr> has the higher test accuracy: 65.9% against '
        f'61.8% for <abbr title="code name: {b}">Model 2: plain</abbr> (4.1 percentage points).')
    assert fill(hook, fake_artifacts, "{{ compare final_train_loss }}").startswith(f'<abbr title="code name: {a}">')
    assert "overfits" in fill(hook, fake_artifacts, "{{ val_trend lenet_plain }}")
    assert "levelled off" in fill(hook, fake_artifacts, "{{ val_trend lenet_bn_dropout }}")
    seeds = json.loads((fake_artifacts / "lenet/seeds.json").read_text())
    assert fill(hook, fake_artifacts, "{{ seeds_paired }}") == hook.prose(seeds["sentence"])
    assert "Model 1: BN + dropout</abbr> minus" in hook.prose(seeds["sentence"])
    # The page's prose assumes which pair is compared: any other pair fails the build.
    with pytest.raises(hook.PluginError, match=f"compares {a} with {b}; update the page"):
        fill(hook, fake_artifacts, f"{{{{ compare test_accuracy {b} {a} }}}}")


@pytest.mark.parametrize("text, message", [
    ("{{ nope }}", "unknown placeholder 'nope'"),
    ("{{ metric lenet_big test_accuracy }}", "has no field 'lenet_big.test_accuracy'"),
    ("{{ metric lenet_plain accuracy }}", "has no field 'lenet_plain.accuracy'"),
    ("{{ run lenet_big config.lr }}", "no run of variant 'lenet_big'"),
    ("{{ metric lenet_plain }}", "wrong arguments"),
    ("{{ dataset counts.nope }}", "no field 'counts.nope'"),
    ("{{ expect lenet_plain preprocess normalize }}", "update the page"),
    ("{{ compare params_by_layer }}", "no field 'compare.params_by_layer'"),
    ("{{ val_trend lenet_big }}", "no field 'val_trend.lenet_big'"),
    ("{{ plot nope Caption. }}", "plots/nope.svg is not a figure the artifacts contract lists"),
    ("{{ plot samples.png }}", "missing a required argument: 'caption'"),
    ("a {{ summary_table }}", "put it alone on its line"),
])
def test_bad_placeholders_fail(hook, fake_artifacts, text, message):
    with pytest.raises(hook.PluginError, match=re.escape(message)):
        fill(hook, fake_artifacts, text)


def test_changed_artifact_fails(hook, fake_artifacts):
    with open(fake_artifacts / "lenet/summary.csv", "a") as f:
        f.write("\n")
    with pytest.raises(hook.PluginError, match="has changed since `invoke train` wrote it"):
        fill(hook, fake_artifacts, "{{ summary_table }}")


@pytest.fixture(scope="module")
def maths_hook():
    return load_hook("maths")


def test_notebook_cells_get_a_time_limit(maths_hook):
    from mkdocs_jupyter import nbconvert2
    from nbconvert.preprocessors import ExecutePreprocessor

    def timeout():
        app = nbconvert2.get_nbconvert_app(execute=True, allow_errors=False)
        return ExecutePreprocessor(config=app.config).timeout

    assert maths_hook.CELL_TIMEOUT_S > 0
    maths_hook.set_cell_timeout(7)
    maths_hook.set_cell_timeout(9)  # `mkdocs serve` rebuilds: the latest wins, wrapped once
    assert timeout() == 9
    maths_hook.set_cell_timeout(maths_hook.CELL_TIMEOUT_S)
    assert timeout() == maths_hook.CELL_TIMEOUT_S
