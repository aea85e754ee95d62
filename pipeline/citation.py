"""How the report is cited: its URL, BibTeX entries for it and for each of its tables, and the
works it draws on.

- The URL is ONE setting: `url` in CITATION.cff. mkdocs.yml does not repeat it: the site hook
  sets `site_url` from it at build time (tests/test_cite_deploy.py checks mkdocs.yml leaves it out). While it is the
  placeholder (`example.github.io`), the build says so in one line and `invoke deploy` refuses.
- Entries come in two kinds: `@misc` with `howpublished = \\url{...}` for classic BibTeX (which
  knows no `@software`), and `@software` for biblatex. Every field is quote-delimited and one line,
  so an entry is valid whatever a title holds, and the page never shows a `{{` (the hook's
  placeholder mark).
- REFERENCES are the published works the pages cite (docs/references.md shows them; each page
  links the anchor `references.md#KEY` where it uses one).

Pure functions of strings and dicts; the hook and tasks.py do the reading.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from pipeline.tables import latex_text

REPO = Path(__file__).resolve().parents[1]
PLACEHOLDER_HOSTS = ("example.github.io", "example.com", "example.org")  # a URL that is nobody's site


def cff(project: Path = REPO) -> dict:
    """CITATION.cff, parsed."""
    import yaml
    return yaml.safe_load((project / "CITATION.cff").read_text())


def site_url(project: Path = REPO) -> str:
    """The report's URL: CITATION.cff's `url` (the site's `site_url`, set from it by the hook)."""
    return str(cff(project).get("url") or "")


def is_placeholder(url: str) -> bool:
    host = (urlparse(url).hostname or "").lower()
    return not host or host in PLACEHOLDER_HOSTS


def placeholder_warning(url: str) -> str:
    """One line: the citations on this build point at a placeholder URL."""
    return (f"warning: the site URL is still the placeholder {url or '(empty)'}; set `url` in CITATION.cff "
            "to the real address before `invoke deploy` (citations point at it).")


def one_line(value) -> str:
    """A value for a BibTeX field or a code block: one line, no backtick (it could close a fence), a
    double quote braced (it would end a quote-delimited field)."""
    return re.sub(r"\s+", " ", str(value)).replace("`", "'").replace('"', '{"}').strip()


def bibtex(kind: str, key: str, fields: dict[str, str]) -> str:
    """One BibTeX entry, fields in the given order, each `name = "value",` on its own line. Values
    are BibTeX already (LaTeX escaped, acronyms braced where a style could lower-case them)."""
    width = max(map(len, fields))
    body = [f'  {name.ljust(width)} = "{one_line(v)}",' for name, v in fields.items() if v not in (None, "")]
    return "\n".join([f"@{kind}{{{key},", *body, "}"])


def authors_bibtex(authors: list[tuple[str, bool]]) -> str:
    """`A and B`; an entity ("The X contributors") braced, so BibTeX does not read its last word as a
    surname."""
    return " and ".join(f"{{{latex_text(n)}}}" if entity else latex_text(n) for n, entity in authors)


def commits_note(commits: list[tuple[str, bool]]) -> str:
    """`8c700b42fcfd, a368705d4c3e (with uncommitted changes)`: the commits that wrote the numbers."""
    return ", ".join(c[:12] + (" (with uncommitted changes)" if dirty else "") for c, dirty in commits)


def key_of(*parts: str) -> str:
    return "-".join(p for p in (re.sub(r"[^a-z0-9]+", "", str(x).lower()) for x in parts) if p)


def report_entries(info: dict, commits: list[tuple[str, bool]]) -> tuple[str, str, str]:
    """(@misc, @software, plain text) for the whole report. info: title, authors [(name, entity)],
    url, commit (the site's build commit), year (CITATION.cff + git, see hooks/artifacts.py)."""
    note = (f"Site built from commit {commits_note([(info['commit'], info.get('dirty', False))])}; "
            f"numbers from commit(s) {commits_note(commits)}")
    key = key_of(info["key"], info["year"])
    common = {"author": authors_bibtex(info["authors"]), "title": latex_text(info["title"]),
              "year": str(info["year"])}
    misc = bibtex("misc", key, {**common, "howpublished": rf"\url{{{info['url']}}}", "note": latex_text(note)})
    software = bibtex("software", key, {**common, "version": info["commit"], "url": info["url"],
                                        "note": latex_text(note)})
    plain = (f"{', '.join(n for n, _ in info['authors'])} ({info['year']}). {info['title']} "
             f"(version {info['commit']}). {info['url']}. {note}.")
    return misc, software, plain


def table_entries(info: dict, caption: str, url: str, sources: list[str], commits: list[tuple[str, bool]],
                  key: str, year: str) -> tuple[str, str]:
    """(@misc, plain text) for one table of the report, at `url` (its anchor)."""
    note = f"Data: {'; '.join(sources)}; written at commit(s) {commits_note(commits)}"
    misc = bibtex("misc", key, {
        "author": authors_bibtex(info["authors"]), "title": latex_text(f"{caption}. Table in: {info['title']}"),
        "year": year, "howpublished": rf"\url{{{url}}}", "note": latex_text(note)})
    plain = (f"{', '.join(n for n, _ in info['authors'])} ({year}). \"{caption}\", table in {info['title']}. "
             f"{url}. {note}.")
    return misc, plain


# ------------------------------------------------------------------------------------------ references

def arxiv(eprint: str, misc: bool = False) -> dict:
    """The arXiv fields of a reference, all from its identifier (a @misc also gets howpublished,
    which classic BibTeX styles print)."""
    url = f"https://arxiv.org/abs/{eprint}"
    return {"eprint": eprint, "archiveprefix": "arXiv", **({"howpublished": rf"\url{{{url}}}"} if misc else {}),
            "url": url}


@dataclass(frozen=True)
class Reference:
    """A published work the pages cite: its BibTeX type and fields (only fields checked against
    the publication), a one-line plain citation, and where the report uses it."""
    key: str
    kind: str
    fields: dict
    plain: str
    used: str

    def bibtex(self) -> str:
        return bibtex(self.kind, self.key, self.fields)


REFERENCES = (
    Reference("krizhevsky2009cifar", "techreport", {
        "author": "Alex Krizhevsky", "title": "Learning Multiple Layers of Features from Tiny Images",
        "institution": "University of Toronto", "year": "2009",
        "url": "https://www.cs.toronto.edu/~kriz/learning-features-2009-TR.pdf"},
        "Alex Krizhevsky (2009). Learning Multiple Layers of Features from Tiny Images. Technical report, "
        "University of Toronto.",
        "the CIFAR-10 data set (lenet/data.md)"),
    Reference("lecun1998lenet", "article", {
        "author": "Yann LeCun and L{\\'e}on Bottou and Yoshua Bengio and Patrick Haffner",
        "title": "Gradient-Based Learning Applied to Document Recognition", "journal": "Proceedings of the {IEEE}",
        "volume": "86", "number": "11", "pages": "2278--2324", "year": "1998", "doi": "10.1109/5.726791",
        "url": "https://doi.org/10.1109/5.726791"},
        "Yann LeCun, Léon Bottou, Yoshua Bengio, Patrick Haffner (1998). Gradient-based learning applied to "
        "document recognition. Proceedings of the IEEE 86(11), 2278–2324.",
        "the LeNet model (lenet/model.md)"),
    Reference("ioffe2015batchnorm", "inproceedings", {
        "author": "Sergey Ioffe and Christian Szegedy",
        "title": "Batch Normalization: Accelerating Deep Network Training by Reducing Internal Covariate Shift",
        "booktitle": "Proceedings of the 32nd International Conference on Machine Learning ({ICML})",
        "series": "Proceedings of Machine Learning Research", "volume": "37", "pages": "448--456", "year": "2015",
        "url": "https://proceedings.mlr.press/v37/ioffe15.html"},
        "Sergey Ioffe, Christian Szegedy (2015). Batch normalization: accelerating deep network training by "
        "reducing internal covariate shift. ICML 2015, PMLR 37, 448–456.",
        "batch normalisation in model 1 and in the own CNN (lenet/model.md, cs182/own_cnn.md)"),
    Reference("srivastava2014dropout", "article", {
        "author": "Nitish Srivastava and Geoffrey Hinton and Alex Krizhevsky and Ilya Sutskever and "
                  "Ruslan Salakhutdinov",
        "title": "Dropout: A Simple Way to Prevent Neural Networks from Overfitting",
        "journal": "Journal of Machine Learning Research", "volume": "15", "pages": "1929--1958", "year": "2014",
        "url": "https://jmlr.org/papers/v15/srivastava14a.html"},
        "Nitish Srivastava, Geoffrey Hinton, Alex Krizhevsky, Ilya Sutskever, Ruslan Salakhutdinov (2014). "
        "Dropout: a simple way to prevent neural networks from overfitting. JMLR 15, 1929–1958.",
        "dropout in model 1 and the dropout experiment (lenet/model.md, cs182/dropout.md)"),
    Reference("kingma2015adam", "inproceedings", {
        "author": "Diederik P. Kingma and Jimmy Ba", "title": "{Adam}: A Method for Stochastic Optimization",
        "booktitle": "3rd International Conference on Learning Representations ({ICLR})", "year": "2015",
        **arxiv("1412.6980")},
        "Diederik P. Kingma, Jimmy Ba (2015). Adam: a method for stochastic optimization. ICLR 2015. "
        "arXiv:1412.6980.",
        "the optimiser of the LeNet runs (lenet/training.md)"),
    Reference("szegedy2016rethinking", "inproceedings", {
        "author": "Christian Szegedy and Vincent Vanhoucke and Sergey Ioffe and Jonathon Shlens and Zbigniew Wojna",
        "title": "Rethinking the Inception Architecture for Computer Vision",
        "booktitle": "Proceedings of the {IEEE} Conference on Computer Vision and Pattern Recognition ({CVPR})",
        "pages": "2818--2826", "year": "2016", **arxiv("1512.00567")},
        "Christian Szegedy, Vincent Vanhoucke, Sergey Ioffe, Jonathon Shlens, Zbigniew Wojna (2016). "
        "Rethinking the Inception architecture for computer vision. CVPR 2016, 2818–2826.",
        "label smoothing in the own CNN (cs182/own_cnn.md)"),
    Reference("smith2019superconvergence", "inproceedings", {
        "author": "Leslie N. Smith and Nicholay Topin",
        "title": "Super-Convergence: Very Fast Training of Neural Networks Using Large Learning Rates",
        "booktitle": "Artificial Intelligence and Machine Learning for Multi-Domain Operations Applications",
        "series": "Proceedings of {SPIE}", "volume": "11006", "year": "2019", **arxiv("1708.07120")},
        "Leslie N. Smith, Nicholay Topin (2019). Super-convergence: very fast training of neural networks using "
        "large learning rates. Proc. SPIE 11006. arXiv:1708.07120.",
        "the one-cycle learning-rate schedule of the own CNN (cs182/own_cnn.md)"),
    Reference("sutskever2013momentum", "inproceedings", {
        "author": "Ilya Sutskever and James Martens and George Dahl and Geoffrey Hinton",
        "title": "On the Importance of Initialization and Momentum in Deep Learning",
        "booktitle": "Proceedings of the 30th International Conference on Machine Learning ({ICML})",
        "series": "Proceedings of Machine Learning Research", "volume": "28", "number": "3",
        "pages": "1139--1147", "year": "2013", "url": "https://proceedings.mlr.press/v28/sutskever13.html"},
        "Ilya Sutskever, James Martens, George Dahl, Geoffrey Hinton (2013). On the importance of initialization "
        "and momentum in deep learning. ICML 2013, PMLR 28(3), 1139–1147.",
        "SGD with Nesterov momentum in the own CNN (cs182/own_cnn.md)"),
    Reference("hendrycks2016gelu", "misc", {
        "author": "Dan Hendrycks and Kevin Gimpel", "title": "Gaussian Error Linear Units ({GELUs})",
        "year": "2016", **arxiv("1606.08415", misc=True)},
        "Dan Hendrycks, Kevin Gimpel (2016). Gaussian error linear units (GELUs). arXiv:1606.08415.",
        "the GELU activations of the own CNN (cs182/own_cnn.md)"),
    Reference("jordan2024airbench", "misc", {
        "author": "Keller Jordan", "title": "94\\% on {CIFAR-10} in 3.29 Seconds on a Single {GPU}",
        "year": "2024", **arxiv("2404.00498", misc=True)},
        "Keller Jordan (2024). 94% on CIFAR-10 in 3.29 seconds on a single GPU (airbench). arXiv:2404.00498.",
        "the own CNN's design: the frozen patch-whitening layer, batch norm that learns only its shift, "
        "Dirac initialisation, the scaled logits, the lookahead schedule, test-time augmentation "
        "(cs182/own_cnn.md)"),
    Reference("zhang2019lookahead", "inproceedings", {
        "author": "Michael Zhang and James Lucas and Jimmy Ba and Geoffrey E. Hinton",
        "title": "Lookahead Optimizer: $k$ Steps Forward, 1 Step Back",
        "booktitle": "Advances in Neural Information Processing Systems 32 ({NeurIPS} 2019)", "year": "2019",
        "url": "https://proceedings.neurips.cc/paper/2019/hash/90fd4f88f588ae64038134f1eeaa023f-Abstract.html"},
        "Michael Zhang, James Lucas, Jimmy Ba, Geoffrey E. Hinton (2019). Lookahead optimizer: k steps forward, "
        "1 step back. NeurIPS 2019 (Advances in Neural Information Processing Systems 32).",
        "lookahead in the own CNN (cs182/own_cnn.md)"),
)
