"""Every question and sub-part of the three homeworks, where the site answers it, and its final
answer, read from the artifacts.

This is the table of contents of the report: the homework pages open with their rows, the
question index (docs/questions.md) lists them all, and tests/test_questions.py checks it against
the questions it finds in the homework texts themselves (../shared/seeds/), so a sub-part the
site forgets fails the build's tests. A question's label is printed as its homework prints it:
"3(e)", "2(d) i"; CSCE-421 numbers its parts "Part 1", "Part 2" under each question, written here
as "3.2" (question 3, part 2); question 1's two parts are 1.1 and 1.2, as its walkthrough
numbers them. The anchor on the page is "q" + the label with parentheses dropped
and dots and spaces turned into "-": 3(e) -> q3e, 2(d) i -> q2d-i, 3.2 -> q3-2.

Final answers are short: the number, shape or formula a reader checks their own answer against,
as Markdown (with $...$ maths) for the site and as plain text for the CSV download. Every value
comes from answers.json or another artifact, through the store; nothing here is a result.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from pipeline.names import display

# homework id -> (name, title, source text in ../shared/seeds/, site page of its answers)
HOMEWORKS = {
    "csce421": ("CSCE-421 HW3", "Convolutional Networks", "000_a60cf687703bbf88.txt", "answers/csce421.py"),
    "coms573": ("COM S 573 HW5", "Machine Learning, homework 5", "002_a4ecf2d2404f0d81.txt", "answers/coms573.py"),
    "cs182": ("CS182 HW3", "Convolutional networks", "004_e055e1080bc6fdde.txt", "answers/cs182.py"),
}
INDEX_CSV = "questions.csv"  # written into the site next to the question index
CSV_COLUMNS = ("homework", "label", "topic", "final_answer", "url")


@dataclass(frozen=True)
class Question:
    homework: str           # a key of HOMEWORKS
    label: str              # as the homework prints it ("3(e)", "2(d) i", CSCE-421 "3.2")
    topic: str
    keys: tuple = ()        # answers.json entries that hold the answer, in reading order
    page: str | None = None  # the docs page that works it out, when it is not the homework's

    @property
    def anchor(self) -> str:
        return anchor(self.label)

    @property
    def home(self) -> str:
        """The docs path of the homework page this question's row and heading are on."""
        return HOMEWORKS[self.homework][3]


def anchor(label: str) -> str:
    """'3(e)' -> 'q3e', '2(d) i' -> 'q2d-i', '3.2' -> 'q3-2'."""
    return "q" + re.sub(r"[.\s]+", "-", label.replace("(", "").replace(")", "").strip().lower())


