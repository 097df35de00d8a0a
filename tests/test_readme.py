"""The README's and the user guide's Python blocks run as written, and print what the pages show.

The documents are README.md and the user guide's pages (docs/guide/*.md: the long sections of
the README moved there; the site shows them but does not execute them).  Every ```python block of
a document runs, in the document's order, in one namespace per document (a block may use what an
earlier block of the same page defined, nothing else, so each page can be copied on its own), in a
scratch directory, with matplotlib drawing off screen.  A ```text block that follows a Python
block (with only prose between them) is what that block prints: it is compared with the printed
output line by line, trailing blanks stripped (R prints some, the editors drop them).  Printed
numbers must be far coarser than rounding differences between BLAS kernels (.ci/run runs this test
under two), so the pages print tables rounded, as R's print does.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.numerics  # the printed digits must not depend on the BLAS kernel either

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCUMENTS = [README, *sorted((ROOT / "docs" / "guide").glob("*.md"))]
_FENCE = re.compile(r"^```(?P<lang>[\w-]*)\n(?P<body>.*?)^```\s*$", re.M | re.S)


@dataclass(frozen=True)
class Example:
    """A Python block of a document, where it starts, and the printed output shown after it."""

    line: int
    code: str
    expected: str | None
    document: str = "README.md"


def readme_examples(text: str, document: str = "README.md") -> list[Example]:
    """The Python blocks of ``text`` with the ``text`` block (if any) that follows each one."""
    fences = [(m.group("lang"), m.group("body"), text.count("\n", 0, m.start()) + 1) for m in _FENCE.finditer(text)]
    examples = []
    for i, (lang, body, line) in enumerate(fences):
        if lang != "python":
            continue
        following = fences[i + 1] if i + 1 < len(fences) else None
        expected = following[1] if following is not None and following[0] == "text" else None
        examples.append(Example(line, body, expected, document))
    return examples


def _stripped(text: str) -> list[str]:
    return [line.rstrip() for line in text.rstrip("\n").splitlines()]


EXAMPLES = [
    example
    for path in DOCUMENTS
    for example in readme_examples(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix())
]


@pytest.fixture(scope="module")
def namespaces(tmp_path_factory):
    """One namespace per document, run in a scratch directory with a non-interactive plot backend."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.mktemp("readme"))
        yield {}


def test_the_pages_have_python_blocks_with_shown_output():
    """The README keeps its quick start; the outputs moved to the guide are still shown and checked."""
    readme = [example for example in EXAMPLES if example.document == "README.md"]
    assert readme and readme[0].expected is not None and "lmerMod" in readme[0].expected
    shown = {example.document for example in EXAMPLES if example.expected is not None}
    assert {
        "docs/guide/formulas.md",
        "docs/guide/glmm.md",
        "docs/guide/structures.md",
        "docs/guide/inference.md",
        "docs/guide/pooling.md",
        "docs/guide/planning.md",
    } <= shown
    assert sum(example.expected is not None for example in EXAMPLES) >= 11


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"{e.document} line {e.line}" for e in EXAMPLES])
def test_readme_block_runs_and_prints_what_the_readme_shows(example: Example, namespaces: dict) -> None:
    import matplotlib.pyplot as plt

    namespace = namespaces.setdefault(example.document, {"__name__": "__readme__"})
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # warnings go to stderr in a terminal; they are not output
        exec(compile(example.code, f"{example.document}, block at line {example.line}", "exec"), namespace)
    plt.close("all")
    if example.expected is not None:
        assert _stripped(printed.getvalue()) == _stripped(example.expected)


def test_a_broken_block_fails() -> None:
    broken = Example(1, "m_undefined.summary()\n", None)
    with pytest.raises(NameError):
        test_readme_block_runs_and_prints_what_the_readme_shows(broken, {})
    wrong = Example(1, "print(1 + 1)\n", "3\n")
    with pytest.raises(AssertionError):
        test_readme_block_runs_and_prints_what_the_readme_shows(wrong, {})


def test_each_page_has_its_own_namespace() -> None:
    """A guide page cannot lean on a name that only the README (or another page) defines."""
    namespaces: dict = {}
    test_readme_block_runs_and_prints_what_the_readme_shows(Example(1, "shared = 1\n", None, "a.md"), namespaces)
    with pytest.raises(NameError):
        test_readme_block_runs_and_prints_what_the_readme_shows(Example(2, "shared\n", None, "b.md"), namespaces)
