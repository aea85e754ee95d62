"""MkDocs hook: every number on the site comes from `artifacts/`, through placeholders in the pages.

The pages never hold a result. They hold placeholders, which `on_page_markdown` replaces with values
read from the artifact files (paths and columns as ARTIFACTS.md defines them); `on_files` publishes
`artifacts/plots/*` as `assets/plots/*`. Every file read is checked against its sha256 in
`artifacts/manifest.json`, so the site cannot show a file that changed after its task wrote it. A
missing or stale artifact, an unknown placeholder or a bad argument fails the build with a
PluginError naming the file or placeholder and the invoke task that writes it. If
`data/dataset.json` says `official: false`, every page gets a warning admonition under its title.

Notebook pages (docs/answers/*.py, rendered by mkdocs-jupyter) read their artifacts themselves
(pipeline/answers/render.py) and hold no placeholders: their "Markdown" is Python source, which
the hook leaves alone; they get the notice in their HTML instead (`on_page_content`).

Artifacts root: `$LENET_ARTIFACTS` if set (relative to the working directory), else `artifacts/`
next to mkdocs.yml. Tests point it at a fake tree.

Placeholder syntax: `{{ name arg arg ... }}`; arguments are split like a shell line (quote one that
holds spaces). A placeholder that expands to several lines (a table) must stand alone on its line;
its indentation is repeated on every line, so it works inside admonitions and `???` blocks.
`{{` is reserved: any `{{ ... }}` in a page must be one of these.

    {{ summary_table }}                   every run side by side, one column each (lenet/summary.csv)
    {{ metric VARIANT COLUMN [FORMAT] }}  one cell of lenet/summary.csv, e.g.
                                          {{ metric lenet_plain test_accuracy pct }}
    {{ expect VARIANT COLUMN VALUE }}     nothing, but fails the build unless that summary.csv cell
                                          is VALUE: guards prose that depends on it
    {{ compare COLUMN [A B] }}            a sentence saying which run is higher / lower on a
                                          summary.csv column (A, B default: the two runs in file
                                          order), with both values and the difference
    {{ val_trend VARIANT }}               a sentence on where the run's validation loss was lowest
                                          and whether it rose afterwards (lenet/VARIANT/log.csv)
    {{ log_table VARIANT }}               the run's per-epoch log (lenet/VARIANT/log.csv)
    {{ params_table }}                    parameters per layer of every run (metrics.json)
    {{ run VARIANT KEY [FORMAT] }}        a value of lenet/VARIANT/metrics.json; KEY is dotted,
                                          e.g. {{ run lenet_plain config.val_size }}
    {{ dataset KEY [FORMAT] }}            a value of data/dataset.json, KEY dotted
    {{ dataset_table }}                   data/dataset.json but its checksums, flattened to one table
    {{ md5_table }}                       each data file's md5 beside the official one
    {{ data_notice }}                     one sentence: official data or not, and which files differ
    {{ provenance [ARTIFACT] }}           commit, time, device, torch, data of the manifest entry of
                                          ARTIFACT (default lenet/summary.csv)
    {{ manifest_table }}                  every artifact in the manifest: task, commit, size, sha256
    {{ plot [DIR/]NAME [ALT TEXT ...] }}  the image artifacts/DIR/NAME (DIR plots, ablation or cs182; .svg
                                          if no extension), linked to itself; e.g.
                                          {{ plot learning_curves Curves }}, {{ plot ablation/effects }}
    {{ seeds_table }}, {{ seeds_paired }} multi-seed test accuracy (lenet/seeds.json): per variant,
                                          and the paired difference as a sentence
    {{ seeds KEY [FORMAT] }}              a value of lenet/seeds.json, KEY dotted
    {{ ablation KEY [FORMAT] }}           a value of ablation/summary.json, KEY dotted
    {{ ablation_cells }}, {{ ablation_effects }}, {{ ablation_runs }}, {{ ablation_conclusion }}
                                          the ablation's cells, effects, runs and generated findings
    {{ sweep_time ablation|seeds }}       minutes and runs of that sweep
    {{ gradchecks_table }}                every gradient check of the CS182 NumPy layers: error against
                                          finite differences and torch, passed (cs182/gradchecks.csv)
    {{ conv_timings_table }}              seconds and ratio to torch of the three convolutions, and a
                                          sentence on the setting (cs182/conv_timings.json)
    {{ csv PATH [LABEL ...] }}            a download link to the CSV artifact PATH, published with the
                                          site, with its sha256
    {{ cite }}                            BibTeX and plain-text citation tabs (CITATION.cff + git commit)

FORMAT is `pct` (fraction -> 65.9%), `pct2` (65.93%), `int` (45,000), `f1`..`f4` (fixed decimals)
or any Python format spec (`.3g`, `,.0f`); without one a value is shown as the file holds it.
"""
from __future__ import annotations

import csv
import hashlib
import inspect
import json
import os
import posixpath
import re
import shlex
from pathlib import Path

import markdown as md  # as md: the hook's functions call their Markdown argument `markdown`
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

ENV_ROOT = "LENET_ARTIFACTS"
PLOTS_DIR = "plots"
SITE_PLOTS = "assets/plots"  # where the plots land in the built site
FIGURE_DIRS = ("plots", "ablation", "cs182", "cs182/dropout", "own_cnn")  # artifact folders whose images are published, as assets/<dir>/
SITE_FILES = "assets/artifacts"  # where the CSV artifacts are published, for download
PLOT_SUFFIXES = (".png", ".svg")
# Which invoke task writes a path under artifacts/ (ARTIFACTS.md), for the "run `invoke x`" hint.
TASK_BY_PREFIX = (("data/", "data"), ("lenet/seeds", "seeds"), ("lenet/", "train"),
                  ("ablation/", "ablation"), ("plots/", "plots"), ("cs182/dropout/", "dropout"),
                  ("cs182/filters", "filters"), ("cs182/", "layers"), ("own_cnn/", "train-own"),
                  ("answers.json", "answers"), ("bench.json", "bench"), ("timings.json", "all"),
                  ("manifest.json", "all"))
