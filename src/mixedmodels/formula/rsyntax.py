"""R's spellings inside model formulas, turned into the code formulaic reads.

Data exported from R are full of names with dots (``Sepal.Length``, ``log.dose``), and R users
write ``poly(x, 2, raw = TRUE)``, ``as.numeric(f)`` or ``ns(x, Boundary.knots = c(0, 10))``.
Python reads ``Sepal.Length`` as an attribute, ``as`` as a keyword and ``TRUE`` as an unknown
name, so :func:`to_formulaic` rewrites the text, token by token, before formulaic sees it:

* a name with dots becomes a backticked name (`` `Sepal.Length` ``), which formulaic looks up
  as a column.  Left as Python: names under a namespace (``np.log``, ``contr.sum``,
  ``math.pi``) and dotted calls that Python can read (a method such as ``x.clip(0)``);
* a function name that Python cannot read (``as.numeric(f)``: ``as`` is a keyword) and a
  keyword argument with dots (``Boundary.knots = ...``) are spelled with underscores
  (``as_numeric``, ``Boundary_knots``), as the formula functions are named;
* ``TRUE``, ``FALSE`` and ``NULL`` become ``True``, ``False`` and ``None``;
* ``Q("my days")`` (patsy's quoting) becomes `` `my days` ``, the column of that name.

Quoted strings and backticked names are never changed.  :func:`expand_dot` replaces R's ``.``
("all other columns") by the columns it stands for, and :func:`quote_name` writes a column name
so that it reads back as that name (R's rule: backticks unless the name is syntactic).
:func:`with_bar_parentheses` gives lme4's ``re.form = ~ 1 | g`` its parentheses.
"""

from __future__ import annotations

import functools
import keyword
import re
from collections.abc import Sequence

from ..errors import FormulaError

__all__ = ["to_formulaic", "expand_dot", "quote_name", "is_plain_name", "has_dot", "with_bar_parentheses"]

# Names used as namespaces inside formula code; their attributes are Python, not R names.
NAMESPACES = frozenset({"np", "numpy", "pd", "pandas", "math", "contr", "scipy"})

_LITERALS = {"TRUE": "True", "FALSE": "False", "NULL": "None"}
_R_RESERVED = frozenset({"TRUE", "FALSE", "NULL", "NA", "Inf", "NaN", "T", "F"})

_STRING = r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'"""
_TOKEN = re.compile(
    rf"""
    (?P<q>(?<![\w.])Q\s*\(\s*(?P<qs>{_STRING})\s*\))   # Q("name")
    | (?P<string>{_STRING})                           # strings are never changed
    | (?P<tick>`[^`]*`)                               # nor backticked names
    | (?P<number>(?:\d|\.\d)(?:[\w.]|(?<=[eE])[+-])*)  # 1, 2.5, .5, 1e-3, 0x1F, 2j
    | (?<![)\]])(?P<name>(?:[^\W\d]|\.(?!\d))[\w.]*)  # names, R's dots included
    """,
    re.X | re.S,
)
_PLAIN = re.compile(r"(?:[^\W\d]|\.(?![\d]))[\w.]*")
_KEYWORD_ARG = re.compile(r"\s*=(?!=)")
_CALL = re.compile(r"\s*\(")


def to_formulaic(text: str) -> str:
    """``text`` with R's spellings rewritten for formulaic (see the module docstring).

    >>> to_formulaic("log(Sepal.Length) ~ poly(Petal.Width, 2, raw = TRUE) + as.numeric(Species)")
    'log(`Sepal.Length`) ~ poly(`Petal.Width`, 2, raw = True) + as_numeric(Species)'
    """
    return _TOKEN.sub(lambda m: _rewrite(m, text), text)


