"""MkDocs hook: every number on the site comes from `artifacts/`, through placeholders in the pages.

The pages never hold a result. They hold placeholders, which `on_page_markdown` replaces with values
read through the one artifacts store (pipeline/store.py): the same reader the tasks and the notebook
pages use, which checks each file's sha256 against `artifacts/manifest.json` and its columns, keys
and value ranges against the artifacts contract (pipeline/contract.py; ARTIFACTS.md is generated
from it). The hook makes no judgement: sentences about results ("which run is higher", "did it
overfit", "is the paired gap seed noise") are computed by the pipeline (pipeline/findings.py) and
stored; the hook only places them. `on_files` publishes the figures, the CSV files and the trained
weights; `table_block` adds each cited table's .tex (pipeline/tables.py: the page's own formatted
cells as a booktabs tabular) and its "Cite this table" block (pipeline/citation.py).

Citations use one URL: CITATION.cff's `url`, from which `on_config` sets `site_url` (mkdocs.yml
leaves it out; a site_url set there anyway must be the same, else the build fails). While it is the placeholder (`example.github.io`) the build prints one warning line
on stderr (a logged warning would fail `--strict`) and `invoke deploy` refuses.

The build fails with one PluginError line naming the file and the invoke command that rewrites it
when an artifact is missing, changed or breaks the contract, on an unknown placeholder or a bad
argument, and when the LeNet runs are not the reference runs (`on_config`: the settings of
`contract.REFERENCE`). If `data/dataset.json` says `official: false`, every page gets a warning
admonition under its title.

Notebook pages (docs/answers/*.py, rendered by mkdocs-jupyter) read their artifacts through the same
store (pipeline/answers/render.py) and hold no placeholders: their "Markdown" is Python source, which
the hook leaves alone; they get the notice in their HTML instead (`on_page_content`).

Artifacts root: `$LENET_ARTIFACTS` if set (relative to the working directory), else `artifacts/` in
the repository (`store.resolve_root`). Tests point it at a fake tree.

Placeholder syntax: `{{ name arg arg ... }}`; arguments are split like a shell line (quote one that
holds spaces). A placeholder that expands to several lines (a table) must stand alone on its line;
its indentation is repeated on every line, so it works inside admonitions and `???` blocks.
`{{` is reserved: any `{{ ... }}` in a page must be one of these. In the list, UPPER CASE is an
argument and [brackets] an optional one:

    summary_table                    the reference runs side by side (lenet/summary.csv)
    metric VARIANT COLUMN [FORMAT]   one cell of lenet/summary.csv
    expect VARIANT COLUMN VALUE      nothing, but fails the build unless that cell is VALUE: guards
                                     prose that depends on it
    compare COLUMN [A B]             the stored sentence on which run is higher on a summary.csv
                                     column (lenet/findings.json); fails unless it compares A with B
    val_trend VARIANT                the stored sentence on the run's validation loss (findings.json)
    log_table VARIANT                the run's per-epoch log (lenet/VARIANT/log.csv)
    params_table                     parameters per layer of every run (metrics.json)
    run VARIANT KEY [FORMAT]         a value of lenet/VARIANT/metrics.json, KEY dotted
    dataset KEY [FORMAT]             a value of data/dataset.json, KEY dotted
    seeds KEY [FORMAT]               a value of lenet/seeds.json, KEY dotted
    ablation KEY [FORMAT]            a value of ablation/summary.json, KEY dotted
    value FILE KEY [FORMAT]          a value of any JSON artifact, KEY dotted (the five above are
                                     this with a fixed file)
    dataset_table, md5_table         data/dataset.json but its checksums; each file's md5 beside the
                                     official one
    data_notice                      one sentence: official data or not, and which files differ
    provenance [FILE]                the manifest entry of FILE (default lenet/summary.csv)
    manifest_table                   every artifact in the manifest: task, commit, size, sha256
    plot [DIR/]NAME CAPTION [ALT]    Figure N of the page: the image artifacts/DIR/NAME (DIR: plots
                                     by default, or one of FIGURE_DIRS; .svg if no extension), linked
                                     to itself, with its caption and alt text (quote each)
    seeds_table, seeds_paired        test accuracy over seeds per variant (lenet/seeds.json); the
                                     stored paired-comparison sentence
    ablation_cells, ablation_effects, ablation_runs, ablation_augmentation, ablation_conclusion
                                     the ablation's tables and generated findings
    sweep_time ablation|seeds|dropout   minutes and runs of that sweep
    conclusion FILE                  the generated `conclusion` list of a JSON artifact, as bullets
    gradchecks_table, conv_timings_table, dropout_table, filters_check_table, kernel NAME,
    own_search_table, own_history, models_table
                                     the CS182 pages' tables (cs182/, own_cnn/)
    verify_table                     the reproduction verdict of `invoke verify` (verify.json)
    machine FILE [KEY]               the machine record (CPU, ISA, threads, torch build) at KEY
                                     (default machine) of a JSON artifact, as one line; "not
                                     recorded" for a file written before machines were recorded
    gpu_note                         the sentence on whether any published run used a GPU
    bench_options_finding            the sentence on the speed options tried (pipeline/findings.py)
    per_class_table                  test accuracy per class of both reference runs (lenet/per_class.csv)
    question_index                   every question of the three homeworks, its final answer and
                                     link (pipeline/answers/questions.py), and its CSV
    csv FILE [LABEL ...]             a download link to a CSV artifact, published with the site
    download FILE [LABEL ...]        a download link to a published artifact (CSV or weights .pt) with
                                     its size and full sha256
    table_block TABLE CSV [CAPTION]  under the placeholder TABLE of the same page: its CSV (an
                                     artifact, or questions.csv), its .tex (same cells, booktabs),
                                     and a collapsed "Cite this table" (anchor on the table, the
                                     artifacts it read with their manifest entries, BibTeX, plain
                                     text). Citing one more table is this one line.
    cite                             the report's BibTeX (@misc, @software) and plain text
                                     (CITATION.cff, the build commit, the commits of the numbers)
    references                       the works the pages cite (pipeline/citation.py REFERENCES)

FORMAT is `pct` (fraction -> 65.9%), `pct2` (65.93%), `pp` (a difference of fractions in percentage
points), `int` (45,000), `f1`..`f4` (fixed decimals) or any Python format spec (`.3g`, `,.0f`);
without one a value is shown as the file holds it. Examples, each valid as written (a test expands
every line of this block):

    {{ metric lenet_plain test_accuracy pct }}
    {{ run lenet_plain config.eval_batch_size int }}
    {{ dataset counts.test int }}
    {{ value cs182/filters.json kernel_sums.blur f3 }}
    {{ compare test_accuracy lenet_bn_dropout lenet_plain }}
    {{ val_trend lenet_plain }}
    {{ plot learning_curves "Loss and accuracy per epoch." "Six curves falling or rising" }}
    {{ plot ablation/effects "Main effects and interactions." }}
    {{ csv lenet/summary.csv Download summary.csv }}
    {{ download lenet/lenet_plain/weights.pt }}
    {{ provenance data/dataset.json }}
"""
from __future__ import annotations

import hashlib
import html as htmllib
import inspect
import json
import math
import posixpath
import re
import shlex
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import markdown as md  # as md: the hook's functions call their Markdown argument `markdown`
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

# MkDocs puts only hooks/ on sys.path while it imports a hook; `python -m mkdocs` adds the working
# directory, the `mkdocs` script does not. The pipeline package sits one folder up.
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from pipeline import citation as citations  # noqa: E402
from pipeline import contract  # noqa: E402
from pipeline.contract import PUBLISHED  # noqa: E402
from pipeline import findings  # noqa: E402
from pipeline.machine import DIFFERS, gpu_note as gpu_sentence  # noqa: E402
from pipeline.answers import questions  # noqa: E402
from pipeline.names import display  # noqa: E402
from pipeline.store import Store, StoreError  # noqa: E402
from pipeline.tables import Table, to_latex  # noqa: E402

SUMMARY, LOGS = "lenet/summary.csv", "lenet/{}/log.csv"
METRICS = "lenet/{}/metrics.json"
SEEDS, FINDINGS = "lenet/seeds.json", "lenet/findings.json"
DATASET, ABLATION = "data/dataset.json", "ablation/summary.json"
PLOTS_DIR = "plots"
FIGURE_DIRS = ("plots", "ablation", "cs182", "cs182/dropout", "own_cnn", "answers")  # artifact folders whose images are published, as assets/<dir>/
SITE_FILES = "assets/artifacts"  # where the CSV artifacts (and weights) are published, for download
SITE_TABLES = "assets/tables"  # where each cited table's .tex is published (generated at build time)
PUBLISHED_SUFFIXES = (".csv", ".pt")  # artifacts published for download: tables, trained weights
PLOT_SUFFIXES = (".png", ".svg")
FORMATS = {"pct": ".1%", "pct2": ".2%", "int": ",.0f", "f1": ".1f", "f2": ".2f", "f3": ".3f", "f4": ".4f"}
# The rebuilt copy of CIFAR-10 (shared/cifar10/README.md): its test_batch md5, to name it exactly.
REBUILT_TEST_MD5 = "328708d8965ef6bd364a7a13d64d35e6"
MD5_FIELDS = ("md5s", "official_md5s", "mismatched")  # dataset.json fields md5_table shows

PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
NOTEBOOK_SUFFIXES = (".py", ".ipynb")  # the pages mkdocs-jupyter renders (its `include` in mkdocs.yml)
H1_END = re.compile(r"</h1>", re.IGNORECASE)


@contextmanager
def plugin_errors(where: str = ""):
    """A StoreError (one sentence: the file and the command that rewrites it) as MkDocs' PluginError,
    which fails the build with that line instead of a traceback."""
    try:
        yield
    except StoreError as e:
        raise PluginError(f"{where}{e}") from None


# ------------------------------------------------------------------------------------ the files pages use

def runs(s: Store) -> dict[str, dict]:
    """The reference runs of lenet/summary.csv (one row per variant), by variant."""
    rows = s.read_csv(SUMMARY)
    if not rows:
        raise PluginError(f"{s.show(SUMMARY)} has no runs; run `invoke train`.")
    return {r["variant"]: r for r in rows}


def of_variant(s: Store, pattern: str, variant: str) -> str:
    """lenet/VARIANT/... of a run in summary.csv (a typo names the variants, not a missing file)."""
    if variant not in runs(s):
        raise PluginError(f"{s.show(SUMMARY)} has no run of variant {variant!r}; it has {', '.join(runs(s))}.")
    return pattern.format(variant)


def official(s: Store) -> bool:
    found = s.read_json(DATASET).get("official")
    if not isinstance(found, bool):
        raise PluginError(f"{s.show(DATASET)} has no true/false \"official\" field; rerun `invoke data --force`.")
    return found


def citation(project: Path = REPO) -> dict:
    """Title, authors and URL from CITATION.cff; version and year from the git commit built."""
    import yaml
    path = project / "CITATION.cff"
    if not path.is_file():
        raise PluginError(f"{path} is missing; the How to cite block reads it.")
    cff = yaml.safe_load(path.read_text())
    # An entity ("name") is braced for BibTeX, which would otherwise read its last word as a surname.
    authors = [(x["name"], True) if x.get("name") else
               (" ".join(filter(None, (x.get("given-names"), x.get("family-names")))), False)
               for x in cff.get("authors", [])]

    def git(*args):
        r = subprocess.run(["git", *args], cwd=project, capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else ""
    url = cff.get("url") or cff.get("repository-code") or ""
    slug = url.rstrip("/").rsplit("/", 1)[-1] if "/" in url.split("//", 1)[-1] else ""
    return {"title": cff["title"], "authors": authors or [("anonymous", False)], "url": url,
            "key": citations.key_of(slug or cff["title"])[:24],  # the BibTeX key's stem: lenetcifar10
            "commit": git("rev-parse", "--short=12", "HEAD") or "unknown",
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),  # built from an edited tree
            "year": (git("log", "-1", "--format=%cs") or "")[:4] or "n.d."}


# ------------------------------------------------------------------------------ the reference runs only

def _differs(found, want) -> bool:
    """found (a CSV cell's text, or a JSON value) is not the reference value `want`."""
    if isinstance(want, bool) or not isinstance(want, (int, float)):
        return found != want
    try:
        return not math.isclose(float(found), want, rel_tol=1e-9)
    except (TypeError, ValueError):
        return True


def check_reference(s: Store) -> None:
    """The site publishes only the reference runs (contract.REFERENCE: the homework's settings, seed
    0): every row of summary.csv, every run's recorded config, and the seed-0 accuracies the paired
    comparison in seeds.json used. Runs with other settings belong in build/runs/, not here."""
    ref = contract.REFERENCE
    only = "the site publishes only reference runs; rerun `{}` (or restore artifacts/ with git)."
    train = only.format("invoke train --force")
    rows = s.read_csv(SUMMARY)
    for line, r in enumerate(rows, start=2):  # line numbers as an editor shows them
        for k in ("seed", "epochs", "batch_size", "lr"):
            if _differs(r[k], ref[k]):
                raise PluginError(f"{s.show(SUMMARY)} line {line} ({r['variant']}) has {k}={r[k]}, not the "
                                  f"reference {ref[k]}: {train}")
    variants = [r["variant"] for r in rows]
    if len(set(variants)) != len(variants):
        raise PluginError(f"{s.show(SUMMARY)} has more than one row of a variant ({', '.join(variants)}); "
                          f"it holds one reference run each: {train}")
    for v in variants:
        rel = METRICS.format(v)
        config = s.read_json(rel).get("config") or {}
        for k, want in ref.items():
            if _differs(config.get(k), want):
                raise PluginError(f"{s.show(rel)} was trained with {k}={config.get(k)}, not the reference "
                                  f"{want}: {train}")
    stale = s.stale()  # contract.DERIVED_FROM: each derived file records what it was computed from
    if stale:
        rel, why = stale[0]
        more = f" (and {len(stale) - 1} more)" if len(stale) > 1 else ""
        raise PluginError(f"{s.show(rel)} {why}{more}: the tree mixes runs; the site publishes one "
                          f"reference. Run `invoke derive` to derive it again from what is here (or "
                          f"restore artifacts/ with git).")
    used = s.read_json(SEEDS)["reference"]
    for r in rows:
        if _differs(used.get(r["variant"]), float(r["test_accuracy"])):
            raise PluginError(f"{s.show(SEEDS)} used {used.get(r['variant'])} as the seed-0 test accuracy of "
                              f"{r['variant']}, but the reference run in {SUMMARY} has {r['test_accuracy']}: "
                              + only.format(contract.invoke_command(contract.writer_of(SEEDS))))


# ------------------------------------------------------------------------------------------ formatting

def fmt(value, spec: str | None = None) -> str:
    """A value as a page shows it: `spec` is a FORMATS alias or a Python format spec."""
    if spec is None:
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, (list, tuple)):
            return ", ".join(fmt(v) for v in value)
        return text(value)
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


def table(header: list[str], rows: list[list[str]], align: str | None = None) -> Table:
    """A Markdown table; align holds one of l / r per column (default: left). It keeps its cells,
    so `table_block` renders the same formatted cells as LaTeX (pipeline/tables.py)."""
    return Table(header, rows, align)


def flatten(data, prefix: str = "") -> list[tuple[str, object]]:
    if isinstance(data, dict):
        return [kv for k, v in data.items() for kv in flatten(v, f"{prefix}{k}.")]
    return [(prefix.rstrip("."), data)]


# Values from artifacts, paths, config and git reach the page as text, whatever they hold: every
# character Markdown or HTML could act on becomes an entity (links, tags, attribute lists, emphasis,
# tables). Code spans need no entities (their content is literal) but a fence longer than any run
# of backticks inside, so a value cannot close its span early.
_ENTITIES = {c: f"&#{ord(c)};" for c in "&<>[]{}`*_|\\#~$"}  # ( ) ! = are inert once [ ] { } are


def text(value) -> str:
    """A value as plain text in Markdown: nothing in it becomes markup."""
    return "".join(_ENTITIES.get(ch, ch) for ch in str(value)).replace("\n", " ")


def code(value) -> str:
    """A value as an inline code span, whatever backticks it holds."""
    s = str(value).replace("\n", " ")
    fence = "`" * (max((len(run) for run in re.findall(r"`+", s)), default=0) + 1)
    pad = " " if "`" in s else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def prose(sentence) -> str:
    """A sentence the pipeline generated: its code spans stay code spans, the rest is text(). It
    may stand alone on a line, so a first character that could open a block (`!!!`, `===`, `1.`,
    `+`, `-`, `>`, spaces) is an entity too."""
    parts = re.split(r"(`[^`]+`)", str(sentence).strip())
    out = "".join(model(p[1:-1]) if p.startswith("`") and p.endswith("`") and len(p) > 1 else text(p)
                  for p in parts)  # a run's code name reads as its model name; other code stays code
    return (out if not out or out[0].isalpha() or out[0] in "`&" or out.startswith("<abbr title=\"code name")
            else f"&#{ord(out[0])};{out[1:]}")


def model(variant) -> str:
    """A reference run by its readable name, the code name in its tooltip ("Model 1: BN + dropout",
    hover: lenet_bn_dropout); a name pipeline/names.py does not know stays code."""
    name = display(str(variant))
    if name == str(variant):
        return code(variant)
    return f'<abbr title="code name: {htmllib.escape(str(variant), quote=True)}">{text(name)}</abbr>'


def _pp(x: float) -> str:
    return f"{100 * float(x):+.2f} pp"


# ------------------------------------------------------------------------------------------ scalars

def value(s: Store, rel: str, key: str, spec: str | None = None) -> str:
    """One value of an artifact, formatted: the one way a page reads a scalar. A JSON file by dotted
    key; lenet/summary.csv by VARIANT.COLUMN."""
    if rel == SUMMARY:
        data = runs(s)
    elif rel.endswith(".json"):
        data = s.read_json(rel)
    else:
        raise PluginError(f"value {rel}: only JSON artifacts and {SUMMARY} have keys.")
    return fmt(dig(data, key, s.show(rel)), spec)