Q = Question
QUESTIONS = (
    # CSCE-421 HW3
    Q("csce421", "1.1", "Output volume of a convolutional layer", ("csce421.q1.output_shape",)),
    Q("csce421", "1.2", "Parameters of the layer", ("csce421.q1.params",)),
    Q("csce421", "2.1", "The projection shortcut of a residual block", ("csce421.q2.shortcut",)),
    Q("csce421", "2.2", "Trainable parameters of the residual block", ("csce421.q2.params", "csce421.q2.params_by_layer")),
    Q("csce421", "3.1", "Batch norm: the normalised batch", ("csce421.q3.mu", "csce421.q3.var", "csce421.q3.z_hat")),
    Q("csce421", "3.2", "Batch norm: scale and shift", ("csce421.q3.z_tilde",)),
    Q("csce421", "3.3", "Batch norm in training and in testing", ("csce421.q3.train_vs_test",)),
    Q("csce421", "3.4", "The batch size at test time", ("csce421.q3.test_batch_size",)),
    Q("csce421", "4.1", "`load_data`: reading CIFAR-10", page="lenet/data.md"),
    Q("csce421", "4.2", "`preprocess`: rescaling and normalisation", page="lenet/preprocess.md"),
    Q("csce421", "4.3", "The `LeNet` class", page="lenet/model.md"),
    Q("csce421", "4.4", "Training the two models and comparing them", page="lenet/results.md"),
    # COM S 573 HW5
    Q("coms573", "1(a)", "Parameters of a two-convolution block", ("coms573.q1.params", "coms573.q1.params_by_layer")),
    Q("coms573", "1(b)", "Multiply-adds of the block", ("coms573.q1.output_shapes", "coms573.q1.mult_adds", "coms573.q1.mult_adds_by_layer")),
    Q("coms573", "1(c)", "Memory of the input and output features", ("coms573.q1.memory_change_percent",)),
    Q("coms573", "2(a)", "Batch norm: the normalised batch", ("coms573.q2.mu", "coms573.q2.var", "coms573.q2.z_hat")),
    Q("coms573", "2(b)", "Batch norm: scale and shift", ("coms573.q2.z_tilde",)),
    Q("coms573", "2(c)", "Batch norm in training and in testing", ("coms573.q2.train_vs_test",)),
    Q("coms573", "2(d)", "The batch size at test time", ("coms573.q2.test_batch_size",)),
    Q("coms573", "3(a)", "A 1-D convolution as a matrix", ("coms573.q3.A",)),
    Q("coms573", "3(b)", "Its backward pass as a matrix", ("coms573.q3.B", "coms573.q3.relation")),
    Q("coms573", "3(c)", "Is the backward pass a convolution?",
      ("coms573.q3.is_convolution", "coms573.q3.backward_kernels", "coms573.q3.backward_padding")),
    Q("coms573", "4(a)", "The LeNet class (no batch norm, no dropout)", ("coms573.q4.a.architecture",),
      page="lenet/model.md"),
    # CS182 HW3
    Q("cs182", "1(a)", "A 1-D Gaussian through batch norm", ("cs182.q1.a.distribution", "cs182.q1.a.mean", "cs182.q1.a.std")),
    Q("cs182", "1(b)", "A 2-D Gaussian through batch norm", ("cs182.q1.b.mean", "cs182.q1.b.cov")),
    Q("cs182", "2(a)", "Convolving the boxcar", ("cs182.q2.a.y",)),
    Q("cs182", "2(b)", "Shifting the input", ("cs182.q2.b.y2", "cs182.q2.b.property")),
    Q("cs182", "2(c)", "A 2-D convolution", ("cs182.q2.c.y",)),
    Q("cs182", "2(d) i", "Stride 1, padding 1", ("cs182.q2.d.stride1_pad1",)),
    Q("cs182", "2(d) ii", "Stride 2, padding 1", ("cs182.q2.d.stride2_pad1",)),
    Q("cs182", "3(a)", "Weights, biases and output shape of a convolutional layer",
      ("cs182.q3.a.weights", "cs182.q3.a.biases", "cs182.q3.a.output_shape")),
    Q("cs182", "3(b)", "Output shape of a max-pooling layer", ("cs182.q3.b.output_shape",)),
    Q("cs182", "3(c)", "Receptive field of L stacked convolutions", ("cs182.q3.c.receptive_field",)),
    Q("cs182", "3(d)", "Downsampling: receptive field and computation",
      ("cs182.q3.d.receptive_field", "cs182.q3.d.compute_ratio")),
    Q("cs182", "3(e)", "The parameter and activation table",
      ("cs182.q3.e.params", "cs182.q3.e.activations", "cs182.q3.e.expressions")),
    Q("cs182", "3(f)", "Circular padding and equivariance", ("cs182.q3.f.g3", "cs182.q3.f.g4", "cs182.q3.f.seam_caveat")),
    Q("cs182", "4(a)", "A hand-designed blurring filter", page="cs182/filters.md"),
    Q("cs182", "4(b)", "A hand-designed edge-detection filter", page="cs182/filters.md"),
    Q("cs182", "5(a)", "The computational graph of batch norm", page="cs182/layers.md"),
    Q("cs182", "5(b)", "The batch-norm backward pass in closed form", ("cs182.q5.b.dx",), page="cs182/layers.md"),
    Q("cs182", "5(c)", "The dropout experiment", page="cs182/dropout.md"),
    Q("cs182", "5(d)", "A network of our own design", page="cs182/own_cnn.md"),
    Q("cs182", "6(a)", "Sources used"),
    Q("cs182", "6(b)", "Collaborators"),
    Q("cs182", "6(c)", "Time spent"),
)


def of(homework: str) -> list[Question]:
    return [q for q in QUESTIONS if q.homework == homework]


# --- final answers ---------------------------------------------------------------------------------

def _num(v) -> str:
    """784 -> '784', 917504 -> '917,504', 13.0 -> '13', 0.25 -> '0.25'."""
    f = float(v)
    if f == int(f):
        return f"{int(f):,}"
    return f"{f:.4g}"


def _shape(v) -> tuple[str, str]:
    return r" \times ".join(_num(x) for x in v), " × ".join(_num(x) for x in v)


def _matrix(M) -> tuple[str, str]:
    rows = [" & ".join(_num(x) for x in r) for r in M]
    text = "[" + "; ".join(" ".join(_num(x) for x in r) for r in M) + "]"
    return r"\begin{bmatrix}" + r" \\ ".join(rows) + r"\end{bmatrix}", text