FORMATS = {"pct": ".1%", "pct2": ".2%", "int": ",.0f", "f1": ".1f", "f2": ".2f", "f3": ".3f", "f4": ".4f"}
# compare: label, format and how a difference is stated, per summary.csv column.
COMPARE = {
    "test_accuracy": ("test accuracy", "pct", "points"),
    "best_val_accuracy": ("best validation accuracy", "pct", "points"),
    "final_train_accuracy": ("final training accuracy", "pct", "points"),
    "test_loss": ("test loss", "f3", "difference"),
    "final_train_loss": ("final training loss", "f3", "difference"),
    "train_seconds": ("training time (seconds)", "f1", "ratio"),
    "images_per_second": ("training throughput (images/s)", ",.0f", "ratio"),
    "params": ("parameter count", "int", "difference"),
}
# val_trend: a final validation loss within this fraction of its minimum counts as levelled off.
VAL_RISE_TOLERANCE = 0.02
# The rebuilt copy of CIFAR-10 (shared/cifar10/README.md): its test_batch md5, to name it exactly.
REBUILT_TEST_MD5 = "328708d8965ef6bd364a7a13d64d35e6"
MD5_FIELDS = ("md5s", "official_md5s", "mismatched")  # dataset.json fields md5_table shows

PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
NOTEBOOK_SUFFIXES = (".py", ".ipynb")  # the pages mkdocs-jupyter renders (its `include` in mkdocs.yml)
H1_END = re.compile(r"</h1>", re.IGNORECASE)


# ------------------------------------------------------------------------------------- reading files

class Artifacts:
    """The artifacts tree of one build: reads each file once, checks it against the manifest."""

    def __init__(self, root: Path, project: Path | None = None):
        self.root = root
        self.project = project or root.parent  # the repository: CITATION.cff and git
        self._cache: dict[str, object] = {}

    def display(self, rel: str) -> str:
        path = self.root / rel
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)

    def path(self, rel: str) -> Path:
        """The absolute path of `rel`, which must exist; the manifest must list it with its sha256."""
        path = self.root / rel
        if not path.is_file():
            raise PluginError(f"{self.display(rel)} is missing; run `invoke {task_of(rel)}` to write it.")
        if rel != "manifest.json":
            entry = self.manifest_entry(rel)
            recorded = entry.get("sha256")
            if recorded and recorded != sha256_of(path):
                raise PluginError(f"{self.display(rel)} has changed since `invoke {task_of(rel)}` wrote it "
                                  "(its sha256 differs from manifest.json); rerun that task with --force.")
        return path

    def _load(self, rel: str, reader):
        if rel not in self._cache:
            path = self.path(rel)
            try:
                self._cache[rel] = reader(path)
            except (ValueError, KeyError, csv.Error) as e:
                raise PluginError(f"{self.display(rel)} cannot be read ({e}); "
                                  f"rerun `invoke {task_of(rel)} --force` to rewrite it.") from None
        return self._cache[rel]

    def json(self, rel: str):
        return self._load(rel, lambda p: json.loads(p.read_text()))

    def csv(self, rel: str) -> list[dict[str, str]]:
        def read(p):
            with open(p, newline="") as f:
                return list(csv.DictReader(f))
        return self._load(rel, read)

    @property
    def manifest(self) -> dict:
        manifest = self.json("manifest.json")
        if not isinstance(manifest, dict) or not isinstance(manifest.get("artifacts"), dict):
            raise PluginError(f"{self.display('manifest.json')} has no \"artifacts\" table; rerun `invoke all`.")
        return manifest

    def manifest_entry(self, rel: str) -> dict:
        table = self.manifest["artifacts"]
        entry = table.get(rel, table.get(f"artifacts/{rel}"))
        if not isinstance(entry, dict):
            raise PluginError(f"{self.display(rel)} is not listed in {self.display('manifest.json')}; "
                              f"rerun `invoke {task_of(rel)}` to record it.")
        return entry

    # -- the files the pages use

    @property
    def summary(self) -> list[dict[str, str]]:
        rows = self.csv("lenet/summary.csv")
        if not rows:
            raise PluginError(f"{self.display('lenet/summary.csv')} has no runs; run `invoke train`.")
        return rows

    @property
    def variants(self) -> list[str]:
        return list(dict.fromkeys(r["variant"] for r in self.summary))

    def run(self, variant: str) -> dict[str, str]:
        rows = [r for r in self.summary if r["variant"] == variant]
        if not rows:
            raise PluginError(f"{self.display('lenet/summary.csv')} has no run of variant {variant!r}; "
                              f"it has {', '.join(self.variants)}.")
        if len(rows) > 1:  # `invoke seeds` adds seeds; the reference run (seed 0) has the logs
            rows = [r for r in rows if r.get("seed") == "0"]
            if len(rows) != 1:
                raise PluginError(f"{self.display('lenet/summary.csv')} has several runs of {variant!r} "
                                  "but not exactly one reference run (seed 0) to show.")
        return rows[0]

    def log(self, variant: str) -> list[dict[str, str]]:
        self.run(variant)  # an unknown variant is named as such, not as a missing file
        rows = self.csv(f"lenet/{variant}/log.csv")
        if not rows:
            raise PluginError(f"{self.display(f'lenet/{variant}/log.csv')} has no epochs; run `invoke train`.")
        return rows

    def metrics(self, variant: str) -> dict:
        self.run(variant)
        return self.json(f"lenet/{variant}/metrics.json")

    @property
    def citation(self) -> dict:
        """Title, authors and URL from CITATION.cff; version and year from the git commit built."""
        if "citation" not in self._cache:
            import subprocess

            import yaml
            path = self.project / "CITATION.cff"
            if not path.is_file():
                raise PluginError(f"{path} is missing; the How to cite block reads it.")
            cff = yaml.safe_load(path.read_text())
            # An entity ("name") is braced for BibTeX, which would otherwise read its last word as a surname.
            authors = [(x["name"], True) if x.get("name") else
                       (" ".join(filter(None, (x.get("given-names"), x.get("family-names")))), False)
                       for x in cff.get("authors", [])]

            def git(*args):
                r = subprocess.run(["git", *args], cwd=self.project, capture_output=True, text=True)
                return r.stdout.strip() if r.returncode == 0 else ""
            commit = git("rev-parse", "--short=12", "HEAD") or "unknown"
            year = (git("log", "-1", "--format=%cs") or "")[:4] or "n.d."
            self._cache["citation"] = {"title": cff["title"], "authors": authors or [("anonymous", False)],
                                       "url": cff.get("url") or cff.get("repository-code") or "",
                                       "commit": commit, "year": year}
        return self._cache["citation"]

    @property
    def seeds(self) -> dict:
        return self.json("lenet/seeds.json")

    @property
    def ablation(self) -> dict:
        return self.json("ablation/summary.json")

    @property
    def dataset(self) -> dict:
        return self.json("data/dataset.json")

    @property
    def official(self) -> bool:
        value = self.dataset.get("official")
        if not isinstance(value, bool):
            raise PluginError(f"{self.display('data/dataset.json')} has no true/false \"official\" field; "
                              "rerun `invoke data --force`.")
        return value