# The pages' older spellings of `value`, each with its file fixed.
def metric(s: Store, variant: str, column: str, spec: str | None = None) -> str:
    return value(s, SUMMARY, f"{variant}.{column}", spec)


def run(s: Store, variant: str, key: str, spec: str | None = None) -> str:
    return value(s, of_variant(s, METRICS, variant), key, spec)


def dataset(s: Store, key: str, spec: str | None = None) -> str:
    return value(s, DATASET, key, spec)


def seeds(s: Store, key: str, spec: str | None = None) -> str:
    return value(s, SEEDS, key, spec)


def ablation(s: Store, key: str, spec: str | None = None) -> str:
    return value(s, ABLATION, key, spec)


def expect(s: Store, variant: str, column: str, want: str) -> str:
    found = metric(s, variant, column)
    if found != want:
        raise PluginError(f"the page's text assumes {variant} has {column} = {want!r}, but "
                          f"{s.show(SUMMARY)} says {found!r}; update the page.")
    return ""


# ------------------------------------------------------------------------------ stored sentences

def compare(s: Store, column: str, first: str | None = None, second: str | None = None) -> str:
    """The stored sentence comparing two runs on a summary.csv column. With A B, the page's prose
    assumes that pair: fail unless the pipeline compared exactly A with B."""
    found = dig(s.read_json(FINDINGS), f"compare.{column}", s.show(FINDINGS))
    if first is not None and (first, second) != (found["a"], found["b"]):
        raise PluginError(f"compare {column} {first} {second or ''}: {s.show(FINDINGS)} compares "
                          f"{found['a']} with {found['b']}; update the page.")
    return prose(found["sentence"])


def val_trend(s: Store, variant: str) -> str:
    return prose(dig(s.read_json(FINDINGS), f"val_trend.{variant}", s.show(FINDINGS)))


def seeds_paired(s: Store) -> str:
    return prose(s.read_json(SEEDS)["sentence"])


# ------------------------------------------------------------------------------------------ tables and figures

def summary_table(s: Store) -> str:
    """One column per run (two runs read better side by side than as nine-column rows)."""
    rows = list(runs(s).values())  # the reference runs; seeds_table summarises all seeds
    fields = [
        ("preprocessing", lambda r: code(r["preprocess"])),
        ("test accuracy", lambda r: f"**{fmt(r['test_accuracy'], 'pct')}**"),
        ("best validation accuracy (epoch)", lambda r: f"{fmt(r['best_val_accuracy'], 'pct')} ({fmt(r['best_val_epoch'])})"),
        ("final training loss", lambda r: fmt(r["final_train_loss"], "f3")),
        ("epochs", lambda r: fmt(r["epochs"])),
        ("training time (s)", lambda r: fmt(r["train_seconds"], "f1")),
        ("throughput (images/s)", lambda r: fmt(r["images_per_second"], ",.0f")),
        ("parameters", lambda r: fmt(r["params"], "int")),
        ("device", lambda r: fmt(r["device"])),
    ]
    fields.insert(2, ("the homework's walkthrough reports", lambda r: (
        fmt(PUBLISHED[r["variant"]], "pct") if r["variant"] in PUBLISHED else "–")))
    header = ["", *(model(r["variant"]) for r in rows)]
    return table(header, [[label, *(get(r) for r in rows)] for label, get in fields], "l" + "r" * len(rows))


def log_table(s: Store, variant: str) -> str:
    rows = [[fmt(r["epoch"]), fmt(r["train_loss"], "f4"), fmt(r["train_accuracy"], "pct2"),
             fmt(r["val_loss"], "f4"), fmt(r["val_accuracy"], "pct2"),
             fmt(r["test_accuracy"], "pct2"), fmt(r["seconds"], "f1")]
            for r in s.read_csv(of_variant(s, LOGS, variant))]  # test loss is left out for width: it is in the curves and the CSV
    return table(["epoch", "train loss", "train acc.", "val. loss", "val. acc.", "test acc.", "time (s)"],
                 rows, "rrrrrrr")


def params_table(s: Store) -> str:
    counts = {v: dig(s.read_json(METRICS.format(v)), "params_by_layer", s.show(METRICS.format(v))) for v in runs(s)}
    for v, by_layer in counts.items():  # our bug if the two records disagree: fail loudly
        total, recorded = sum(by_layer.values()), int(float(runs(s)[v]["params"]))
        if total != recorded:
            raise PluginError(f"lenet/{v}: params_by_layer sums to {total} but summary.csv says {recorded}; "
                              "rerun `invoke train --force`.")
    layers = list(dict.fromkeys(layer for by_layer in counts.values() for layer in by_layer))
    rows = [[code(layer), *(fmt(c[layer], "int") if layer in c else "–" for c in counts.values())]
            for layer in layers]
    rows.append(["**total**", *(f"**{fmt(sum(c.values()), 'int')}**" for c in counts.values())])
    return table(["layer", *map(code, counts)], rows, "l" + "r" * len(counts))


def dataset_table(s: Store) -> str:
    """All of dataset.json but the checksums (md5_table shows those side by side)."""
    rows = [[code(k), code(v) if isinstance(v, str) else fmt(v)]
            for k, v in flatten({k: v for k, v in s.read_json(DATASET).items() if k not in MD5_FIELDS})]
    return table(["field", "value"], rows)


def md5_table(s: Store) -> str:
    """Each data file's md5 next to the official one (dataset.json `md5s`, `official_md5s`)."""
    d = s.read_json(DATASET)
    md5s, expected = dig(d, "md5s", s.show(DATASET)), d.get("official_md5s") or {}
    mismatched = set(d.get("mismatched") or [])
    rows = [[code(name), code(md5), code(expected.get(name, "?")),
             "✗ differs" if name in mismatched else "✓ same"] for name, md5 in md5s.items()]
    return table(["file", "md5 of the copy used", "official md5", ""], rows)


def data_notice(s: Store) -> str:
    if official(s):
        return "Every CIFAR-10 file matched its official md5: these results come from the official data."
    mismatched = s.read_json(DATASET).get("mismatched") or []
    which = f" ({', '.join(map(code, mismatched))})" if mismatched else ""
    return (f"The data files{which} do not match the official CIFAR-10 md5s: {data_origin(s)} "
            "Accuracies measured on it are close to, not identical with, accuracies on the official data.")


def data_origin(s: Store) -> str:
    if (s.read_json(DATASET).get("md5s") or {}).get("test_batch") == REBUILT_TEST_MD5:
        return ("they are the rebuilt copy of CIFAR-10 (`cifar-10-python-rebuilt.tar.gz`), whose labels and "
                "train/test split are exact but most of whose images were restored from a JPEG copy "
                "(about 30 dB PSNR, mean error 5.8 grey levels).")
    return "they are an unofficial copy of CIFAR-10, not the archive from the dataset's home page."


def provenance(s: Store, artifact: str = "lenet/summary.csv") -> str:
    s.path(artifact)  # it must exist and match the manifest
    entry = s.entry(artifact)
    where = f"the manifest entry of {artifact}"
    data = dig(entry, "data", where)
    commit = str(dig(entry, "commit", where))
    if entry.get("dirty"):
        commit += " (with uncommitted changes)"
    rows = [["artifact", code(artifact)], ["written by task", code(entry.get("task", contract.writer_of(artifact)))],
            ["git commit", code(commit)], ["finished", fmt(dig(entry, "timestamp", where))],
            ["device", fmt(dig(entry, "device", where))], ["torch", code(dig(entry, "torch", where))],
            ["data official", "no data used" if data is None else fmt(bool(dig(data, "official", where)))]]
    if "seeds" in entry:
        rows.append(["seeds", code(json.dumps(entry["seeds"], sort_keys=True))])
    data = data or {}  # None: a task that reads no CIFAR-10 (answers, layers)
    if data.get("mismatched"):
        rows.append(["files differing from the official md5s", ", ".join(map(code, data["mismatched"]))])
    for name, md5 in (data.get("md5s") or {}).items():
        rows.append([f"md5 of {code(name)}", code(md5)])
    return table(["field", "value"], rows)


def manifest_table(s: Store) -> str:
    rows = []
    for path, e in sorted(s.manifest()["artifacts"].items()):
        commit = str(e.get("commit", "?"))[:10] + ("+" if e.get("dirty") else "")
        rows.append([code(path), code(e.get("task", "?")), code(commit), fmt(e.get("timestamp", "?")),
                     fmt(e.get("bytes", 0), "int"), code(str(e.get("sha256", "?"))[:12])])
    return table(["artifact", "task", "commit", "finished", "bytes", "sha256 (start)"], rows, "llllrl")