def _pct(f: float) -> str:
    return f"{100 * f:.2f}%"


def _same(t: str) -> tuple[str, str]:
    return t, t


def _formula(*entries) -> tuple[str, str]:
    """Formula answers (CS182 3(a)-(c)): TeX from each entry's `latex`, text from its value."""
    def times(parts, left, right):  # a shape's sums in brackets: (W - K)/S + 1 x ... reads wrongly
        return " × ".join(f"{left}{p}{right}" if "+" in p else p for p in parts)
    tex = "; ".join("$" + (times(e["latex"], r"\left(", r"\right)").replace(" × ", r" \times ")
                           if isinstance(e["latex"], list) else e["latex"]) + "$" for e in entries)
    text = "; ".join(times(e["value"], "(", ")") if isinstance(e["value"], list) else str(e["value"])
                     for e in entries)
    return tex, text


def _in_math(tex: str, text: str) -> tuple[str, str]:
    return f"${tex}$", text


def _written(q: Question, e: dict, art: dict) -> tuple[str, str]:
    """Dispatch on the question; `e` maps answers.json ids to entries."""
    v = {k: x["value"] for k, x in e.items()}
    hw, label = q.homework, q.label
    if (hw, label) == ("csce421", "1.1"):
        return _in_math(*_shape(v["csce421.q1.output_shape"]))
    if (hw, label) == ("csce421", "1.2"):
        return _same(_num(v["csce421.q1.params"]) + " parameters")
    if (hw, label) == ("csce421", "2.1"):
        s = v["csce421.q2.shortcut"]
        t = f"a 1×1 convolution with {s['out_channels']} filters and stride {s['stride']}"
        return t.replace("1×1", r"$1 \times 1$"), t
    if (hw, label) in (("csce421", "2.2"), ("coms573", "1(a)")):
        return _same(_num(v[q.keys[0]]) + " parameters")
    if label in ("3.1", "3.2") and hw == "csce421" or hw == "coms573" and label in ("2(a)", "2(b)"):
        return _in_math(*_matrix(v[q.keys[-1]]))
    if label == "3.3" or (hw, label) == ("coms573", "2(c)"):
        return _same("training normalises with the mini-batch's statistics; testing with the running "
                     "averages kept in training")
    if label == "3.4" or (hw, label) == ("coms573", "2(d)"):
        d = e[q.keys[0]]["demonstration"]["eval_max_abs_difference_vs_full_batch"]
        return _same(f"none in evaluation mode (largest change over batch sizes {', '.join(d)}: "
                     f"{_num(max(d.values()))})")
    if (hw, label) == ("coms573", "1(b)"):
        return _same(_num(v["coms573.q1.mult_adds"]) + " multiply-adds")
    if (hw, label) == ("coms573", "1(c)"):
        return _same(f"{_num(v['coms573.q1.memory_change_percent'])}% (no change)"
                     if v["coms573.q1.memory_change_percent"] == 0 else f"{_num(v['coms573.q1.memory_change_percent'])}%")
    if hw == "coms573" and label in ("3(a)", "3(b)"):
        M = v[q.keys[0]]
        t = f"the {len(M)} × {len(M[0])} matrix in the working"
        md = t.replace(f"{len(M)} × {len(M[0])}", rf"${len(M)} \times {len(M[0])}$")
        return (md + r"; $B = A^{\top}$", t + "; B = A^T") if label == "3(b)" else (md, t)
    if (hw, label) == ("coms573", "3(c)"):
        yes = "yes" if v["coms573.q3.is_convolution"] else "no"
        return _same(f"{yes}: each kernel reversed, input and output channels swapped, "
                     f"padding {v['coms573.q3.backward_padding']}")
    if (hw, label) == ("coms573", "4(a)"):
        acc = float(art["summary"]["lenet_plain"]["test_accuracy"])
        params = int(art["summary"]["lenet_plain"]["params"])
        return _same(f"{params:,} parameters; {display('lenet_plain')} reaches {_pct(acc)} test accuracy")
    if (hw, label) == ("cs182", "1(a)"):
        m, sd = _num(v["cs182.q1.a.mean"]), _num(v["cs182.q1.a.std"])
        return rf"$\mathcal{{N}}({m}, {sd}^2)$", f"N({m}, {sd}²)"
    if (hw, label) == ("cs182", "1(b)"):
        tex, text = _matrix(v["cs182.q1.b.cov"])
        return f"mean $(0, 0)$, covariance ${tex}$", f"mean (0, 0), covariance {text}"
    if hw == "cs182" and label in ("2(a)", "2(b)"):
        y = v[q.keys[0]]
        first = next(i for i, x in enumerate(y) if x)
        return _same(f"{', '.join(_num(x) for x in y if x)} (first nonzero at index {first} of the plot)")
    if hw == "cs182" and label in ("2(c)", "2(d) i", "2(d) ii"):
        return _in_math(*_matrix(v[q.keys[0]]))
    if hw == "cs182" and label in ("3(a)", "3(b)", "3(c)"):
        return _formula(*(e[k] for k in q.keys))
    if (hw, label) == ("cs182", "3(d)"):
        rf, cr = v["cs182.q3.d.receptive_field"], v["cs182.q3.d.compute_ratio"]
        return _same(f"receptive field +{_num(rf['pool_adds'])}, and every later layer's growth ×{_num(rf['growth_factor_of_later_layers'])}; "
                     f"later compute ×{_num(cr['same_channels'])} (×{_num(cr['doubled_channels'])} with channels doubled)")
    if (hw, label) == ("cs182", "3(e)"):
        return _same("parameters " + ", ".join(_num(x) for x in v["cs182.q3.e.params"]))
    if (hw, label) == ("cs182", "3(f)"):
        g3, g4 = v["cs182.q3.f.g3"], v["cs182.q3.f.g4"]
        return rf"$g_3 = g_{g3[-1]}$, $g_4 = g_{g4[-1]}$", f"g3 = {g3}, g4 = {g4}"
    if (hw, label) == ("cs182", "5(b)"):  # the formula without its definition of x-hat, for width
        tex = e["cs182.q5.b.dx"]["latex"].split(r",\quad")[0]
        return f"${tex}$", str(v["cs182.q5.b.dx"])
    raise KeyError(f"no final-answer rule for {q.homework} {q.label}")


