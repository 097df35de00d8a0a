"""The README's Python blocks run as written, and print what the README shows.

Every ```python block runs, in the README's order, in one namespace (a block may use what an
earlier block defined, nothing else), in a scratch directory, with matplotlib drawing off
screen.  A ```text block that follows a Python block (with only prose between them) is what
that block prints: it is compared with the printed output line by line, trailing blanks
stripped (R prints some, the README's editors drop them).  Printed numbers must be far coarser
than rounding differences between BLAS kernels (.ci/run runs this test under two), so the README
prints tables rounded, as R's print does.
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

README = Path(__file__).resolve().parents[1] / "README.md"
_FENCE = re.compile(r"^```(?P<lang>[\w-]*)\n(?P<body>.*?)^```\s*$", re.M | re.S)


@dataclass(frozen=True)
class Example:
    """A Python block of the README, where it starts, and the printed output shown after it."""

    line: int
    code: str
    expected: str | None


def readme_examples(text: str) -> list[Example]:
    """The Python blocks of ``text`` with the ``text`` block (if any) that follows each one."""
    fences = [(m.group("lang"), m.group("body"), text.count("\n", 0, m.start()) + 1) for m in _FENCE.finditer(text)]
    examples = []
    for i, (lang, body, line) in enumerate(fences):
        if lang != "python":
            continue
        following = fences[i + 1] if i + 1 < len(fences) else None
        expected = following[1] if following is not None and following[0] == "text" else None
        examples.append(Example(line, body, expected))
    return examples


def _stripped(text: str) -> list[str]:
    return [line.rstrip() for line in text.rstrip("\n").splitlines()]


EXAMPLES = readme_examples(README.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def namespace(tmp_path_factory):
    """One namespace for all blocks, run in a scratch directory with a non-interactive plot backend."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.mktemp("readme"))
        yield {"__name__": "__readme__"}


def test_the_readme_has_python_blocks_with_shown_output():
    assert len(EXAMPLES) >= 5
    assert sum(example.expected is not None for example in EXAMPLES) >= 4


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"line {e.line}" for e in EXAMPLES])
def test_readme_block_runs_and_prints_what_the_readme_shows(example: Example, namespace: dict) -> None:
    import matplotlib.pyplot as plt

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # warnings go to stderr in a terminal; they are not output
        exec(compile(example.code, f"README.md, block at line {example.line}", "exec"), namespace)
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