def verify_table(s: Store) -> str:
    """The reproduction verdict of `invoke verify` (verify.json): committed vs rerun per variant
    and metric, then the two machines. The verdicts are the pipeline's (stages.verify_rows)."""
    report = s.read_json("verify.json")
    rows = [[model(r["variant"]), fmt(str(r["metric"]).replace("_", " ")), fmt(r["committed"], ".4g"),
             fmt(r["rerun"], ".4g"), fmt(r["verdict"])] for r in report["rows"]]
    c, r = report["committed"], report["rerun"]
    cm, rm = machine_fields(c.get("machine")), machine_fields(r.get("machine"))
    if any(isinstance(m, dict) for m in (c.get("machine"), r.get("machine"))):
        machine_rows = [[label, text(cm[label]), text(rm[label])] for label in MACHINE_ROWS]
    else:  # both files older than the record: one row says so, not seven
        machine_rows = [["CPU, instruction set, torch build", text(cm["CPU"]), text(rm["CPU"])]]
    machines = table(["", "committed run", "rerun"], [
        ["commit", code(str(c.get("commit"))[:10]), code(str(r.get("commit"))[:10])],
        ["torch", code(c.get("torch")), code(r.get("torch"))],
        ["device", fmt(c.get("device")), fmt(r.get("device") or [])],
        *machine_rows,
        ["finished", fmt(c.get("timestamp")), fmt(r.get("finished"))]])
    # a verify.json written before machines were recorded holds the rerun's platform and processor
    where = (f" on {code(r['machine'])} ({fmt(r.get('processor'))})" if isinstance(r.get("machine"), str)
             and "processor" in r else "")
    return "\n".join([f"**Verdict: {fmt(report['verdict'])}.**", "",
                      table(["variant", "metric", "committed", "rerun", "verdict"], rows, "llrrl"), "", machines,
                      "", f"The rerun ran{where} in {fmt(r.get('seconds'), 'f1')} s."])


MACHINE_ROWS = ("CPU", "instruction set", "torch threads", "torch build", "GPU", "Python", "platform")


def machine_fields(m) -> dict[str, str]:
    """A machine record (pipeline.machine.describe's dict) as {row label: plain text}, in
    MACHINE_ROWS order; anything else (a file written before machines were recorded) says so."""
    if not isinstance(m, dict):
        return dict.fromkeys(MACHINE_ROWS, "differs between the runs" if m == DIFFERS else "not recorded")
    cap = m.get("onednn_max_cpu_isa")
    threads = m.get("threads")
    build = [m.get("torch"), f"CUDA {m['torch_cuda']}" if m.get("torch_cuda") else "CPU build",
             f"git {str(m.get('torch_git'))[:12]}" if m.get("torch_git") else "", "debug" if m.get("torch_debug") else ""]
    return {"CPU": f"{m.get('cpu')} ({m.get('cores')} cores)",
            "instruction set": f"{m.get('isa')}" + (f" (ONEDNN_MAX_CPU_ISA={cap})" if cap else ""),
            "torch threads": " and ".join(map(str, threads)) if isinstance(threads, list) else str(threads),
            "torch build": ", ".join(str(b) for b in build if b), "GPU": str(m.get("gpu") or "none"),
            "Python": str(m.get("python")), "platform": str(m.get("platform"))}


def machine_line(m) -> str:
    """A machine record as one line of prose: CPU, instruction set, threads, torch, GPU."""
    f = machine_fields(m)
    if not isinstance(m, dict):
        return text(f["CPU"])
    gpu = f", GPU {f['GPU']}" if m.get("gpu") else ""
    return text(f"{f['CPU']}, instruction set {f['instruction set']}, torch threads {f['torch threads']}, "
                f"torch {f['torch build']}{gpu}, Python {f['Python']}, {f['platform']}")


def machine(s: Store, rel: str, key: str = "machine") -> str:
    """The machine record at KEY (dotted) of a JSON artifact, as one line; a file without it
    (written before machines were recorded) gives "not recorded"."""
    found = s.read_json(rel)
    for part in key.split("."):
        found = found.get(part) if isinstance(found, dict) else None
    return machine_line(found)


def gpu_note(s: Store) -> str:
    """Whether any published figure was measured on a GPU, from the devices every run recorded:
    the sentence is pipeline.machine.gpu_note's, the hook only gathers the devices."""
    devices = {"the reference runs": [r["device"] for r in runs(s).values()],
               "the seed runs": [r["device"] for r in s.read_csv("lenet/seed_runs.csv")],
               "the ablation": [r["device"] for r in s.read_csv("ablation/runs.csv")],
               "the dropout runs": [r["device"] for r in s.read_csv("cs182/dropout/runs.csv")],
               "the own CNN": [r["device"] for r in s.read_csv("own_cnn/summary.csv")],
               "`invoke bench`": [dig(s.read_json("bench.json"), "device", s.show("bench.json"))],
               "`invoke verify`'s rerun": list(s.read_json("verify.json")["rerun"].get("device") or [])}
    return prose(gpu_sentence(devices))


_figures = {"page": None, "n": 0}  # figure numbers restart on every page


def figure_number(page) -> int:
    if _figures["page"] is not page:
        _figures.update(page=page, n=0)
    _figures["n"] += 1
    return _figures["n"]


def plot(s: Store, name: str, caption: str, alt: str | None = None, page=None) -> str:
    """Figure N of the page: the image (linked to itself), its caption (what to see) and alt text
    (what it shows, for a reader who cannot see it; the caption if not given)."""
    folder, _, file = name.rpartition("/")
    folder = folder or PLOTS_DIR
    if folder not in FIGURE_DIRS:
        raise PluginError(f"plot {name}: images are published from {', '.join(FIGURE_DIRS)} only.")
    file = file if file.endswith(PLOT_SUFFIXES) else f"{file}.svg"
    if contract.spec_of(f"{folder}/{file}") is None:  # a typo, not a figure some task failed to draw
        raise PluginError(f"plot {name}: {folder}/{file} is not a figure the artifacts contract lists "
                          "(pipeline/contract.py).")
    s.path(f"{folder}/{file}")
    src = posixpath.relpath(f"assets/{folder}/{file}", posixpath.dirname(page.file.src_uri) or ".")
    n = figure_number(page)
    return "\n".join(['<figure class="report-figure" markdown="1">', "",
                      f"[![{text(alt or caption)}]({src}){{ loading=lazy }}]({src})", "",
                      f'<figcaption markdown="1">**Figure {n}.** {text(caption)}</figcaption>', "", "</figure>"])


def seeds_table(s: Store) -> str:
    """Test accuracy of each variant over its seeds (lenet/seeds.json): mean, sd, 95% CI, range."""
    found, where = s.read_json(SEEDS), s.show(SEEDS)
    rows = []
    for v, d in dig(found, "variants", where).items():
        rows.append([model(v), fmt(d["n"]), f"**{fmt(d['mean'], 'pct2')}**", f"{100 * d['std']:.2f}",
                     f"{100 * d['ci_low']:.2f}–{fmt(d['ci_high'], 'pct2')}",
                     fmt(PUBLISHED[v], "pct") if v in PUBLISHED else "–",
                     ", ".join(fmt(x, "pct2") for x in dig(d, "values", where))])
    return table(["model", "seeds", "mean test accuracy", "sd (pp)", f"{fmt(found['level'], '.0%')} CI",
                  "homework's walkthrough", "per seed, from seed 0"], rows, "lrrrrrl")


def _onoff(value: str) -> str:
    return {"True": "on", "False": "off"}.get(value) or fmt(value)


def ablation_cells(s: Store) -> str:
    """Every cell of the design: mean test accuracy over seeds with its 95% CI (ablation/cells.csv)."""
    rows = []
    for c in s.read_csv("ablation/cells.csv"):
        rows.append([code(c["preprocess"]), _onoff(c["batch_norm"]), _onoff(c["dropout"]),
                     _onoff(c["augment"]), fmt(c["n"]), f"**{fmt(c['mean'], 'pct2')}**",
                     f"{100 * float(c['std']):.2f}", f"{100 * float(c['ci_low']):.2f}–{fmt(c['ci_high'], 'pct2')}"])
    return table(["inputs", "BN", "dropout", "aug.", "n", "mean test acc.", "sd (pp)", "95% CI"],
                 rows, "llllrrrr")


def ablation_effects(s: Store) -> str:
    """Main effects and interactions in percentage points with 95% CIs (ablation/effects.csv)."""
    rows = []
    for e in s.read_csv("ablation/effects.csv"):
        clear = float(e["ci_low"]) > 0 or float(e["ci_high"]) < 0
        rows.append([fmt(e["effect"]), f"**{_pp(e['estimate'])}**" if clear else _pp(e["estimate"]),
                     f"{_pp(e['ci_low'])} to {_pp(e['ci_high'])}", f"{float(e['p']):.2g}",
                     "yes" if clear else "no"])
    return table(["effect", "estimate", "95% CI", "p", "CI excludes 0"], rows, "lrrrl")


def ablation_runs(s: Store) -> str:
    """Every run of the sweep (ablation/runs.csv)."""
    rows = [[code(r["preprocess"]), _onoff(r["batch_norm"]), _onoff(r["dropout"]), _onoff(r["augment"]),
             fmt(r["seed"]), fmt(r["test_accuracy"], "pct2"), fmt(r["best_val_accuracy"], "pct2"),
             f"{float(r['train_seconds']):.0f}"]
            for r in s.read_csv("ablation/runs.csv")]
    return table(["preprocessing", "BN", "dropout", "augment", "seed", "test acc.", "best val. acc.",
                  "train time (s)"], rows, "llllrrrr")