def task_of(rel: str) -> str:
    return next((task for prefix, task in TASK_BY_PREFIX if rel.startswith(prefix)), "all")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------ formatting

def fmt(value, spec: str | None = None) -> str:
    """A value as a page shows it: `spec` is a FORMATS alias or a Python format spec."""
    if spec is None:
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, (list, tuple)):
            return ", ".join(fmt(v) for v in value)
        return str(value)
    if spec == "pp":  # a difference of two fractions, in percentage points
        try:
            return f"{100 * float(value):+.2f} percentage points"
        except (TypeError, ValueError):
            raise PluginError(f"cannot format {value!r} as percentage points") from None
    spec = FORMATS.get(spec, spec)
    try:
        number = float(value)
        return format(int(number) if spec.endswith("d") else number, spec)
    except (TypeError, ValueError):
        raise PluginError(f"cannot format {value!r} with {spec!r}") from None


def dig(data, key: str, where: str):
    """`data["a"]["b"]` for key "a.b", or a PluginError naming the keys that exist."""
    for part in key.split("."):
        if not isinstance(data, dict) or part not in data:
            known = ", ".join(map(str, data)) if isinstance(data, dict) else "none (not a table)"
            raise PluginError(f"{where} has no field {key!r} (at {part!r}; fields there: {known}).")
        data = data[part]
    return data


def table(header: list[str], rows: list[list[str]], align: str | None = None) -> str:
    """A Markdown table; align holds one of l / r per column (default: left)."""
    align = align or "l" * len(header)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = [header, rule, *rows]
    return "\n".join("| " + " | ".join(str(c).replace("|", "\\|") for c in line) + " |" for line in lines)


def flatten(data, prefix: str = "") -> list[tuple[str, object]]:
    if isinstance(data, dict):
        return [kv for k, v in data.items() for kv in flatten(v, f"{prefix}{k}.")]
    return [(prefix.rstrip("."), data)]


def code(value) -> str:
    return f"`{value}`"


# ------------------------------------------------------------------------------------------ placeholders

def summary_table(a: Artifacts) -> str:
    """One column per run (two runs read better side by side than as nine-column rows)."""
    runs = [a.run(v) for v in a.variants]  # the reference runs; seeds_table summarises the others
    fields = [
        ("preprocessing", lambda r: code(r["preprocess"])),
        ("test accuracy", lambda r: f"**{fmt(r['test_accuracy'], 'pct')}**"),
        ("best validation accuracy (epoch)", lambda r: f"{fmt(r['best_val_accuracy'], 'pct')} ({r['best_val_epoch']})"),
        ("final training loss", lambda r: fmt(r["final_train_loss"], "f3")),
        ("epochs", lambda r: r["epochs"]),
        ("training time (s)", lambda r: fmt(r["train_seconds"], "f1")),
        ("throughput (images/s)", lambda r: fmt(r["images_per_second"], ",.0f")),
        ("parameters", lambda r: fmt(r["params"], "int")),
        ("device", lambda r: r["device"]),
    ]
    header = ["", *(code(r["variant"]) for r in runs)]
    rows = [[label, *(get(r) for r in runs)] for label, get in fields]
    return table(header, rows, "l" + "r" * len(runs))


def metric(a: Artifacts, variant: str, column: str, spec: str | None = None) -> str:
    row = a.run(variant)
    if column not in row:
        raise PluginError(f"{a.display('lenet/summary.csv')} has no column {column!r}; "
                          f"it has {', '.join(row)}.")
    return fmt(row[column], spec)


def expect(a: Artifacts, variant: str, column: str, value: str) -> str:
    found = metric(a, variant, column)
    if found != value:
        raise PluginError(f"the page's text assumes {variant} has {column} = {value!r}, but "
                          f"{a.display('lenet/summary.csv')} says {found!r}; update the page.")
    return ""


def compare(a: Artifacts, column: str, first: str | None = None, second: str | None = None) -> str:
    if first is None:
        if len(a.variants) != 2:
            raise PluginError(f"compare {column} needs two variant names: the summary has {len(a.variants)} runs.")
        first, second = a.variants
    elif second is None:
        raise PluginError(f"compare {column} {first}: give both variants or neither.")
    label, spec, kind = COMPARE.get(column, (column.replace("_", " "), ".4g", "difference"))
    x, y = float(metric(a, first, column)), float(metric(a, second, column))
    fx, fy = fmt(x, spec), fmt(y, spec)
    if fx == fy:
        return f"`{first}` and `{second}` have the same {label} to the precision shown ({fx})."
    hi, lo, fhi, flo, vhi, vlo = (first, second, fx, fy, x, y) if x > y else (second, first, fy, fx, y, x)
    if kind == "points":
        gap = f"{100 * (vhi - vlo):.1f} percentage points"
    elif kind == "ratio":
        gap = f"{vhi / vlo:.2f} times as much" if vlo > 0 else "the other is zero"
    else:
        gap = f"a difference of {fmt(vhi - vlo, spec)}"
    return f"`{hi}` has the higher {label}: {fhi} against {flo} for `{lo}` ({gap})."