def _rewrite(match: re.Match, text: str) -> str:
    """The formulaic spelling of one token."""
    if match["q"] is not None:
        name = _string_value(match["qs"])
        quote_name(name, where=match["q"])  # refuses a backtick
        return name if name.isidentifier() and not keyword.iskeyword(name) and name not in _LITERALS else f"`{name}`"
    name = match["name"]
    if name is None:
        return match.group(0)
    if "." not in name or name == ".":
        return _LITERALS.get(name, name)
    after = text[match.end() :]
    if name.split(".", 1)[0] in NAMESPACES:
        return name
    if _CALL.match(after) and _python_readable(name):
        return name  # a method call such as x.clip(0)
    if _KEYWORD_ARG.match(after) or _CALL.match(after):
        return name.replace(".", "_")
    return f"`{name}`"


def _python_readable(name: str) -> bool:
    """Whether Python reads a dotted name as attribute access (``as.numeric`` it cannot)."""
    parts = name.split(".")
    return all(p.isidentifier() and not keyword.iskeyword(p) for p in parts)


def _string_value(literal: str) -> str:
    """The text of a quoted string literal (backslash escapes resolved)."""
    body = literal[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def is_plain_name(name: str) -> bool:
    """Whether ``name`` can be written without backticks (an R or Python name, not a keyword)."""
    return bool(_PLAIN.fullmatch(name)) and name != "." and not keyword.iskeyword(name) and name not in _R_RESERVED


def quote_name(name: str, where: str | None = None) -> str:
    """``name`` as written in a formula: bare when plain, else in backticks (`` `my days` ``)."""
    if "`" in name:
        raise FormulaError(
            f"the column name {name!r}{f' (in {where!r})' if where else ''} contains a backtick, "
            "which a formula cannot quote; rename the column"
        )
    return name if is_plain_name(name) else f"`{name}`"


# --------------------------------------------------------------------------
# R's "." for all other columns


def _dot_tokens(text: str) -> list[re.Match]:
    """The ``.`` tokens of ``text`` (outside strings and backticks, not part of a name)."""
    return [m for m in _TOKEN.finditer(text) if m["name"] == "."]


@functools.lru_cache(maxsize=512)
def has_dot(text: str) -> bool:
    """Whether ``text`` uses R's ``.`` (all other columns); cached by text (every fit asks it of each part)."""
    return bool(_dot_tokens(text))


def expand_dot(text: str, names: Sequence[str]) -> str:
    """``text`` with each ``.`` replaced by the columns ``names`` joined by ``+``.

    ``names`` are the columns ``.`` stands for (R: the data's columns that
    the response does not use), in the data's order.  The sum is put in
    parentheses where an operator other than ``+`` touches it, so ``.^2``
    and ``x - .`` keep R's meaning.

    >>> expand_dot(". - Species", ["Sepal.Width", "Species"])
    'Sepal.Width + Species - Species'
    """
    if not names:
        raise FormulaError(f"'.' in {text!r} stands for the data's columns other than the response, and there are none")
    joined = " + ".join(quote_name(n) for n in names)
    out, pos = [], 0
    for m in _dot_tokens(text):
        before, after = text[: m.start()].rstrip(), text[m.end() :].lstrip()
        bare = (not before or before[-1] in "+(~") and (not after or after[0] in "+-)")
        out += [text[pos : m.start()], joined if bare else f"({joined})"]
        pos = m.end()
    out.append(text[pos:])
    return "".join(out)


# --------------------------------------------------------------------------
# lme4's re.form = ~ 1 | g


def with_bar_parentheses(text: str) -> str:
    """``"~ 1 | g"`` -> ``"~ (1 | g)"``: lme4 reads a bar at the top of a one-sided formula as one term.

    In R ``|`` binds more loosely than ``+``, so ``~ x + z | g`` is the term
    ``(x + z | g)``.  Text whose bars are all inside parentheses is returned
    unchanged.
    """
    lhs, tilde, rhs = text.partition("~")
    if not tilde or not _has_top_level_bar(rhs):
        return text
    return f"{lhs}~ ({rhs.strip()})"


def _has_top_level_bar(text: str) -> bool:
    depth = 0
    masked = _TOKEN.sub(lambda m: "_" * len(m.group(0)) if m["string"] or m["tick"] else m.group(0), text)
    for ch in masked:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "|" and depth == 0:
            return True
    return False
