"""The artifacts contract: every file under artifacts/, its columns or keys, and the one task that
writes it.

This module is the single statement of the contract. The store (pipeline/store.py) refuses to
write a path the contract does not list, or one that another task owns, and checks columns and
value ranges whenever a file is read; the site hook and the notebook pages read through the same
store; ARTIFACTS.md is generated from this module (`invoke contract`) and a test checks it is.
Pure Python, no torch: the site build imports it.

A path pattern may hold `{variant}` (one path segment, e.g. lenet_plain) and `{a|b|c}`
(alternatives). `writer` is the invoke command that writes the file, exactly as a user types it.
`checks` name the value rules applied on every read: column (CSV) or dotted key (JSON, `*` for
every key of a dict) -> rule.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

MANIFEST = "manifest.json"
STORE = "the store"  # the manifest's writer: every task, through pipeline/store.py, under a lock

# --- the reference run ------------------------------------------------------------------------
# The published LeNet runs use exactly these settings (the homework's 20 epochs, batch 128, Adam
# 1e-3, seed 0). A run with any other value goes to build/runs/ and never replaces the reference;
# the site refuses to publish a run whose recorded settings differ. TrainConfig's defaults are
# tested equal to this.
REFERENCE = {"epochs": 20, "batch_size": 128, "lr": 1e-3, "seed": 0, "smoke": False}
RUNS_DIR = "build/runs"   # where runs with other settings go (git-ignored)
# The published results for these exact two models that can be checked here: the CSCE-421 HW3
# walkthrough (shared/seeds/000_a60cf687703bbf88.txt, line 844: "about 65.9% compared to 61.8%",
# official CIFAR-10, 20 epochs). No peer-reviewed LeNet-5-on-CIFAR-10 figure could be verified
# offline, so the "gap to published results" is measured against these (quoted, not computed).
PUBLISHED = {"lenet_bn_dropout": 0.659, "lenet_plain": 0.618}
PUBLISHED_SOURCE = "the CSCE-421 HW3 walkthrough (official CIFAR-10, 20 epochs)"

# --- columns (the modules that write these files import them from here) -----------------------
SUMMARY_COLUMNS = ("variant", "seed", "epochs", "preprocess", "batch_size", "lr",
                   "test_accuracy", "test_loss", "best_val_accuracy", "best_val_epoch",
                   "final_train_loss", "final_train_accuracy", "train_seconds", "eval_seconds",
                   "images_per_second", "params", "device", "official_data")
LOG_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
               "test_loss", "test_accuracy", "seconds", "eval_seconds", "images_per_second")
OWN_LOG_COLUMNS = ("epoch", "train_loss", "train_accuracy", "seconds", "images_per_second",
                   "elapsed_train_seconds")
PREDICTION_COLUMNS = ("index", "label", "prediction")
SEEDS_COLUMNS = ("variant", "n", "mean", "std", "sem", "ci_low", "ci_high", "df")
ABLATION_RUN_COLUMNS = ("preprocess", "batch_norm", "dropout", "seed", "test_accuracy",
                        "best_val_accuracy", "train_seconds", "augment", "epochs", "best_val_epoch",
                        "final_val_accuracy", "final_train_accuracy", "final_train_loss", "test_loss",
                        "images_per_second", "params", "device", "threads", "config")
EFFECT_COLUMNS = ("effect", "factor_a", "level_a", "factor_b", "level_b", "estimate", "std_error",
                  "ci_low", "ci_high", "df", "t", "p", "n_runs")
CELL_COLUMNS = ("preprocess", "batch_norm", "dropout", "augment", "n", "mean", "std", "ci_low",
                "ci_high", "min", "max")
GRADCHECK_COLUMNS = ("layer", "backward", "gradient", "shape", "numeric_rel_error",
                     "torch_rel_error", "threshold", "torch_threshold", "passed")
DROPOUT_RUN_COLUMNS = ("p", "seed", "test_accuracy", "final_val_accuracy",
                       "final_train_eval_accuracy", "final_train_accuracy", "gap",
                       "best_val_accuracy", "best_val_epoch", "test_loss", "final_train_loss",
                       "epochs", "train_seconds", "images_per_second", "device", "threads", "config")
DROPOUT_CURVE_COLUMNS = ("p", "seed", "epoch", "train_accuracy", "train_eval_accuracy",
                         "val_accuracy", "test_accuracy", "train_loss", "train_eval_loss", "val_loss")
DROPOUT_SUMMARY_COLUMNS = ("p", "n", "train_eval_accuracy", "val_accuracy", "gap", "gap_ci_low",
                           "gap_ci_high", "test_accuracy", "test_ci_low", "test_ci_high",
                           "test_vs_p0", "test_vs_p0_ci_low", "test_vs_p0_ci_high", "test_vs_p0_p")
OWN_SEARCH_KEYS = ("widths", "epochs", "batch_size", "lr", "momentum", "weight_decay",
                   "label_smoothing", "warmup", "bias_scaler", "lookahead", "translate", "flip")
OWN_SEARCH_COLUMNS = ("trial", *OWN_SEARCH_KEYS, "val_accuracy", "train_seconds", "params",
                      "device", "data_md5")
VERIFY_COLUMNS = ("variant", "metric", "committed", "rerun", "difference", "seeds_sd", "verdict")
# The reference variants (pipeline.model.VARIANTS's keys, which a test checks: the contract stays
# free of torch) name per_class.csv's columns, one pair per variant.
REFERENCE_VARIANTS = ("lenet_bn_dropout", "lenet_plain")
PER_CLASS_COLUMNS = ("class", "images", *(f"{v}_{k}" for v in REFERENCE_VARIANTS for k in ("correct", "accuracy")))
MISTAKE_COLUMNS = ("index", "label", "prediction", "confidence")

# --- value rules ------------------------------------------------------------------------------
RULES = {
    "fraction": (lambda v: 0.0 <= v <= 1.0, "a fraction in [0, 1]"),
    "count": (lambda v: v >= 0 and float(v).is_integer(), "a non-negative whole number"),
    "nonneg": (lambda v: v >= 0, "a non-negative number"),
    "class": (lambda v: float(v).is_integer() and 0 <= v <= 9, "a class index 0..9"),
}
_RUN = {"test_accuracy": "fraction", "best_val_accuracy": "fraction",
        "final_train_accuracy": "fraction", "test_loss": "nonneg", "final_train_loss": "nonneg",
        "train_seconds": "nonneg", "params": "count", "epochs": "count", "seed": "count"}


@dataclass(frozen=True)
class Artifact:
    pattern: str                 # path under artifacts/
    writer: str                  # the one invoke task that writes it
    what: str                    # what it holds (ARTIFACTS.md's text)
    columns: tuple = ()          # CSV: the header, in order
    keys: tuple = ()             # JSON: top-level keys that must be present
    checks: dict = field(default_factory=dict)
    rows_recorded: bool = False  # a sweep's resumable rows: the manifest keeps each line's digest

    @property
    def derives_from(self) -> tuple[str, ...]:
        """The artifacts this one is computed from (patterns of DERIVED_FROM): when one of them
        changes, this one is stale and is derived again (`invoke derive`, part of `invoke all`)."""
        return DERIVED_FROM.get(self.pattern, ())

    @property
    def format(self) -> str:
        return self.pattern.rsplit(".", 1)[-1].rstrip("}")

    @property
    def regex(self) -> re.Pattern:
        out, i = "", 0
        for m in re.finditer(r"\{([^}]*)\}", self.pattern):
            out += re.escape(self.pattern[i:m.start()])
            body = m.group(1)
            out += "[a-z0-9_]+" if body == "variant" else "(?:" + "|".join(map(re.escape, body.split("|"))) + ")"
            i = m.end()
        return re.compile(out + re.escape(self.pattern[i:]) + r"\Z")


_FIG = "{png|svg}"
CONTRACT: tuple[Artifact, ...] = (
    Artifact(MANIFEST, STORE,
             '`{"artifacts": {path: entry}, "tasks": {stage: {"key", "task", "outputs", "finished"}}}`; '
             "an entry holds `task, commit, dirty, torch, config, seeds, device, data (source, official, "
             "md5s, mismatched), timestamp, sha256, bytes`. Updated under a file lock "
             "(`artifacts/.manifest.lock`); an entry whose file and settings are unchanged keeps its "
             "commit and time",
             keys=("artifacts", "tasks")),
    Artifact("data/dataset.json", "data",
             "source, `official` (bool), per-file md5s and which differ from the official ones, "
             "counts, classes, class counts, the split (seed, sizes, sha256 of the index lists), "
             "`arrays_sha256` (the split arrays the training stages key on)",
             keys=("source", "official", "md5s", "official_md5s", "mismatched", "classes",
                   "image_shape", "counts", "class_counts", "split", "arrays_sha256"),
             checks={"counts.*": "count"}),
    Artifact("lenet/summary.csv", "train",
             "one row per reference run (seed 0, the settings of `contract.REFERENCE`), accuracies "
             "as fractions", SUMMARY_COLUMNS, checks=_RUN),
    Artifact("lenet/{variant}/log.csv", "train", "one row per epoch", LOG_COLUMNS,
             checks={"epoch": "count", "train_accuracy": "fraction", "val_accuracy": "fraction",
                     "test_accuracy": "fraction", "train_loss": "nonneg", "val_loss": "nonneg",
                     "test_loss": "nonneg", "seconds": "nonneg"}),
    Artifact("lenet/{variant}/metrics.json", "train",
             "`config` (TrainConfig, asdict), `final` (as summary), `params_by_layer`, `device`, "
             "`peak_rss_mib`, `data`, `machine` (pipeline/machine.py: CPU model, instruction set, "
             "threads, torch build, GPU)",
             keys=("variant", "description", "config", "preprocess", "final", "params_by_layer",
                   "device", "peak_rss_mib", "data", "machine"),
             checks={"final.test_accuracy": "fraction", "final.best_val_accuracy": "fraction",
                     "params_by_layer.*": "count"}),
    Artifact("lenet/{variant}/confusion.csv", "train",
             "10 x 10 test-set counts, header `true\\pred,<classes>`, one row per true class"),
    Artifact("lenet/{variant}/predictions.csv", "train",
             "every test image: index, true label, predicted class (final epoch)",
             PREDICTION_COLUMNS, checks={"index": "count", "label": "class", "prediction": "class"}),
    Artifact("lenet/{variant}/weights.pt", "train", "`state_dict` of the final model"),
    Artifact("lenet/seed_runs.csv", "seeds",
             "one row per extra seed (1..N-1) of each variant, same settings as the reference; seed 0 "
             "is `lenet/summary.csv`'s reference run", SUMMARY_COLUMNS, checks=_RUN, rows_recorded=True),
    Artifact("lenet/seeds.json", "seeds",
             "test accuracy over seeds: per variant `{n, mean, std, sem, ci_low, ci_high, df, seeds, "
             "values}`, the paired comparison `{a, b, seeds, n, mean, std, ci_low, ci_high, t, p}`, "
             "`sentence` (the paired result in words), `level`, `sweeps`, `reference` (the seed-0 "
             "accuracies it used, checked against summary.csv by the site)",
             keys=("config", "variants", "paired", "level", "sweeps", "reference", "sentence"),
             checks={"variants.*.mean": "fraction", "reference.*": "fraction"}),
    Artifact("lenet/seeds.csv", "seeds", "per-variant statistics of seeds.json, to cite",
             SEEDS_COLUMNS, checks={"n": "count", "mean": "fraction"}),
    Artifact("lenet/findings.json", "plots",
             "sentences the results page states, computed from the reference runs: `compare` (per "
             "summary column, which run is higher and by how much), `val_trend` (per variant, where "
             "the validation loss was lowest and whether it rose after)",
             keys=("compare", "val_trend")),
    Artifact("ablation/runs.csv", "ablation",
             "one row per run (config: hash of the settings that make runs comparable)",
             ABLATION_RUN_COLUMNS,
             checks={"test_accuracy": "fraction", "best_val_accuracy": "fraction", "seed": "count",
                     "train_seconds": "nonneg"}, rows_recorded=True),
    Artifact("ablation/effects.csv", "ablation",
             "main effects and two-way interactions on test accuracy (fractions)", EFFECT_COLUMNS,
             checks={"n_runs": "count"}),
    Artifact("ablation/cells.csv", "ablation", "per cell", CELL_COLUMNS,
             checks={"n": "count", "mean": "fraction"}),
    Artifact("ablation/summary.json", "ablation",
             "config, factors, runs, `sweeps` (wall time of each invocation), augmentation against "
             "the published figures, the generated `conclusion`",
             keys=("config", "factors", "response", "level", "runs", "sweeps", "augmentation",
                   "conclusion")),
    Artifact("ablation/{effects|cells}." + _FIG, "ablation",
             "effects with 95% CIs; every run as a dot per seed"),
    Artifact("plots/{learning_curves|per_class_accuracy|samples}." + _FIG, "plots",
             "learning curves, per-class test accuracy, the sample grid"),
    Artifact("plots/confusion_{variant}." + _FIG, "plots", "test confusion matrix of a reference run"),
    Artifact("plots/confident_mistakes_{variant}." + _FIG, "plots",
             "the test images of `lenet/{variant}/confident_mistakes.csv`, each with its true class, "
             "the predicted class and the confidence"),
    Artifact("lenet/{variant}/confident_mistakes.csv", "plots",
             "the test images a reference run misclassifies with the highest confidence, most confident "
             "first (ties by index): `index` into the test set, true `label` and `prediction` as class "
             "indices (as in predictions.csv), `confidence` = the softmax probability of the predicted "
             "class, recomputed from weights.pt in eval mode; the plots task checks that these weights "
             "predict exactly predictions.csv", MISTAKE_COLUMNS,
             checks={"index": "count", "label": "class", "prediction": "class", "confidence": "fraction"}),
    Artifact("lenet/per_class.csv", "plots",
             "one row per class: its test images, and per reference run the number classified right and "
             "the accuracy (a fraction), from the run's confusion.csv", PER_CLASS_COLUMNS,
             checks={"images": "count", **{f"{v}_correct": "count" for v in REFERENCE_VARIANTS},
                     **{f"{v}_accuracy": "fraction" for v in REFERENCE_VARIANTS}}),
    Artifact("cs182/gradchecks.csv", "layers",
             "one row per gradient of every backward in `pipeline/numpy_layers.py` (numeric: largest "
             "relative error against centred differences; torch: against autograd, float64); nothing "
             "is written if a check fails", GRADCHECK_COLUMNS,
             checks={"numeric_rel_error": "nonneg", "torch_rel_error": "nonneg"}),
    Artifact("cs182/conv_timings.json", "layers",
             "median seconds of one conv forward + backward: im2col, torch, naive (extrapolated)",
             keys=("im2col_s", "torch_s", "naive_s", "im2col_over_torch", "naive_over_torch",
                   "shape", "repeats", "torch_threads"),
             checks={"im2col_s": "nonneg", "torch_s": "nonneg", "naive_s": "nonneg"}),
    Artifact("cs182/bn_graph." + _FIG, "layers", "the batch-norm computational graph (q5(a))"),
    Artifact("cs182/filters.json", "filters",
             "CS182 q4: kernels, test images used, largest difference from `F.conv2d`, DFT "
             "magnitudes at 0 / max / Nyquist, high-frequency energy before and after",
             keys=("kernels", "kernel_sums", "test_indices", "classes", "max_abs_diff_vs_torch",
                   "tolerance", "response_at_zero", "response_max", "response_at_nyquist",
                   "high_frequency_energy")),
    Artifact("cs182/{filters_images|filters_response}.png", "filters",
             "each image blurred, Sobel x / y, edge magnitude; the kernels' frequency responses"),
    Artifact("cs182/dropout/runs.csv", "dropout",
             "CS182 q5(c), one row per run (gap = eval-mode train minus validation accuracy)",
             DROPOUT_RUN_COLUMNS,
             checks={"test_accuracy": "fraction", "final_val_accuracy": "fraction",
                     "final_train_eval_accuracy": "fraction", "seed": "count"}, rows_recorded=True),
    Artifact("cs182/dropout/curves.csv", "dropout", "every epoch of every run",
             DROPOUT_CURVE_COLUMNS, checks={"val_accuracy": "fraction", "epoch": "count"}, rows_recorded=True),
    Artifact("cs182/dropout/summary.csv", "dropout", "per p: gap and test accuracy with CIs",
             DROPOUT_SUMMARY_COLUMNS, checks={"n": "count", "test_accuracy": "fraction"}),
    Artifact("cs182/dropout/summary.json", "dropout",
             "config, the summary rows, the generated `conclusion`, `repeat_of_ablation`, `sweeps`",
             keys=("config", "summary", "conclusion", "sweeps")),
    Artifact("cs182/dropout/dropout_curves." + _FIG, "dropout",
             "train (eval mode) and validation accuracy per epoch per p; final gap with 95% CI"),
    Artifact("own_cnn/search.csv", "train-own --search",
             "CS182 q5(d), one row per trial, scored on the 5,000 validation images only",
             OWN_SEARCH_COLUMNS, checks={"val_accuracy": "fraction", "train_seconds": "nonneg"}, rows_recorded=True),
    Artifact("own_cnn/chosen.json", "train-own --search",
             "the chosen trial's row plus `seconds_per_epoch` and `final_epochs` (as many as fit "
             "`own_cnn.BUDGET_SHARE` of the 15-minute budget)",
             keys=("trial", "val_accuracy", "seconds_per_epoch", "final_epochs")),
    Artifact("own_cnn/summary.csv", "train-own", "one row, the columns of `lenet/summary.csv`",
             SUMMARY_COLUMNS, checks=_RUN),
    Artifact("own_cnn/metrics.json", "train-own",
             "`config` (OwnConfig), `chosen`, `final`, `params`, `device`, `budget_seconds`, "
             "`budget_share`, `budget_used`, `within_budget`, data provenance, `history` (every "
             "earlier final run), `target` (`own_cnn.target_finding`: the target, met or not, "
             "the page's sentence)",
             keys=("config", "chosen", "final", "params", "device", "budget_seconds", "budget_share",
                   "within_budget", "data", "history", "target"),
             checks={"final.test_accuracy": "fraction", "final.val_accuracy": "fraction",
                     "target.test_accuracy": "fraction"}),
    Artifact("own_cnn/log.csv", "train-own", "per epoch", OWN_LOG_COLUMNS,
             checks={"train_accuracy": "fraction", "seconds": "nonneg"}),
    Artifact("own_cnn/predictions.csv", "train-own", "test predictions", PREDICTION_COLUMNS,
             checks={"label": "class", "prediction": "class"}),
    Artifact("own_cnn/weights.pt", "train-own", "trained weights (`OwnCNN(widths).load_state_dict`)"),
    Artifact("own_cnn/own_cnn_log." + _FIG, "plots",
             "the own CNN's training loss and accuracy per epoch against training time"),
    Artifact("answers.json", "answers", "the written-question answers of the three homeworks"),
    Artifact("answers/{bn_distributions|bn_running_stats|conv_matrix_A|conv_sliding_window|fir_1d|"
             "receptive_field}.png", "answers", "the answers' figures"),
    Artifact("bench.json", "bench",
             "throughput of our loop vs the plain DataLoader loop per thread count, the options tried "
             "(channels-last, torch.compile), `invoke all --force` against the plain way's training "
             "time, each target with its value, the im2col conv against torch, peak memory, machine "
             "and torch", keys=("settings", "device", "torch", "threads", "variants", "loops", "options",
                                "targets", "machine", "cores")),
    Artifact("profile.csv", "bench",
             "torch.profiler: the ops taking the most CPU time in one training step of each model, "
             "plain loop and ours, milliseconds per step", ("variant", "loop", "op", "ms_per_step", "share"),
             checks={"ms_per_step": "nonneg", "share": "fraction"}),
    Artifact("verify.csv", "verify",
             "the reproduction verdict: committed vs rerun reference runs, per variant and metric: "
             "`identical`, `within seeds' spread` or `differs`", VERIFY_COLUMNS),
    Artifact("verify.json", "verify",
             "the same verdict with the machine, torch and commit of both the committed and the rerun",
             keys=("committed", "rerun", "rows", "verdict")),
    Artifact("timings.json", "all",
             "seconds per stage of the last `invoke all` that redid something (an all-up-to-date "
             "run writes nothing)", keys=("seconds", "forced", "redone")),
)


# --- what is derived from what ---------------------------------------------------------------
# An artifact computed from other artifacts names them here (patterns of CONTRACT). The store
# records, with each such file, the sha256 of every source it was computed from; the site refuses a
# tree where they differ from the sources present (a mix of runs); `invoke derive` recomputes what
# is stale, in the order this graph gives. What a reference run feeds is therefore found here, not
# kept by hand: `downstream(["lenet/summary.csv"])`.
_RUN_FILES = ("lenet/summary.csv", "lenet/{variant}/log.csv", "lenet/{variant}/metrics.json",
              "lenet/{variant}/confusion.csv", "lenet/{variant}/predictions.csv", "lenet/{variant}/weights.pt")
_CURVES = ("lenet/summary.csv", "lenet/{variant}/log.csv", "lenet/{variant}/confusion.csv",
           "lenet/{variant}/predictions.csv")
DERIVED_FROM = {
    # the reference runs are trained on the data `invoke data` recorded
    **{p: ("data/dataset.json",) for p in _RUN_FILES},
    "lenet/seeds.json": ("lenet/summary.csv", "lenet/seed_runs.csv"),   # seed 0 is the reference run
    "lenet/seeds.csv": ("lenet/summary.csv", "lenet/seed_runs.csv"),
    "lenet/findings.json": ("lenet/summary.csv", "lenet/{variant}/log.csv"),
    "lenet/per_class.csv": ("lenet/{variant}/confusion.csv",),
    "lenet/{variant}/confident_mistakes.csv": ("lenet/{variant}/weights.pt", "lenet/{variant}/predictions.csv",
                                               "lenet/{variant}/confusion.csv"),
    "plots/{learning_curves|per_class_accuracy|samples}." + _FIG: _CURVES,
    "plots/confusion_{variant}." + _FIG: ("lenet/{variant}/confusion.csv",),
    "plots/confident_mistakes_{variant}." + _FIG: ("lenet/{variant}/confident_mistakes.csv",),
    "own_cnn/own_cnn_log." + _FIG: ("own_cnn/log.csv",),
    # verify compares a rerun with the committed reference (its spread from seeds.json); the
    # benchmark's end-to-end run states whether it reproduced the committed accuracies
    "verify.csv": ("lenet/summary.csv", "lenet/seeds.json"),
    "verify.json": ("lenet/summary.csv", "lenet/seeds.json"),
    "bench.json": ("lenet/summary.csv",),
}


def _matches(pattern: str, rels) -> list[str]:
    regex = Artifact(pattern, "", "").regex
    return sorted(r for r in rels if regex.match(r))


def sources(rel: str, present) -> list[str]:
    """The files among `present` (paths under artifacts/) that `rel` is derived from."""
    spec = spec_of(rel)
    return sorted({s for p in (spec.derives_from if spec else ()) for s in _matches(p, present)})


def downstream(changed, present) -> list[str]:
    """Every file among `present` derived, directly or through others, from one of `changed`, in an
    order where each comes after everything it is derived from."""
    present = sorted(set(present))
    reached, grew = set(changed), True
    while grew:
        new = {r for r in present if r not in reached and set(sources(r, present)) & reached}
        reached |= new
        grew = bool(new)
    todo, order = sorted(reached - set(changed)), []
    while todo:
        ready = [r for r in todo if not set(sources(r, present)) & set(todo)]
        if not ready:
            raise AssertionError(f"DERIVED_FROM has a cycle among {todo}")
        order += ready
        todo = [r for r in todo if r not in ready]
    return order


def spec_of(rel: str) -> Artifact | None:
    """The contract entry of a path under artifacts/, or None if the contract does not list it."""
    found = [a for a in CONTRACT if a.regex.match(rel)]
    assert len(found) <= 1, f"{rel} matches {len(found)} contract entries"
    return found[0] if found else None


def writer_of(rel: str) -> str:
    spec = spec_of(rel)
    return spec.writer if spec else "all"


def invoke_command(writer: str) -> str:
    """`invoke X` for a writer; the store's own file is rebuilt by rerunning the stages."""
    return "invoke all --force" if writer == STORE else f"invoke {writer}"