def val_trend(a: Artifacts, variant: str) -> str:
    log = a.log(variant)
    losses = [(int(r["epoch"]), float(r["val_loss"])) for r in log]
    best_epoch, best = min(losses, key=lambda e: e[1])
    last_epoch, last = losses[-1]
    if best_epoch == last_epoch:
        return (f"`{variant}`'s validation loss was lowest at the last epoch ({last:.3f} at epoch "
                f"{last_epoch}): no sign of overfitting within {last_epoch} epochs.")
    rise = (last - best) / best
    if rise <= VAL_RISE_TOLERANCE:
        return (f"`{variant}`'s validation loss was lowest at epoch {best_epoch} ({best:.3f}) and ended "
                f"within {VAL_RISE_TOLERANCE:.0%} of it ({last:.3f} at epoch {last_epoch}): it levelled off.")
    return (f"`{variant}`'s validation loss was lowest at epoch {best_epoch} ({best:.3f}) and rose to "
            f"{last:.3f} by epoch {last_epoch} (+{rise:.0%}): the later epochs fit the training set at "
            "the expense of held-out data, i.e. it overfits.")


def log_table(a: Artifacts, variant: str) -> str:
    rows = [[r["epoch"], fmt(r["train_loss"], "f4"), fmt(r["train_accuracy"], "pct2"),
             fmt(r["val_loss"], "f4"), fmt(r["val_accuracy"], "pct2"),
             fmt(r["test_accuracy"], "pct2"), fmt(r["seconds"], "f1")]
            for r in a.log(variant)]  # test loss is left out for width: it is in the curves and the CSV
    return table(["epoch", "train loss", "train acc.", "val. loss", "val. acc.", "test acc.", "time (s)"],
                 rows, "rrrrrrr")


def params_table(a: Artifacts) -> str:
    counts = {v: dig(a.metrics(v), "params_by_layer", a.display(f"lenet/{v}/metrics.json")) for v in a.variants}
    for v, by_layer in counts.items():  # our bug if the two records disagree: fail loudly
        total, recorded = sum(by_layer.values()), int(float(a.run(v)["params"]))
        if total != recorded:
            raise PluginError(f"lenet/{v}: params_by_layer sums to {total} but summary.csv says {recorded}; "
                              "rerun `invoke train --force`.")
    layers = list(dict.fromkeys(layer for by_layer in counts.values() for layer in by_layer))
    rows = [[code(layer), *(fmt(c[layer], "int") if layer in c else "–" for c in counts.values())]
            for layer in layers]
    rows.append(["**total**", *(f"**{fmt(sum(c.values()), 'int')}**" for c in counts.values())])
    return table(["layer", *map(code, counts)], rows, "l" + "r" * len(counts))


def run(a: Artifacts, variant: str, key: str, spec: str | None = None) -> str:
    return fmt(dig(a.metrics(variant), key, a.display(f"lenet/{variant}/metrics.json")), spec)


def dataset(a: Artifacts, key: str, spec: str | None = None) -> str:
    return fmt(dig(a.dataset, key, a.display("data/dataset.json")), spec)


def dataset_table(a: Artifacts) -> str:
    """All of dataset.json but the checksums (md5_table shows those side by side)."""
    rows = [[code(k), code(v) if isinstance(v, str) else fmt(v)]
            for k, v in flatten({k: v for k, v in a.dataset.items() if k not in MD5_FIELDS})]
    return table(["field", "value"], rows)


def md5_table(a: Artifacts) -> str:
    """Each data file's md5 next to the official one (dataset.json `md5s`, `official_md5s`)."""
    md5s = dig(a.dataset, "md5s", a.display("data/dataset.json"))
    official = a.dataset.get("official_md5s") or {}
    mismatched = set(a.dataset.get("mismatched") or [])
    rows = [[code(name), code(md5), code(official.get(name, "?")),
             "✗ differs" if name in mismatched else "✓ same"] for name, md5 in md5s.items()]
    return table(["file", "md5 of the copy used", "official md5", ""], rows)


def data_notice(a: Artifacts) -> str:
    if a.official:
        return "Every CIFAR-10 file matched its official md5: these results come from the official data."
    mismatched = a.dataset.get("mismatched") or []
    which = f" ({', '.join(map(code, mismatched))})" if mismatched else ""
    return (f"The data files{which} do not match the official CIFAR-10 md5s: {data_origin(a)} "
            "Accuracies measured on it are close to, not identical with, accuracies on the official data.")


def data_origin(a: Artifacts) -> str:
    if (a.dataset.get("md5s") or {}).get("test_batch") == REBUILT_TEST_MD5:
        return ("they are the rebuilt copy of CIFAR-10 (`cifar-10-python-rebuilt.tar.gz`), whose labels and "
                "train/test split are exact but most of whose images were restored from a JPEG copy "
                "(about 30 dB PSNR, mean error 5.8 grey levels).")
    return "they are an unofficial copy of CIFAR-10, not the archive from the dataset's home page."


def provenance(a: Artifacts, artifact: str = "lenet/summary.csv") -> str:
    a.path(artifact)  # it must exist and match the manifest
    entry = a.manifest_entry(artifact)
    where = f"the manifest entry of {artifact}"
    data = dig(entry, "data", where)
    commit = str(dig(entry, "commit", where))
    if entry.get("dirty"):
        commit += " (with uncommitted changes)"
    rows = [["artifact", code(artifact)], ["written by task", code(entry.get("task", task_of(artifact)))],
            ["git commit", code(commit)], ["finished", str(dig(entry, "timestamp", where))],
            ["device", str(dig(entry, "device", where))], ["torch", code(dig(entry, "torch", where))],
            ["data official", "no data used" if data is None else fmt(bool(dig(data, "official", where)))]]
    if "seeds" in entry:
        rows.append(["seeds", code(json.dumps(entry["seeds"], sort_keys=True))])
    data = data or {}  # None: a task that reads no CIFAR-10 (answers, layers)
    if data.get("mismatched"):
        rows.append(["files differing from the official md5s", ", ".join(map(code, data["mismatched"]))])
    for name, md5 in (data.get("md5s") or {}).items():
        rows.append([f"md5 of {code(name)}", code(md5)])
    return table(["field", "value"], rows)


def manifest_table(a: Artifacts) -> str:
    rows = []
    for path, e in sorted(a.manifest["artifacts"].items()):
        commit = str(e.get("commit", "?"))[:10] + ("+" if e.get("dirty") else "")
        rows.append([code(path), code(e.get("task", "?")), code(commit), str(e.get("timestamp", "?")),
                     fmt(e.get("bytes", 0), "int"), code(str(e.get("sha256", "?"))[:12])])
    return table(["artifact", "task", "commit", "finished", "bytes", "sha256 (start)"], rows, "llllrl")