def ablation_augmentation(s: Store) -> str:
    """Each homework model with and without augmentation, paired by seed, and the share of the gap
    to the published figure it closes (ablation/summary.json `augmentation`)."""
    rows = []
    for name, g in dig(s.read_json(ABLATION), "augmentation", s.show(ABLATION)).items():
        closed = "no gap" if g.get("closed") is None else f"{100 * g['closed']:.0f}%"
        rows.append([code(name), fmt(g["n"]), fmt(g["without"], "pct2"), fmt(g["with"], "pct2"),
                     f"{100 * g['mean']:+.2f} [{100 * g['ci_low']:+.2f}, {100 * g['ci_high']:+.2f}]",
                     fmt(g["published"], "pct"), closed])
    return table(["model", "n", "without", "with aug.", "change, pp [95% CI]", "published",
                  "gap closed"], rows, "lrrrrrr")


def ablation_conclusion(s: Store) -> str:
    return conclusion(s, ABLATION)


def sweep_time(s: Store, which: str) -> str:
    """How long the sweep of `ablation`, `seeds` or `dropout` took: minutes over its invocations."""
    files = {"ablation": ABLATION, "seeds": SEEDS, "dropout": "cs182/dropout/summary.json"}
    if which not in files:
        raise PluginError(f"sweep_time {which}: choose {', '.join(files)}.")
    sweeps = s.read_json(files[which]).get("sweeps") or []
    if not sweeps:
        return "(no sweep recorded)"
    minutes = sum(w["wall_seconds"] for w in sweeps) / 60
    n = sum(w["runs"] for w in sweeps)
    return (f"{minutes:.1f} minutes for {n} runs on {fmt(sweeps[-1]['scheduler'])}"
            + (f", in {len(sweeps)} invocations" if len(sweeps) > 1 else ""))


def gradchecks_table(s: Store) -> str:
    """Every gradient of the CS182 NumPy layers against finite differences and torch autograd, with
    the thresholds in the header (cs182/gradchecks.csv)."""
    rel = "cs182/gradchecks.csv"
    rows = s.read_csv(rel)
    if not rows:
        raise PluginError(f"{s.show(rel)} has no checks; rerun `invoke layers --force`.")
    thresholds = {}
    for column in ("threshold", "torch_threshold"):
        found = {r[column] for r in rows}
        if len(found) != 1:
            raise PluginError(f"{s.show(rel)}: the checks use different {column} values "
                              f"({', '.join(sorted(found))}); rerun `invoke layers --force`.")
        thresholds[column] = fmt(found.pop(), ".0e")
    # The layer and its backward function share a cell: six columns fit the content width.
    body = [[f"{fmt(r['layer'])}: {code(r['backward'])}", code(r["gradient"]), fmt(r["shape"]).replace("x", " × "),
             fmt(r["numeric_rel_error"], ".1e"), fmt(r["torch_rel_error"], ".1e"),
             "yes" if r["passed"] == "True" else "**no**"] for r in rows]
    return table(["layer: backward", "gradient", "shape", f"vs finite differences (< {thresholds['threshold']})",
                  f"vs torch autograd (< {thresholds['torch_threshold']})", "passed"], body, "llrrrl")


def conv_timings_table(s: Store) -> str:
    """The three convolutions' forward + backward time, each as a ratio to torch, and one sentence
    on the setting and the extrapolation of the naive loops (cs182/conv_timings.json)."""
    rel = "cs182/conv_timings.json"
    t, where = s.read_json(rel), s.show(rel)
    torch_s = float(dig(t, "torch_s", where))
    naive = ("naive loops, extrapolated" if dig(t, "naive_extrapolated", where) else "naive loops")
    rows = [["im2col (NumPy)", "`conv_forward_im2col` + `conv_backward_im2col`", dig(t, "im2col_s", where)],
            ["torch autograd", "`F.conv2d` + `.backward`", torch_s],
            [naive, "`conv_forward_naive` + `conv_backward_naive`", dig(t, "naive_s", where)]]
    body = [[name, what, fmt(s, ".4g"), f"{float(s) / torch_s:.3g}×"] for name, what, s in rows]
    shape = dig(t, "shape", where)
    n, m = shape["x"][0], dig(t, "naive_measured_images", where)
    setting = (f"One forward and backward pass of a conv layer on x of shape ({fmt(shape['x'])}), "
               f"{fmt(shape['dtype'])}, weights ({fmt(shape['w'])}), stride {fmt(shape['stride'])}, pad "
               f"{fmt(shape['pad'])}; median of {fmt(dig(t, 'repeats', where))} runs, torch on "
               f"{fmt(dig(t, 'torch_threads', where))} thread(s).")
    if dig(t, "naive_extrapolated", where):
        setting += (f" The naive loops are timed on {fmt(m)} of the {fmt(n)} images and their time is scaled "
                    f"linearly to {fmt(n)} (every image costs the same number of loop iterations).")
    return table(["implementation", "functions", "seconds", "time / torch's"], body, "llrr") + "\n\n" + setting


def conclusion(s: Store, rel: str) -> str:
    """The generated conclusion (a list of sentences under "conclusion") of a JSON artifact, as a list."""
    return "\n".join(f"- {prose(line)}" for line in dig(s.read_json(rel), "conclusion", s.show(rel)))