def markdown() -> str:
    """ARTIFACTS.md, generated from CONTRACT (`invoke contract` writes it; a test compares)."""
    lines = [
        "# The artifacts contract",
        "",
        "<!-- Generated from pipeline/contract.py by `invoke contract`; edit that module, not this file. -->",
        "",
        "Everything the site shows is read from `artifacts/`, written by the invoke tasks through one store",
        "(`pipeline/store.py`). Each file has exactly one writer; the store refuses any other write, writes",
        "atomically (temp file in the same folder, fsync, rename), records every file in",
        "`artifacts/manifest.json` (commit, config, seeds, device, torch, data checksums, sha256) under a",
        "file lock, and on every read checks the sha256, the columns or keys below and the value rules",
        "(accuracies in [0, 1], counts non-negative).",
        "",
        "A stage's key is a hash of what changes its results: the contents of its code files (named",
        "relative to the repository), its config and the data's md5s; never the checkout's path, the",
        "thread count or the time. An unchanged key means nothing is redone and nothing is rewritten.",
        "",
        f"The published LeNet runs use the reference settings `{REFERENCE}`; `invoke train` with",
        f"any other settings writes to `{RUNS_DIR}/` (git-ignored) and never over the reference.",
        "Raw images are data and never committed: the sample grid's test images go to the git-ignored",
        "`data/test_samples.npz` cache.",
        "",
        "A file computed from other artifacts names them under \"derived from\" (`DERIVED_FROM`): the",
        "manifest keeps the sha256 of each source it was computed from, the site refuses a tree where they",
        "differ from the files present (a mix of runs), and `invoke derive` (part of `invoke all`) computes",
        "again whatever is stale, in this graph's order, without training.",
        "",
        "| path | written by | what | columns / keys | checked on read | derived from |",
        "|---|---|---|---|---|---|",
    ]
    for a in CONTRACT:
        shape = (", ".join(f"`{c}`" for c in a.columns) if a.columns
                 else ", ".join(f"`{k}`" for k in a.keys) if a.keys else "")
        checks = "; ".join(f"`{k}` {RULES[r][1]}" for k, r in a.checks.items())
        writer = a.writer if a.writer == STORE else f"`invoke {a.writer}`"
        what = a.what + ("; resumable: the manifest keeps each line's digest, and a line it does not know "
                          "(edited outside the pipeline) is set aside and redone" if a.rows_recorded else "")
        derived = ", ".join(f"`{p}`" for p in a.derives_from)
        lines.append(f"| `{a.pattern}` | {writer} | {what} | {shape} | {checks} | {derived} |")
    return "\n".join(lines) + "\n"