def plot(a: Artifacts, name: str, *alt: str, page=None) -> str:
    folder, _, file = name.rpartition("/")
    folder = folder or PLOTS_DIR
    if folder not in FIGURE_DIRS:
        raise PluginError(f"plot {name}: images are published from {', '.join(FIGURE_DIRS)} only.")
    file = file if file.endswith(PLOT_SUFFIXES) else f"{file}.svg"
    a.path(f"{folder}/{file}")
    src = posixpath.relpath(f"assets/{folder}/{file}", posixpath.dirname(page.file.src_uri) or ".")
    text = " ".join(alt) or file.rsplit(".", 1)[0].replace("_", " ")
    return f"[![{text}]({src}){{ loading=lazy }}]({src})"


def _pct_ci(d: dict, key: str = "mean") -> str:
    return f"{fmt(d[key], 'pct2')} [{fmt(d['ci_low'], 'pct2')}, {fmt(d['ci_high'], 'pct2')}]"


def _pp(x: float) -> str:
    return f"{100 * float(x):+.2f} pp"


def seeds_table(a: Artifacts) -> str:
    """Test accuracy of each variant over its seeds (lenet/seeds.json): mean, sd, 95% CI, range."""
    where = a.display("lenet/seeds.json")
    variants = dig(a.seeds, "variants", where)
    rows = []
    for v, s in variants.items():
        values = dig(s, "values", where)
        rows.append([code(v), str(s["n"]), f"**{fmt(s['mean'], 'pct2')}**", f"{100 * s['std']:.2f}",
                     f"{100 * s['ci_low']:.2f}–{fmt(s['ci_high'], 'pct2')}",
                     ", ".join(fmt(x, "pct2") for x in values)])
    return table(["variant", "seeds", "mean test accuracy", "sd (pp)", f"{fmt(a.seeds['level'], 'pct')} CI",
                  "per seed, from seed 0"], rows, "lrrrrl")


def seeds_paired(a: Artifacts) -> str:
    """One sentence: the paired difference of the two variants over the same seeds."""
    p = dig(a.seeds, "paired", a.display("lenet/seeds.json"))
    clear = p["ci_low"] > 0 or p["ci_high"] < 0
    return (f"Paired by seed ({p['n']} pairs), `{p['a']}` minus `{p['b']}` is {_pp(p['mean'])} "
            f"({fmt(a.seeds['level'], 'pct')} CI {_pp(p['ci_low'])} to {_pp(p['ci_high'])}, "
            f"t = {p['t']:.2f}, p = {p['p']:.2g}): "
            + ("the interval excludes zero, so the difference is not seed noise."
               if clear else "the interval includes zero, so these seeds cannot tell the two apart."))


def seeds(a: Artifacts, key: str, spec: str | None = None) -> str:
    return fmt(dig(a.seeds, key, a.display("lenet/seeds.json")), spec)


def ablation(a: Artifacts, key: str, spec: str | None = None) -> str:
    return fmt(dig(a.ablation, key, a.display("ablation/summary.json")), spec)


def _onoff(value: str) -> str:
    return {"True": "on", "False": "off"}.get(value, value)


def ablation_cells(a: Artifacts) -> str:
    """Every cell of the design: mean test accuracy over seeds with its 95% CI (ablation/cells.csv)."""
    rows = []
    for c in a.csv("ablation/cells.csv"):
        rows.append([code(c["preprocess"]), _onoff(c["batch_norm"]), _onoff(c["dropout"]),
                     _onoff(c["augment"]), c["n"], f"**{fmt(c['mean'], 'pct2')}**",
                     f"{100 * float(c['std']):.2f}", f"{100 * float(c['ci_low']):.2f}–{fmt(c['ci_high'], 'pct2')}"])
    return table(["inputs", "BN", "dropout", "aug.", "n", "mean test acc.", "sd (pp)", "95% CI"],
                 rows, "llllrrrr")


def ablation_effects(a: Artifacts) -> str:
    """Main effects and interactions in percentage points with 95% CIs (ablation/effects.csv)."""
    rows = []
    for e in a.csv("ablation/effects.csv"):
        clear = float(e["ci_low"]) > 0 or float(e["ci_high"]) < 0
        rows.append([e["effect"], f"**{_pp(e['estimate'])}**" if clear else _pp(e["estimate"]),
                     f"{_pp(e['ci_low'])} to {_pp(e['ci_high'])}", f"{float(e['p']):.2g}",
                     "yes" if clear else "no"])
    return table(["effect", "estimate", "95% CI", "p", "CI excludes 0"], rows, "lrrrl")


def ablation_runs(a: Artifacts) -> str:
    """Every run of the sweep (ablation/runs.csv)."""
    rows = [[code(r["preprocess"]), _onoff(r["batch_norm"]), _onoff(r["dropout"]), _onoff(r["augment"]),
             r["seed"], fmt(r["test_accuracy"], "pct2"), fmt(r["best_val_accuracy"], "pct2"),
             f"{float(r['train_seconds']):.0f}"]
            for r in a.csv("ablation/runs.csv")]
    return table(["preprocessing", "BN", "dropout", "augment", "seed", "test acc.", "best val. acc.",
                  "train time (s)"], rows, "llllrrrr")


def ablation_augmentation(a: Artifacts) -> str:
    """Each homework model with and without augmentation, paired by seed, and the share of the gap
    to the published figure it closes (ablation/summary.json `augmentation`)."""
    rows = []
    for name, g in dig(a.ablation, "augmentation", a.display("ablation/summary.json")).items():
        closed = "no gap" if g.get("closed") is None else f"{100 * g['closed']:.0f}%"
        rows.append([code(name), str(g["n"]), fmt(g["without"], "pct2"), fmt(g["with"], "pct2"),
                     f"{100 * g['mean']:+.2f} [{100 * g['ci_low']:+.2f}, {100 * g['ci_high']:+.2f}]",
                     fmt(g["published"], "pct"), closed])
    return table(["model", "n", "without", "with aug.", "change, pp [95% CI]", "published",
                  "gap closed"], rows, "lrrrrrr")