def written(q: Question, answers: dict, artifacts: dict) -> tuple[str, str]:
    """(Markdown, text) of a written question's final answer, from its answers.json entries."""
    missing = [k for k in q.keys if k not in answers]
    if missing:
        raise KeyError(f"{', '.join(missing)} not in answers.json; rerun `invoke answers`.")
    return _written(q, {k: answers[k] for k in q.keys}, artifacts)


def coding(q: Question, artifacts: dict) -> tuple[str, str]:
    """Final answers of the coding questions and of CS182 question 6, from the run artifacts."""
    s, key = artifacts["summary"], (q.homework, q.label)
    if key == ("csce421", "4.1"):
        c = artifacts["dataset"]["counts"]
        t = (f"{c['train'] + c['val']:,} training and {c['test']:,} test images, 3 × 32 × 32, uint8")
        return t.replace("3 × 32 × 32", r"$3 \times 32 \times 32$"), t
    if key == ("csce421", "4.2"):
        t = "rescale: x / 255; normalize: (x − mean) / std of each image"
        return r"rescale: $x/255$; normalize: $(x - \mu)/\sigma$ of each image", t
    if key == ("csce421", "4.3"):
        t = f"{int(s['lenet_bn_dropout']['params']):,} parameters ({display('lenet_bn_dropout')})"
        return t, t
    if key == ("csce421", "4.4"):
        a, b = (float(s[v]["test_accuracy"]) for v in ("lenet_bn_dropout", "lenet_plain"))
        t = f"{_pct(a)} vs {_pct(b)} test accuracy (Model 1 vs Model 2, seed 0)"
        return t, t
    if q.homework == "cs182" and q.label in ("4(a)", "4(b)"):
        k = artifacts["filters"]["kernels"]["blur" if q.label == "4(a)" else "sobel_x"]
        tex, text = _matrix(k)
        return f"${tex}$", text
    if key == ("cs182", "5(a)"):
        return "the graph in Figure 1 of the NumPy layers page", "a graph (figure on the NumPy layers page)"
    if key == ("cs182", "5(c)"):
        return _same(artifacts["dropout_finding"])
    if key == ("cs182", "5(d)"):
        t = f"{_pct(float(artifacts['own_cnn']['test_accuracy']))} test accuracy"
        return t, t
    if key == ("cs182", "6(a)"):
        t = ("the three homework texts, the PyTorch and NumPy documentation, and the papers on "
             "CIFAR-10, LeNet, batch norm, dropout and Adam")
        return t, t
    if key == ("cs182", "6(b)"):
        t = "none: the report is generated by this project's code"
        return t, t
    if key == ("cs182", "6(c)"):
        h = artifacts["compute_seconds"] / 3600
        t = f"{h:.1f} hours of recorded CPU training time"
        return t, t
    return "", ""


