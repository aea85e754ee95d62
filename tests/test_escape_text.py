"""The escaping functions show exactly the characters they are given: any text, through the hook's
text() (Python-Markdown, as MkDocs renders pages) or the answer pages' escape(), comes out of the
Markdown renderer as the same visible text and no element. Property tests over arbitrary text."""
import html
import re
import sys
from pathlib import Path

import markdown
import mistune
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hooks"))
import artifacts as hook  # noqa: E402

from pipeline.answers.render import escape  # noqa: E402

# printable text without the maths and code delimiters escape() leaves alone on purpose
TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126, blacklist_characters="$`"), max_size=40)
MD = markdown.Markdown(extensions=["tables", "attr_list", "md_in_html", "pymdownx.arithmatex"])


def visible(rendered: str) -> tuple[str, list[str]]:
    tags = re.findall(r"<(\w+)", rendered)
    return html.unescape(re.sub(r"<[^>]+>", "", rendered)), [t for t in tags if t != "p"]


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_hook_text_renders_as_itself(s):
    MD.reset()
    shown, tags = visible(MD.convert(f"x {hook.text(s)}"))
    assert tags == [] and shown.split() == f"x {s}".split()  # HTML collapses whitespace anyway


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_answer_escape_renders_as_itself(s):
    rendered = mistune.html(f"x {escape(s)}")  # nbconvert renders the notebooks' Markdown with mistune
    shown, tags = visible(rendered)
    assert tags == [] and shown.split() == f"x {s}".split()