def ablation_conclusion(a: Artifacts) -> str:
    lines = dig(a.ablation, "conclusion", a.display("ablation/summary.json"))
    return "\n".join(f"- {line}" for line in lines)


def sweep_time(a: Artifacts, which: str) -> str:
    """How long the sweep of `ablation`, `seeds` or `dropout` took: minutes over its invocations."""
    data = {"ablation": lambda: a.ablation, "seeds": lambda: a.seeds,
            "dropout": lambda: a.json("cs182/dropout/summary.json")}
    if which not in data:
        raise PluginError(f"sweep_time {which}: choose {', '.join(data)}.")
    sweeps = data[which]().get("sweeps") or []
    if not sweeps:
        return "(no sweep recorded)"
    minutes = sum(s["wall_seconds"] for s in sweeps) / 60
    runs = sum(s["runs"] for s in sweeps)
    return (f"{minutes:.1f} minutes for {runs} runs on {sweeps[-1]['scheduler']}"
            + (f", in {len(sweeps)} invocations" if len(sweeps) > 1 else ""))


def gradchecks_table(a: Artifacts) -> str:
    """Every gradient of the CS182 NumPy layers against finite differences and torch autograd, with
    the thresholds in the header (cs182/gradchecks.csv)."""
    rel = "cs182/gradchecks.csv"
    rows = a.csv(rel)
    if not rows:
        raise PluginError(f"{a.display(rel)} has no checks; rerun `invoke layers --force`.")
    thresholds = {}
    for column in ("threshold", "torch_threshold"):
        found = {r[column] for r in rows}
        if len(found) != 1:
            raise PluginError(f"{a.display(rel)}: the checks use different {column} values "
                              f"({', '.join(sorted(found))}); rerun `invoke layers --force`.")
        thresholds[column] = fmt(found.pop(), ".0e")
    # The layer and its backward function share a cell: six columns fit the content width.
    body = [[f"{r['layer']}: {code(r['backward'])}", code(r["gradient"]), r["shape"].replace("x", " × "),
             fmt(r["numeric_rel_error"], ".1e"), fmt(r["torch_rel_error"], ".1e"),
             "yes" if r["passed"] == "True" else "**no**"] for r in rows]
    return table(["layer: backward", "gradient", "shape", f"vs finite differences (< {thresholds['threshold']})",
                  f"vs torch autograd (< {thresholds['torch_threshold']})", "passed"], body, "llrrrl")


def conv_timings_table(a: Artifacts) -> str:
    """The three convolutions' forward + backward time, each as a ratio to torch, and one sentence
    on the setting and the extrapolation of the naive loops (cs182/conv_timings.json)."""
    rel = "cs182/conv_timings.json"
    t, where = a.json(rel), a.display(rel)
    torch_s = float(dig(t, "torch_s", where))
    naive = ("naive loops, extrapolated" if dig(t, "naive_extrapolated", where) else "naive loops")
    rows = [["im2col (NumPy)", "`conv_forward_im2col` + `conv_backward_im2col`", dig(t, "im2col_s", where)],
            ["torch autograd", "`F.conv2d` + `.backward`", torch_s],
            [naive, "`conv_forward_naive` + `conv_backward_naive`", dig(t, "naive_s", where)]]
    body = [[name, what, fmt(s, ".4g"), f"{float(s) / torch_s:.3g}×"] for name, what, s in rows]
    shape = dig(t, "shape", where)
    n, m = shape["x"][0], dig(t, "naive_measured_images", where)
    setting = (f"One forward and backward pass of a conv layer on x of shape ({', '.join(map(str, shape['x']))}), "
               f"{shape['dtype']}, weights ({', '.join(map(str, shape['w']))}), stride {shape['stride']}, pad "
               f"{shape['pad']}; median of {dig(t, 'repeats', where)} runs, torch on "
               f"{dig(t, 'torch_threads', where)} thread(s).")
    if dig(t, "naive_extrapolated", where):
        setting += (f" The naive loops are timed on {m} of the {n} images and their time is scaled "
                    f"linearly to {n} (every image costs the same number of loop iterations).")
    return table(["implementation", "functions", "seconds", "time / torch's"], body, "llrr") + "\n\n" + setting


def value(a: Artifacts, rel: str, key: str, spec: str | None = None) -> str:
    """One value of a JSON artifact, e.g. {{ value cs182/filters.json kernel_sums.blur f3 }}."""
    if not rel.endswith(".json"):
        raise PluginError(f"value {rel}: only JSON artifacts have keys.")
    return fmt(dig(a.json(rel), key, a.display(rel)), spec)


def conclusion(a: Artifacts, rel: str) -> str:
    """The generated conclusion (a list of sentences under "conclusion") of a JSON artifact, as a list."""
    return "\n".join(f"- {line}" for line in dig(a.json(rel), "conclusion", a.display(rel)))


def dropout_table(a: Artifacts) -> str:
    """Question 5(c): per dropout p, the final eval-mode train and validation accuracy, the gap with
    its 95% CI, test accuracy and its change against p = 0 (cs182/dropout/summary.csv)."""
    rows = []
    for r in a.csv("cs182/dropout/summary.csv"):
        change = (f"{_pp(r['test_vs_p0'])} [{100 * float(r['test_vs_p0_ci_low']):+.2f}, "
                  f"{100 * float(r['test_vs_p0_ci_high']):+.2f}]" if r["test_vs_p0"] else "(baseline)")
        rows.append([f"{float(r['p']):g}", r["n"], fmt(r["train_eval_accuracy"], "pct2"),
                     fmt(r["val_accuracy"], "pct2"),
                     f"**{100 * float(r['gap']):.2f}** [{100 * float(r['gap_ci_low']):.2f}, "
                     f"{100 * float(r['gap_ci_high']):.2f}]",
                     fmt(r["test_accuracy"], "pct2"), change])
    return table(["p", "seeds", "train acc. (eval mode)", "val. acc.", "gap, pp [95% CI]",
                  "test acc.", "test vs p = 0, pp [95% CI]"], rows, "rrrrrrr")