def final_answer(q: Question, answers: dict, artifacts: dict) -> tuple[str, str]:
    """(Markdown, text). The Markdown mixes this module's words and maths with values from the
    artifacts, so it is escaped as a whole (render.escape: $...$ maths and code spans stay, any
    other markup a value could carry shows as text)."""
    from pipeline.answers.render import escape
    md, text = written(q, answers, artifacts) if q.keys else coding(q, artifacts)
    return escape(md), text


# --- tables ----------------------------------------------------------------------------------------

def rows(answers: dict, artifacts: dict, homework: str | None = None) -> list[dict]:
    """One dict per question: homework, label, topic, answer (Markdown), final_answer (text),
    path (docs page), anchor."""
    out = []
    for q in QUESTIONS if homework is None else of(homework):
        md, text = final_answer(q, answers, artifacts)
        out.append({"homework": HOMEWORKS[q.homework][0], "label": q.label, "topic": q.topic,
                    "answer": md, "final_answer": text, "path": q.home, "anchor": q.anchor,
                    "page": q.page})
    return out


def to_csv(rows_: list[dict], site_url: str = "") -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in rows_:
        url = site_url.rstrip("/") + "/" + r["path"].removesuffix(".py") + "/#" + r["anchor"]
        w.writerow([r["homework"], r["label"], re.sub(r"`", "", r["topic"]), r["final_answer"], url])
    return buf.getvalue()


def cell(text: str) -> str:
    """A Markdown table cell: pipes escaped (maths keeps its backslashes)."""
    return re.sub(r"(?<!\\)\|", r"\\|", text)  # a pipe escape() left alone (in maths) too


PAGE_TITLES = {"lenet/data.md": "Data", "lenet/preprocess.md": "Preprocessing", "lenet/model.md": "Model",
               "lenet/results.md": "Results", "cs182/filters.md": "Hand-designed filters",
               "cs182/layers.md": "NumPy layers", "cs182/dropout.md": "Dropout experiment",
               "cs182/own_cnn.md": "Our own CNN"}


def page_title(path: str) -> str:
    return PAGE_TITLES.get(path, path)


def table_md(rows_: list[dict], homework_column: bool = True, in_page: bool = False) -> str:
    """The question table. From the question index (a Markdown page at the docs root, whose links
    MkDocs resolves) each label links to its homework page's anchor; on a homework page (a notebook,
    whose links nobody rewrites) `in_page` links to the anchor on the same page and to the other
    page by its URL. A question worked out on another page names it in the topic column."""
    head = (["homework"] if homework_column else []) + ["question", "topic", "final answer"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows_:
        link = f"#{r['anchor']}" if in_page else f"{r['path']}#{r['anchor']}"
        topic = r["topic"]
        if r["page"]:
            target = f"../../{r['page'].removesuffix('.md')}/" if in_page else r["page"]
            topic += f" (worked on [{page_title(r['page'])}]({target}))"
        cells = ([r["homework"].replace(" ", "\u00a0")] if homework_column else []) + [
            f"[{r['label'].replace(' ', chr(0xa0))}]({link})", topic, cell(r["answer"])]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def compute_seconds(tables: list[list[dict]], own: dict | None) -> float:
    """Recorded training seconds of every published run: the reference and seed runs, the
    ablation and dropout sweeps, and the own CNN's final runs and search trials."""
    total = sum(float(r.get("train_seconds") or 0) for t in tables for r in t)
    if own:
        total += float(own.get("train_seconds") or 0)
    return total


def gather(store) -> tuple[dict, dict]:
    """(answers.json, the other artifacts the final answers cite), read through `store` (a
    pipeline.store.Store), so a missing or changed file fails with the command that rewrites it."""
    answers = store.read_json("answers.json")
    own = store.read_json("own_cnn/metrics.json")
    runs = [store.read_csv(p) for p in ("lenet/summary.csv", "lenet/seed_runs.csv", "ablation/runs.csv",
                                         "cs182/dropout/runs.csv")]
    own_runs = [{"train_seconds": h.get("train_seconds")} for h in own.get("history", [])]
    conclusion = store.read_json("cs182/dropout/summary.json")["conclusion"]
    artifacts = {
        "summary": {r["variant"]: r for r in runs[0]},
        "dataset": store.read_json("data/dataset.json"),
        "filters": store.read_json("cs182/filters.json"),
        "dropout_finding": conclusion[1] if len(conclusion) > 1 else conclusion[0],
        "own_cnn": own["final"],
        "compute_seconds": compute_seconds(runs + [own_runs], own["final"]),
    }
    return answers, artifacts