def dropout_table(s: Store) -> str:
    """Question 5(c): per dropout p, the final eval-mode train and validation accuracy, the gap with
    its 95% CI, test accuracy and its change against p = 0 (cs182/dropout/summary.csv)."""
    rows = []
    for r in s.read_csv("cs182/dropout/summary.csv"):
        change = (f"{_pp(r['test_vs_p0'])} [{100 * float(r['test_vs_p0_ci_low']):+.2f}, "
                  f"{100 * float(r['test_vs_p0_ci_high']):+.2f}]" if r["test_vs_p0"] else "(baseline)")
        rows.append([f"{float(r['p']):g}", fmt(r["n"]), fmt(r["train_eval_accuracy"], "pct2"),
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


def kernel(s: Store, name: str) -> str:
    """A hand-designed kernel of cs182/filters.json as a LaTeX matrix (inline math)."""
    k = dig(s.read_json("cs182/filters.json"), f"kernels.{name}", s.show("cs182/filters.json"))
    cells = [" & ".join(_frac(v) for v in row) for row in k]
    return r"\(\begin{bmatrix} " + r" \\ ".join(cells) + r" \end{bmatrix}\)"


def filters_check_table(s: Store) -> str:
    """Our NumPy filters against torch's conv2d: the largest absolute difference per output."""
    rel = "cs182/filters.json"
    d = s.read_json(rel)
    diffs = dig(d, "max_abs_diff_vs_torch", s.show(rel))
    rows = [[text(name.replace("_", " ")), fmt(v, ".1e"), "yes" if v <= d["tolerance"] else "**no**"]
            for name, v in diffs.items()]
    return table(["output", "largest |ours − torch|", f"below {fmt(d['tolerance'], '.0e')}"], rows, "lrl")


def own_search_table(s: Store) -> str:
    """Every trial of the own CNN's hyperparameter search with its validation accuracy; the chosen
    one in bold (own_cnn/search.csv, own_cnn/chosen.json)."""
    chosen = dig(s.read_json("own_cnn/chosen.json"), "trial", s.show("own_cnn/chosen.json"))
    rows = []
    for r in s.read_csv("own_cnn/search.csv"):
        acc = fmt(r["val_accuracy"], "pct2")
        rows.append([f"**{fmt(r['trial'])}**" if r["trial"] == chosen else fmt(r["trial"]), fmt(r["widths"]),
                     fmt(r["epochs"]), fmt(r["batch_size"]), fmt(r["lr"]), fmt(r["label_smoothing"]),
                     fmt(r["weight_decay"]), f"**{acc}**" if r["trial"] == chosen else acc,
                     f"{float(r['train_seconds']):.0f}"])
    return table(["trial", "widths", "epochs", "batch", "peak lr", "label smoothing", "weight decay",
                  "val. acc.", "train time (s)"], rows, "llrrrrrrr")


def own_history(s: Store) -> str:
    """Every final run of the own CNN (own_cnn/metrics.json `history`, then the current one), so a
    reader sees each time the test set was used, not only the last."""
    rel = "own_cnn/metrics.json"
    m = s.read_json(rel)
    runs = [*dig(m, "history", s.show(rel)),
            {"config": m["config"], "chosen_trial": m["chosen"]["trial"], "test_accuracy": m["final"]["test_accuracy"],
             "val_accuracy": m["final"]["val_accuracy"], "train_seconds": m["final"]["train_seconds"],
             "device": m["device"], "recorded": m.get("recorded")}]
    rows = []
    for i, r in enumerate(runs, 1):
        rec = r.get("recorded") or {}
        when = f"{fmt(rec.get('timestamp') or rec.get('finished') or '?')}, commit {code(str(rec.get('commit', '?'))[:10])}"
        c = r["config"]
        rows.append([str(i) + (" (this page)" if i == len(runs) else ""), fmt(r["chosen_trial"]),
                     fmt("-".join(map(str, c["widths"]))), fmt(c["lr"]), fmt(c["weight_decay"]), fmt(c["epochs"]),
                     f"{float(r['train_seconds']):.0f}", fmt(r["val_accuracy"], "pct2"),
                     f"**{fmt(r['test_accuracy'], 'pct2')}**", when])
    return table(["final run", "chosen trial", "widths", "peak lr", "weight decay", "epochs", "training (s)",
                  "val. acc.", "test acc.", "recorded"], rows, "llrrrrrrrl")


def models_table(s: Store) -> str:
    """The own CNN beside both LeNets (their seed-0 reference runs): parameters, epochs, training
    time, device, test accuracy."""
    models = [*runs(s).values(), *s.read_csv("own_cnn/summary.csv")]
    rows = [[model(r["variant"]), f"{int(r['params']):,}", fmt(r["epochs"]), f"{float(r['train_seconds']):.0f}",
             f"{float(r['train_seconds']) / 60:.1f}", fmt(r["device"]), f"**{fmt(r['test_accuracy'], 'pct2')}**"]
            for r in models]
    return table(["model", "parameters", "epochs", "training (s)", "training (min)", "device",
                  "test accuracy"], rows, "lrrrrlr")


def per_class_table(s: Store) -> str:
    """Test accuracy per class of both reference runs, with the images each got right
    (lenet/per_class.csv), and the difference between them in percentage points."""
    rows, variants = s.read_csv("lenet/per_class.csv"), contract.REFERENCE_VARIANTS
    out = []
    for r in rows:
        acc = [float(r[f"{v}_accuracy"]) for v in variants]
        out.append([text(r["class"]), fmt(r["images"], "int"),
                    *(f"{fmt(a, 'pct')} ({fmt(r[f'{v}_correct'], 'int')})" for v, a in zip(variants, acc)),
                    _pp(acc[0] - acc[1])])
    return table(["class", "test images", *(model(v) for v in variants),
                  f"difference ({text(display(variants[0]).split(':')[0])} − {text(display(variants[1]).split(':')[0])})"],
                 out, "lr" + "r" * len(variants) + "r")


def question_index(s: Store, page=None) -> Table:
    """Every question and sub-part of the three homeworks with its final answer and a link to its
    anchor (pipeline/answers/questions.py); its CSV (questions.INDEX_CSV, built by on_files) and
    .tex come with `{{ table_block question_index questions.csv }}`."""
    answers, artifacts = questions.gather(s)
    rows = questions.rows(answers, artifacts)
    for r in rows:  # links from this page to the homework pages' source files, which MkDocs resolves
        r["path"] = posixpath.relpath(r["path"], posixpath.dirname(page.file.src_uri) or ".")
        if r["page"]:
            r["page"] = posixpath.relpath(r["page"], posixpath.dirname(page.file.src_uri) or ".")
    return Table.from_markdown(questions.table_md(rows))


def answered_here(page) -> str:
    """A note under the title of a page that works out homework questions: which, linking back to
    each question's answer on its homework page. Empty on other pages."""
    here = page.file.src_uri
    qs = [q for q in questions.QUESTIONS if q.page == here]
    if not qs:
        return ""
    base = posixpath.dirname(here) or "."
    items = [f"    - [{questions.HOMEWORKS[q.homework][0]}, question {q.label}]"
             f"({posixpath.relpath(q.home, base)}#{q.anchor}): {q.topic}" for q in qs]
    return '!!! question "The homework questions this page works out"\n\n' + "\n".join(items) + "\n"


def _published(s: Store, rel: str, page) -> str:
    """The link target of an artifact published under assets/artifacts/, relative to the page."""
    if not rel.endswith(PUBLISHED_SUFFIXES):
        raise PluginError(f"{rel}: only {', '.join(PUBLISHED_SUFFIXES)} artifacts are published for download.")
    s.path(rel)  # it must exist and match the manifest
    return posixpath.relpath(f"{SITE_FILES}/{rel}", posixpath.dirname(page.file.src_uri) or ".")


def csv_link(s: Store, rel: str, *label: str, page=None) -> str:
    """A download link to a CSV artifact as published (assets/artifacts/REL), with its sha256."""
    if not rel.endswith(".csv"):
        raise PluginError(f"csv {rel}: only CSV artifacts are published for download.")
    src = _published(s, rel, page)
    return (f'<span class="artifact-download">[{text(" ".join(label) or f"Download {posixpath.basename(rel)}")}]'
            f'({src}){{ download="{posixpath.basename(rel)}" }} '
            f"(the exact file {code(f'artifacts/{rel}')}, sha256 {code(s.entry(rel)['sha256'][:12] + '…')})</span>")


def download(s: Store, rel: str, *label: str, page=None) -> str:
    """A download link to a published artifact (a CSV, trained weights) with its full sha256, to
    check the copy: `sha256sum FILE`."""
    src = _published(s, rel, page)
    name = posixpath.basename(rel)
    size = fmt(s.entry(rel).get("bytes", s.path(rel).stat().st_size), "int")
    return (f'<span class="artifact-download">[{text(" ".join(label) or f"Download {name}")}]({src})'
            f'{{ download="{name}" }} ({code(f"artifacts/{rel}")}, {size} bytes, sha256 '
            f"{code(s.entry(rel)['sha256'])})</span>")


class _Reads:
    """A Store that records which artifacts a table placeholder read: the table's sources."""

    def __init__(self, store: Store):
        self._store, self.paths = store, []

    def __getattr__(self, name):
        attr = getattr(self._store, name)
        if name not in ("read_csv", "read_json", "read_text", "read_rows"):
            return attr

        def reading(rel, *args, **kwargs):
            if rel not in self.paths:
                self.paths.append(rel)
            return attr(rel, *args, **kwargs)
        return reading


_build: dict = {}  # of the current build: config, files, the CSVs the hook generates (on_files)


def table_anchor(name: str) -> str:
    return "table-" + name.replace("_", "-")


def _commits(s: Store, rels) -> list[tuple[str, bool]]:
    """The (commit, dirty) pairs that wrote these artifacts, the latest first."""
    entries = sorted((s.entry(r) for r in rels), key=lambda e: str(e.get("timestamp", "")), reverse=True)
    return list(dict.fromkeys((str(e.get("commit", "unknown")), bool(e.get("dirty"))) for e in entries))


def _source_rows(s: Store, rels) -> list[list[str]]:
    rows = []
    for rel in rels:
        e = s.entry(rel)
        commit = code(str(e.get("commit", "?"))[:12]) + (" (with uncommitted changes)" if e.get("dirty") else "")
        rows.append([code(f"artifacts/{rel}"), code(e.get("sha256", "?")),
                     code(contract.invoke_command(e.get("task") or contract.writer_of(rel))), commit,
                     fmt(e.get("timestamp", "?")), code(json.dumps(e.get("seeds"), sort_keys=True)),
                     code(json.dumps(e.get("config"), sort_keys=True))])
    return rows


def _tabs(tabs: list[tuple[str, str, str]]) -> list[str]:
    """Content tabs, each one fenced code block (with a copy button): (title, language, text)."""
    out = []
    for title, lang, body in tabs:
        out += [f'=== "{title}"', "", f"    ```{lang}", *("    " + line for line in body.split("\n")), "    ```", ""]
    return out


def table_block(s: Store, name: str, rel: str, *caption: str, page=None) -> str:
    """Below a table placeholder NAME on the page: its CSV (REL, an artifact or a CSV the hook
    builds), its .tex (the same formatted cells, pipeline/tables.py; published under assets/tables/)
    and a collapsed "Cite this table": the table's anchor (put on the table by on_page_markdown),
    every artifact it was computed from with its manifest entry, and BibTeX and plain text pointing
    at the anchor's URL. CAPTION (quoted) names the table in the citation."""
    func = PLACEHOLDERS.get(name)
    if func is None or not re.search(r"\{\{\s*" + re.escape(name) + r"\s*\}\}", page.markdown or ""):
        raise PluginError(f"table_block {name}: the page has no {{{{ {name} }}}} table for it to follow.")
    reads = _Reads(s)
    shown = func(reads, **({"page": page} if "page" in inspect.signature(func).parameters else {}))
    if not isinstance(shown, Table):
        raise PluginError(f"table_block {name}: {name} does not return a table.")
    generated = _build.get("generated", {})
    if rel in generated:  # built by the hook (the question index): its sha256 is of the bytes published
        csv_src = posixpath.relpath(rel, posixpath.dirname(page.file.src_uri) or ".")
        csv_sha = hashlib.sha256(generated[rel].encode()).hexdigest()
        csv_what = f"built from the artifacts below, sha256 {code(csv_sha[:12] + '…')}"
        sources = reads.paths
    else:
        csv_src, csv_sha = _published(s, rel, page), s.entry(rel)["sha256"]
        csv_what = f"the exact file {code(f'artifacts/{rel}')}, sha256 {code(csv_sha[:12] + '…')}"
        sources = list(dict.fromkeys([rel, *reads.paths]))
    if not sources:
        raise PluginError(f"table_block {name}: the table read no artifact, so there is nothing to cite.")
    anchor, title = table_anchor(name), " ".join(caption) or page.title or name
    config, files = _build["config"], _build["files"]
    where = page.file.url.removeprefix("./")  # the page's URL path, "" for the home page
    url = f"{config.site_url or ''}{where}#{anchor}"
    info, commits = citation(), _commits(s, sources)
    year = max(str(s.entry(r).get("timestamp", "")) for r in sources)[:4] or info["year"]
    key = citations.key_of(info["key"], where or "home", name)
    described = [f"artifacts/{r} (sha256 {s.entry(r)['sha256']})" for r in sources]
    misc, plain = citations.table_entries(info, title, url, described, commits, key, year)
    tex_path = f"{SITE_TABLES}/{where}{name}.tex"
    if files.get_file_from_path(tex_path) is not None:
        raise PluginError(f"table_block {name} appears twice on {page.file.src_uri}; keep one.")
    tex = to_latex(shown, [f"{title}: {url}", f"From {'; '.join(described)}.",
                           f"Written at commit(s) {citations.commits_note(commits)}.",
                           "Generated by the report's site build (pipeline/tables.py); needs \\usepackage{booktabs}."])
    files.append(File.generated(config, tex_path, content=tex))
    tex_src = posixpath.relpath(tex_path, posixpath.dirname(page.file.src_uri) or ".")
    csv_name, tex_name = posixpath.basename(rel), posixpath.basename(tex_path)
    provenance_rows = table(["artifact", "sha256", "written by", "commit", "finished", "seeds", "settings"],
                            _source_rows(s, sources))
    return "\n".join([
        f'<span class="artifact-download table-block">[Download {text(csv_name)}]({csv_src}){{ download="{csv_name}" }}'
        f' · [Download {text(tex_name)} (LaTeX, booktabs)]({tex_src}){{ download="{tex_name}" }} ({csv_what})</span>',
        "", '??? quote "Cite this table"', "",
        f"    {text(title)}: the table above, at [{text('#' + anchor)}](#{anchor}), {code(url)}. Computed from "
        f"{'this artifact' if len(sources) == 1 else f'these {len(sources)} artifacts'}, with what the manifest "
        "records of the run that wrote each (task, commit, settings, seeds):", "",
        *("    " + line for line in provenance_rows.split("\n")), "",
        *("    " + line for line in _tabs([("BibTeX", "bibtex", misc), ("Plain text", "text", plain)]))])


def report_sources(s: Store) -> list[str]:
    """Every artifact in the manifest: the report's numbers."""
    return sorted(s.manifest()["artifacts"])


def cite(s: Store) -> str:
    """BibTeX (@misc for classic BibTeX, @software for biblatex) and plain text for the report, from
    CITATION.cff; the version is the site's git commit, and the commits that wrote the numbers (the
    manifest's) are named, dirty ones flagged."""
    misc, software, plain = citations.report_entries(citation(), _commits(s, report_sources(s)))
    return "\n".join(_tabs([("BibTeX (@misc)", "bibtex", misc), ("biblatex (@software)", "bibtex", software),
                            ("Plain text", "text", plain)])).rstrip()


def _short_name(ref) -> str:
    """"LeCun et al." from the plain citation's author list."""
    names = ref.plain.split(" (")[0].split(", ")
    last = [n.split()[-1] for n in names]
    return last[0] if len(last) == 1 else " and ".join(last) if len(last) == 2 else f"{last[0]} et al."


def references(s: Store, page=None) -> str:
    """Every published work the pages cite (pipeline/citation.py REFERENCES), each under its anchor
    with plain text, where the report uses it, and BibTeX; then all of them as one .bib download."""
    out = []
    for ref in citations.REFERENCES:
        out += [f"### {text(_short_name(ref))} ({text(ref.fields['year'])}) {{ #{ref.key} }}", "",
                text(ref.plain), "", f"Used for: {text(ref.used)}.", "",
                *_tabs([("BibTeX", "bibtex", ref.bibtex())])]
    src = posixpath.relpath(REFERENCES_BIB, posixpath.dirname(page.file.src_uri) or ".")
    return "\n".join([f'<span class="artifact-download">[Download every entry ({posixpath.basename(src)})]'
                      f'({src}){{ download="{posixpath.basename(src)}" }}</span>', "", *out]).rstrip()


REFERENCES_BIB = "assets/references.bib"  # every REFERENCES entry, generated by on_files


def bench_setting(s: Store) -> str:
    """Where and how `invoke bench` measured (bench.json): machine (CPU, instruction set, threads,
    torch build), commit. A bench.json written before machines were recorded holds only the
    platform and processor: the sentence says the rest was not recorded."""
    rel = "bench.json"
    b, where = s.read_json(rel), s.show(rel)
    commit = str(dig(b, "commit", where))[:12] + (" (with uncommitted changes)" if dig(b, "dirty", where) else "")
    m = dig(b, "machine", where)
    if isinstance(m, dict):
        on = machine_line(m)
    else:
        on = (f"{text(b.get('processor'))}, {fmt(dig(b, 'cores', where))} cores ({text(m)}), torch "
              f"{text(dig(b, 'torch', where))} (CPU model, instruction set and torch build not recorded: "
              f"this bench.json predates them)")
    return f"Measured by `invoke bench` at commit `{commit}` on {on}; every ratio compares two timings taken in the same run."


def bench_targets_table(s: Store) -> str:
    """Each speed target of bench.json with its measured value and whether it is met."""
    rel = "bench.json"
    names = {"all_over_plain_training": "`invoke all --force` / the plain way's training time",
             "lenet_bn_dropout_loop_speedup": f"{model('lenet_bn_dropout')}: our loop / the plain loop (img/s)",
             "lenet_plain_loop_speedup": f"{model('lenet_plain')}: our loop / the plain loop (img/s)"}
    rows = [[names.get(k, code(k)), f"{float(t['value']):.2f}", text(t["target"]), "yes" if t["met"] else "**no**"]
            for k, t in dig(s.read_json(rel), "targets", s.show(rel)).items()]
    return table(["ratio", "measured", "target", "met"], rows, "lrll")


def bench_loops_table(s: Store) -> str:
    """Throughput of the plain loop and ours per model and torch thread count (bench.json)."""
    rel = "bench.json"
    rows = []
    for threads, loops in dig(s.read_json(rel), "loops", s.show(rel)).items():
        for v, r in loops["variants"].items():
            rows.append([model(v), fmt(threads), fmt(r["plain_images_per_second"], ",.0f"),
                         fmt(r["ours_images_per_second"], ",.0f"), f"{float(r['ratio']):.2f}×"])
    return table(["model", "torch threads", "plain loop (img/s)", "ours (img/s)", "ours / plain"], rows, "lrrrr")


def bench_options_table(s: Store) -> str:
    """The options tried for speed: milliseconds per step and speed against what fit runs."""
    rel = "bench.json"
    rows = []
    for v, options in dig(s.read_json(rel), "options", s.show(rel)).items():
        for name, r in options.items():
            if "error" in r:
                rows.append([model(v), text(name), "failed: " + text(r["error"]), "", ""])
            else:
                rows.append([model(v), text(name), fmt(r["ms_per_step"], ".1f"), f"{float(r['speed_vs_ours']):.2f}×",
                             fmt(r["first_step_seconds"], ".1f")])
    return table(["model", "option", "ms per step", "speed vs ours", "first step (s)"], rows, "llrrr")


def bench_options_finding(s: Store) -> str:
    """The sentence on the options tried, as pipeline/findings.py words bench.json's measurements."""
    rel = "bench.json"
    return prose(findings.options_finding(dig(s.read_json(rel), "options", s.show(rel))))


def profile_table(s: Store, variant: str) -> str:
    """profile.csv for one model: the plain loop's and our loop's top ops, ms per step and share."""
    rows = [[text(r["loop"]), code(r["op"]) if r["op"] not in ("other", "total") else f"*{r['op']}*",
             fmt(r["ms_per_step"], ".2f"), f"{100 * float(r['share']):.0f}%"]
            for r in s.read_csv("profile.csv") if r["variant"] == variant]
    if not rows:
        raise PluginError(f"{s.show('profile.csv')} has no rows for {variant!r}")
    total = {r[0]: r[2] for r in rows if r[1] == "*total*"}
    return (table(["loop", "op (self CPU time)", "ms per step", "share"], rows, "llrr") +
            f"\n\nA step of {model(variant)} under the profiler: plain loop {total.get('plain', '?')} ms, "
            f"ours {total.get('ours', '?')} ms.")


def bench_end_to_end(s: Store) -> str:
    """One paragraph: `invoke all --force` against the plain way's training time, stage by stage,
    and whether its runs reproduced the committed accuracies."""
    rel = "bench.json"
    b, where = s.read_json(rel), s.show(rel)
    if "end_to_end" not in b:  # `invoke bench --no-end-to-end`, or the pipeline run inside the benchmark
        return "This benchmark run did not time `invoke all --force` (`invoke bench --no-end-to-end`)."
    e = b["end_to_end"]
    plain = e["plain"]
    how = (f"timed on {fmt(plain['epochs_measured'])} epoch(s) of each model and extrapolated from the median "
           f"epoch to 20" if plain["extrapolated"] else "timed over all 20 epochs of each model")
    stages = ", ".join(f"{text(k)} {float(v):.1f} s" for k, v in e["stages"].items() if k != "total")  # keys too
    same = [v for v, a in e["accuracies"].items() if a["identical"]]
    acc = ("Its two runs reproduced the committed test accuracies exactly"
           if len(same) == len(e["accuracies"]) else
           "Its runs' test accuracies differ from the committed ones: " + ", ".join(
               f"{model(v)} {100 * a['bench_run']:.2f}% vs {100 * a['committed']:.2f}%"
               for v, a in e["accuracies"].items() if not a["identical"]))
    return (f"`invoke all --force` took **{float(dig(e, 'all_force_seconds', where)):.0f} s** ({stages}). "
            f"The plain way, the tutorial loop training the two models one after the other on "
            f"{fmt(plain['threads'])} torch threads, needs **{float(plain['seconds']):.0f} s** for the "
            f"training alone ({how}): a ratio of **{float(e['ratio']):.2f}**. {acc}.")


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
    "models_table": models_table, "own_history": own_history, "verify_table": verify_table,
    "question_index": question_index, "per_class_table": per_class_table,
    "table_block": table_block, "download": download, "references": references,
    "bench_setting": bench_setting, "bench_targets_table": bench_targets_table, "bench_loops_table": bench_loops_table,
    "bench_options_table": bench_options_table, "profile_table": profile_table, "bench_end_to_end": bench_end_to_end,
    "machine": machine, "gpu_note": gpu_note, "bench_options_finding": bench_options_finding,
}


def expand(s: Store, text: str, page) -> str:
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
        inspect.signature(func).bind(s, *args, **kwargs)
    except TypeError as e:
        raise PluginError(f"{where}: wrong arguments ({e}); see hooks/artifacts.py.") from None
    try:
        return func(s, *args, **kwargs)
    except (PluginError, StoreError) as e:
        raise PluginError(f"{where}: {e}") from None
    except (ValueError, TypeError, KeyError, ZeroDivisionError) as e:  # a value the file should not hold
        raise PluginError(f"{where}: an artifact holds a value this placeholder cannot show ({e!r}); "
                          "rerun the task that writes it with --force, or restore artifacts/ with git.") from None


def substitute(s: Store, markdown: str, page) -> str:
    out = []
    for line in markdown.split("\n"):
        matches = list(PLACEHOLDER.finditer(line))
        if not matches:
            out.append(line)
            continue
        if len(matches) == 1 and line.strip() == matches[0].group(0):
            value = expand(s, matches[0].group(1), page)
            indent = line[:len(line) - len(line.lstrip())]
            out.append("\n".join(indent + v if v else v for v in value.split("\n")))
            continue

        def inline(m):
            value = expand(s, m.group(1), page)
            if "\n" in value:
                raise PluginError(f"{page.file.src_uri}: {m.group(0)} is a block; put it alone on its line.")
            return value
        out.append(PLACEHOLDER.sub(inline, line))
    return "\n".join(out)


def unofficial_warning(s: Store) -> str:
    return ('!!! warning "Results from an unofficial copy of CIFAR-10"\n\n'
            f"    {data_notice(s)}\n")


def insert_after_title(markdown: str, block: str) -> str:
    """`block` right under the page's leading `# Title`, or at the top if it has none."""
    lines = markdown.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and lines[first].startswith("# "):
        return "\n".join([*lines[:first + 1], "", block, *lines[first + 1:]])
    return f"{block}\n{markdown}"


# ------------------------------------------------------------------------------------------ mkdocs events

_store: Store | None = None  # of the current build; made anew by on_config on every (re)build


def on_config(config):
    """The build's store, and the check that only reference runs are published: before any page,
    so a wrong run fails the build in one line, not on the first page that shows it."""
    global _store
    _store = Store()  # $LENET_ARTIFACTS, else artifacts/ in this repository: as the tasks write it
    with plugin_errors():
        check_reference(_store)
    check_site_url(config)
    return config


def check_site_url(config) -> None:
    """The site's URL is one setting, CITATION.cff's `url`: mkdocs.yml leaves `site_url` out and
    this sets it (canonical links, sitemap, citations); a site_url set anyway must be the same. While
    it is the placeholder, say so in one line on stderr (a logged warning would fail --strict builds,
    which must still pass: the site is usable offline; `invoke deploy` refuses)."""
    url = citation()["url"]
    if not config.site_url:
        config.site_url = url if url.endswith("/") else url + "/"
    host, port = config.dev_addr
    if config.site_url.startswith(f"http://{host}:{port}/"):  # `mkdocs serve`: its own preview address
        return
    if (config.site_url or "").rstrip("/") != url.rstrip("/"):
        raise PluginError(f"mkdocs.yml's site_url ({config.site_url}) differs from CITATION.cff's url ({url}); "
                          "make them the same address (the citations use it).")
    if citations.is_placeholder(url):
        print(citations.placeholder_warning(url), file=sys.stderr, flush=True)


def on_files(files, config):
    """Publish every figure under assets/<dir>/, every CSV and the trained weights under
    assets/artifacts/, the question index's CSV and references.bib. The cited tables' .tex files are
    added by table_block, as the pages are read."""
    s = _store
    _build.update(config=config, files=files, generated={})
    with plugin_errors():
        if not any(p.suffix in PLOT_SUFFIXES for p in (s.root / PLOTS_DIR).glob("*")):
            raise PluginError(f"{s.show(PLOTS_DIR)}/ holds no plots; run `invoke plots` to draw them.")
        for folder in FIGURE_DIRS:  # plots/ must exist (checked above); ablation/ once it has run
            d = s.root / folder
            for p in sorted(d.glob("*")) if d.is_dir() else []:
                if p.suffix in PLOT_SUFFIXES:
                    rel = f"{folder}/{p.name}"
                    files.append(File.generated(config, f"assets/{rel}", abs_src_path=str(s.path(rel))))
        for rel in sorted(s.manifest()["artifacts"]):  # every CSV and weights file, for the download links
            if rel.endswith(PUBLISHED_SUFFIXES) and s.exists(rel):
                files.append(File.generated(config, f"{SITE_FILES}/{rel}", abs_src_path=str(s.path(rel))))
        official(s)  # every page's notice needs data/dataset.json: fail here, once, if it is absent
        answers, artifacts = questions.gather(s)
        index_csv = questions.to_csv(questions.rows(answers, artifacts), config.site_url or "")
        _build["generated"][questions.INDEX_CSV] = index_csv
        files.append(File.generated(config, questions.INDEX_CSV, content=index_csv))
        files.append(File.generated(config, REFERENCES_BIB, content="\n\n".join(
            r.bibtex() for r in citations.REFERENCES) + "\n"))
    return files


TABLE_BLOCK = re.compile(r"\{\{\s*table_block\s+(\w+)")


def anchor_cited_tables(markdown: str) -> str:
    """An anchor (an empty div with the table's id) right above each table placeholder line that a
    `table_block` on the page cites, so a citation's URL opens at the table itself."""
    cited = set(TABLE_BLOCK.findall(markdown))
    out = []
    for line in markdown.split("\n"):
        m = re.fullmatch(r"(\s*)\{\{\s*(\w+)\s*\}\}\s*", line)
        if m and m.group(2) in cited:
            out += [f'{m.group(1)}<div class="table-anchor" id="{table_anchor(m.group(2))}"></div>', ""]
        out.append(line)
    return "\n".join(out)


def is_notebook(page) -> bool:
    return page.file.src_uri.endswith(NOTEBOOK_SUFFIXES)


def on_page_markdown(markdown, page, config, files):
    if is_notebook(page):
        return markdown  # Python source, which mkdocs-jupyter renders itself: see the docstring
    markdown = substitute(_store, anchor_cited_tables(markdown), page)
    note = answered_here(page)
    if note:
        markdown = insert_after_title(markdown, note)
    with plugin_errors(f"{page.file.src_uri}: "):
        return markdown if official(_store) else insert_after_title(markdown, unofficial_warning(_store))


def on_page_content(html, page, config, files):
    """Notebook pages: the unofficial-data notice, rendered as on the other pages, after the h1."""
    with plugin_errors(f"{page.file.src_uri}: "):
        if not is_notebook(page) or official(_store):
            return html
        notice = md.markdown(unofficial_warning(_store), extensions=config.markdown_extensions,
                             extension_configs=config.mdx_configs)
    end = H1_END.search(html)
    return f"{html[:end.end()]}\n{notice}\n{html[end.end():]}" if end else f"{notice}\n{html}"