def _frac(v: float) -> str:
    """1/16 as \\tfrac{1}{16}, whole numbers as they are."""
    from fractions import Fraction
    f = Fraction(v).limit_denominator(256)
    return str(f.numerator) if f.denominator == 1 else rf"\tfrac{{{f.numerator}}}{{{f.denominator}}}"


def kernel(a: Artifacts, name: str) -> str:
    """A hand-designed kernel of cs182/filters.json as a LaTeX matrix (inline math)."""
    k = dig(a.json("cs182/filters.json"), f"kernels.{name}", a.display("cs182/filters.json"))
    cells = [" & ".join(_frac(v) for v in row) for row in k]
    return r"\(\begin{bmatrix} " + r" \\ ".join(cells) + r" \end{bmatrix}\)"


def filters_check_table(a: Artifacts) -> str:
    """Our NumPy filters against torch's conv2d: the largest absolute difference per output."""
    rel = "cs182/filters.json"
    d = a.json(rel)
    diffs = dig(d, "max_abs_diff_vs_torch", a.display(rel))
    rows = [[name.replace("_", " "), fmt(v, ".1e"), "yes" if v <= d["tolerance"] else "**no**"]
            for name, v in diffs.items()]
    return table(["output", "largest |ours − torch|", f"below {fmt(d['tolerance'], '.0e')}"], rows, "lrl")


def own_search_table(a: Artifacts) -> str:
    """Every trial of the own CNN's hyperparameter search with its validation accuracy; the chosen
    one in bold (own_cnn/search.csv, own_cnn/chosen.json)."""
    chosen = dig(a.json("own_cnn/chosen.json"), "trial", a.display("own_cnn/chosen.json"))
    rows = []
    for r in a.csv("own_cnn/search.csv"):
        acc = fmt(r["val_accuracy"], "pct2")
        rows.append([f"**{r['trial']}**" if r["trial"] == chosen else r["trial"], r["widths"], r["epochs"],
                     r["lr"], r["label_smoothing"], r["weight_decay"],
                     f"**{acc}**" if r["trial"] == chosen else acc, f"{float(r['train_seconds']):.0f}"])
    return table(["trial", "widths", "epochs", "peak lr", "label smoothing", "weight decay",
                  "val. acc.", "train time (s)"], rows, "llrrrrrr")


def own_history(a: Artifacts) -> str:
    """Every final run of the own CNN (own_cnn/metrics.json `history`, then the current one), so a
    reader sees each time the test set was used, not only the last."""
    rel = "own_cnn/metrics.json"
    m = a.json(rel)
    runs = [*dig(m, "history", a.display(rel)),
            {"config": m["config"], "chosen_trial": m["chosen"]["trial"], "test_accuracy": m["final"]["test_accuracy"],
             "val_accuracy": m["final"]["val_accuracy"], "train_seconds": m["final"]["train_seconds"],
             "device": m["device"], "recorded": m.get("recorded")}]
    rows = []
    for i, r in enumerate(runs, 1):
        rec = r.get("recorded") or {}
        when = f"{rec.get('timestamp') or rec.get('finished') or '?'}, commit `{str(rec.get('commit', '?'))[:10]}`"
        c = r["config"]
        rows.append([str(i) + (" (this page)" if i == len(runs) else ""), r["chosen_trial"],
                     "-".join(map(str, c["widths"])), str(c["lr"]), str(c["weight_decay"]), str(c["epochs"]),
                     f"{float(r['train_seconds']):.0f}", fmt(r["val_accuracy"], "pct2"),
                     f"**{fmt(r['test_accuracy'], 'pct2')}**", when])
    return table(["final run", "chosen trial", "widths", "peak lr", "weight decay", "epochs", "training (s)",
                  "val. acc.", "test acc.", "recorded"], rows, "llrrrrrrrl")


def models_table(a: Artifacts) -> str:
    """The own CNN beside both LeNets (their seed-0 reference runs): parameters, epochs, training
    time, device, test accuracy."""
    runs = [a.run(v) for v in a.variants] + a.csv("own_cnn/summary.csv")
    rows = [[code(r["variant"]), f"{int(r['params']):,}", r["epochs"], f"{float(r['train_seconds']):.0f}",
             f"{float(r['train_seconds']) / 60:.1f}", r["device"], f"**{fmt(r['test_accuracy'], 'pct2')}**"]
            for r in runs]
    return table(["model", "parameters", "epochs", "training (s)", "training (min)", "device",
                  "test accuracy"], rows, "lrrrrlr")


def csv_link(a: Artifacts, rel: str, *label: str, page=None) -> str:
    """A download link to a CSV artifact as published (assets/artifacts/REL), with its sha256."""
    if not rel.endswith(".csv"):
        raise PluginError(f"csv {rel}: only CSV artifacts are published for download.")
    path = a.path(rel)
    src = posixpath.relpath(f"{SITE_FILES}/{rel}", posixpath.dirname(page.file.src_uri) or ".")
    text = " ".join(label) or f"Download {posixpath.basename(rel)}"
    return (f'<span class="artifact-download">[{text}]({src}){{ download="{posixpath.basename(rel)}" }} '
            f"(the exact file `artifacts/{rel}`, sha256 `{sha256_of(path)[:12]}…`)</span>")


def cite(a: Artifacts) -> str:
    """BibTeX and plain text for the report, from CITATION.cff; version = the site's git commit."""
    info = a.citation
    title, year, url, commit = info["title"], info["year"], info["url"], info["commit"]
    authors = " and ".join(f"{{{n}}}" if entity else n for n, entity in info["authors"])
    # Quote-delimited (not brace-delimited) so a braced entity name never makes "{{" in the page.
    key = re.sub(r"[^a-z0-9]", "", title.lower())[:16] + year
    bib = "\n".join([f"@software{{{key},", f"  title   = {{{title}}},", f'  author  = "{authors}",',
                     f"  year    = {{{year}}},", f"  version = {{{commit}}},", f"  url     = {{{url}}},",
                     f"  note    = {{Generated report; commit {commit}}}", "}"])
    plain = f"{', '.join(n for n, _ in info['authors'])} ({year}). *{title}* (version {commit}). {url}"
    return "\n".join(['=== "BibTeX"', "", "    ```bibtex", *("    " + l for l in bib.split("\n")),
                      "    ```", "", '=== "Plain text"', "", f"    {plain}"])


PLACEHOLDERS = {
    "summary_table": summary_table, "metric": metric, "expect": expect, "compare": compare, "val_trend": val_trend,
    "log_table": log_table, "params_table": params_table, "run": run, "dataset": dataset,
    "dataset_table": dataset_table, "md5_table": md5_table, "data_notice": data_notice, "provenance": provenance,
    "manifest_table": manifest_table, "plot": plot, "seeds_table": seeds_table, "seeds_paired": seeds_paired,
    "seeds": seeds, "ablation": ablation, "ablation_cells": ablation_cells, "ablation_effects": ablation_effects,
    "ablation_runs": ablation_runs, "ablation_augmentation": ablation_augmentation, "ablation_conclusion": ablation_conclusion, "sweep_time": sweep_time,
    "gradchecks_table": gradchecks_table, "conv_timings_table": conv_timings_table,
    "csv": csv_link, "cite": cite, "value": value, "conclusion": conclusion, "dropout_table": dropout_table,
    "kernel": kernel, "filters_check_table": filters_check_table, "own_search_table": own_search_table,
    "models_table": models_table, "own_history": own_history,
}


def expand(a: Artifacts, text: str, page) -> str:
    """The value of one placeholder's inside text ("name arg ...")."""
    where = f"{page.file.src_uri}: {{{{{text}}}}}"
    try:
        name, *args = shlex.split(text)
    except ValueError as e:
        raise PluginError(f"{where} cannot be parsed ({e}).") from None
    if name not in PLACEHOLDERS:
        raise PluginError(f"{where}: unknown placeholder {name!r}; known: {', '.join(PLACEHOLDERS)} "
                          "(see hooks/artifacts.py).")
    func = PLACEHOLDERS[name]
    kwargs = {"page": page} if "page" in inspect.signature(func).parameters else {}
    try:
        inspect.signature(func).bind(a, *args, **kwargs)
    except TypeError as e:
        raise PluginError(f"{where}: wrong arguments ({e}); see hooks/artifacts.py.") from None
    try:
        return func(a, *args, **kwargs)
    except PluginError as e:
        raise PluginError(f"{where}: {e}") from None


def substitute(a: Artifacts, markdown: str, page) -> str:
    out = []
    for line in markdown.split("\n"):
        matches = list(PLACEHOLDER.finditer(line))
        if not matches:
            out.append(line)
            continue
        if len(matches) == 1 and line.strip() == matches[0].group(0):
            value = expand(a, matches[0].group(1), page)
            indent = line[:len(line) - len(line.lstrip())]
            out.append("\n".join(indent + v if v else v for v in value.split("\n")))
            continue

        def inline(m):
            value = expand(a, m.group(1), page)
            if "\n" in value:
                raise PluginError(f"{page.file.src_uri}: {m.group(0)} is a block; put it alone on its line.")
            return value
        out.append(PLACEHOLDER.sub(inline, line))
    return "\n".join(out)


def unofficial_warning(a: Artifacts) -> str:
    return ('!!! warning "Results from an unofficial copy of CIFAR-10"\n\n'
            f"    {data_notice(a)}\n")


def insert_after_title(markdown: str, block: str) -> str:
    """`block` right under the page's leading `# Title`, or at the top if it has none."""
    lines = markdown.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and lines[first].startswith("# "):
        return "\n".join([*lines[:first + 1], "", block, *lines[first + 1:]])
    return f"{block}\n{markdown}"


# ------------------------------------------------------------------------------------------ mkdocs events

_artifacts: Artifacts | None = None  # of the current build; rebuilt by on_config on every (re)build


def on_config(config):
    global _artifacts
    env = os.environ.get(ENV_ROOT, "").strip()
    root = Path(env).resolve() if env else Path(config.config_file_path).resolve().parent / "artifacts"
    _artifacts = Artifacts(root, Path(__file__).resolve().parent.parent)  # the repository this hook is in
    return config


def on_files(files, config):
    """Publish every plot under assets/plots/ and read the files every page needs."""
    a = _artifacts
    plots_dir = a.root / PLOTS_DIR
    plots = sorted(p for p in plots_dir.glob("*") if p.suffix in PLOT_SUFFIXES) if plots_dir.is_dir() else []
    if not plots:
        raise PluginError(f"{a.display(PLOTS_DIR)}/ holds no plots; run `invoke plots` to draw them.")
    for folder in FIGURE_DIRS:  # plots/ must exist (checked above); ablation/ once it has run
        d = a.root / folder
        for p in sorted(d.glob("*")) if d.is_dir() else []:
            if p.suffix in PLOT_SUFFIXES:
                a.path(f"{folder}/{p.name}")  # listed in the manifest, unchanged
                files.append(File.generated(config, f"assets/{folder}/{p.name}", abs_src_path=str(p)))
    for rel in sorted(a.manifest["artifacts"]):  # every CSV, for the download links beside tables
        if rel.endswith(".csv") and (a.root / rel).is_file():
            files.append(File.generated(config, f"{SITE_FILES}/{rel}", abs_src_path=str(a.path(rel))))
    _ = a.official  # every page's notice needs data/dataset.json: fail here, once, if it is absent
    return files


def is_notebook(page) -> bool:
    return page.file.src_uri.endswith(NOTEBOOK_SUFFIXES)


def on_page_markdown(markdown, page, config, files):
    if is_notebook(page):
        return markdown  # Python source, which mkdocs-jupyter renders itself: see the docstring
    a = _artifacts
    markdown = substitute(a, markdown, page)
    if not a.official:
        markdown = insert_after_title(markdown, unofficial_warning(a))
    return markdown


def on_page_content(html, page, config, files):
    """Notebook pages: the unofficial-data notice, rendered as on the other pages, after the h1."""
    a = _artifacts
    if not is_notebook(page) or a.official:
        return html
    notice = md.markdown(unofficial_warning(a), extensions=config.markdown_extensions,
                         extension_configs=config.mdx_configs)
    end = H1_END.search(html)
    return f"{html[:end.end()]}\n{notice}\n{html[end.end():]}" if end else f"{notice}\n{html}"
