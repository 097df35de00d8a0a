"""Parse lme4-style model formulas: split off the random-effects ("bar") terms.

``parse_formula("Reaction ~ Days + (Days | Subject)")`` separates the response,
the fixed-effects part (left as text for formulaic) and the random-effects
terms ``(lhs | group)``.  The expansions lme4 performs are done here:

* ``(x || g)`` (uncorrelated) becomes ``(1 | g) + (0 + x | g)``;
* ``(1 | a/b)`` (nesting) becomes ``(1 | b:a) + (1 | a)``, in lme4's order;
* the lhs gets an explicit intercept marker: ``(x | g)`` -> ``1 + x``,
  ``(x - 1 | g)`` -> ``0 + x``;
* a covariance-structure call around a term, ``diag(1 + x | g)`` (glmmTMB's
  ``us``, ``diag``, ``cs``, ``ar1``; see :mod:`.structures`), is expanded
  like the term inside it, and each resulting term records the structure.

Everything is text processing that respects parentheses, brackets, braces and
quotes, so terms such as ``log(x + 1)`` or ``I((x - 1)**2)`` pass through
untouched.  Problems raise :class:`~mixedmodels.errors.FormulaError`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from itertools import combinations

from ..errors import FormulaError
from .structures import structure_call

__all__ = ["RandomTerm", "ParsedFormula", "parse_formula", "random_terms_text", "MAX_DEPTH"]

_OPEN = {"(": ")", "[": "]", "{": "}"}
# Deeper nesting is refused as soon as the scan reaches it: no model formula needs it (Python's own
# parser stops at 200), and the splitting below costs (length x depth).
MAX_DEPTH = 100
_CLOSE = {v: k for k, v in _OPEN.items()}
_QUOTES = "'\"`"
_NAME = r"(?:[^\W\d]|\.)[\w.]*"
_NAME_RE = re.compile(_NAME)
_GROUP_TOKEN = re.compile(rf"\s*(?:(?P<name>`[^`]*`|{_NAME})|(?P<op>[:/]))\s*")


@dataclass(frozen=True)
class RandomTerm:
    """One random-effects term ``(expr | group)`` after lme4's expansions.

    ``expr`` is the model for the random effects, normalised for formulaic
    with an explicit intercept marker ("1", "1 + Days", "0 + Days");
    ``group`` is the grouping factor as lme4 names it ("cask:batch") and
    ``factors`` the variables forming it, in order (("cask", "batch")).
    ``structure`` is the covariance structure's name (``"us"``, the
    default, or ``"diag"``, ``"cs"``, ``"ar1"``; see :mod:`.structures`).
    """

    expr: str
    group: str
    factors: tuple[str, ...]
    structure: str = "us"

    def __str__(self) -> str:
        """lme4 text of the term, e.g. ``"(1 + Days | Subject)"`` or ``"diag(1 + Days | Subject)"``."""
        group = ":".join(_quote_name(f) for f in self.factors) if self.factors else self.group
        text = f"({self.expr} | {group})"
        return text if self.structure == "us" else f"{self.structure}{text}"


@dataclass(frozen=True)
class ParsedFormula:
    """A formula split into response, fixed-effects text and random terms.

    Equality ignores ``formula`` (the original text), so two spellings of
    the same model compare equal.
    """

    formula: str = field(compare=False)
    response: str | None
    fixed: str
    random: tuple[RandomTerm, ...]

    def __str__(self) -> str:
        """Normalised lme4-style formula; parsing it gives an equal object."""
        rhs = self.fixed
        if self.random:
            rhs = f"{rhs} + {random_terms_text(self.random)}"
        return f"{self.response} ~ {rhs}" if self.response is not None else f"~ {rhs}"


def random_terms_text(terms: Iterable[RandomTerm]) -> str:
    """Join random terms into lme4 text: ``"(1 + Days | Subject) + (1 | item)"``."""
    return " + ".join(str(t) for t in terms)


def parse_formula(formula: str) -> ParsedFormula:
    """Parse an lme4 model formula.

    >>> p = parse_formula("Reaction ~ Days + (Days | Subject)")
    >>> p.response, p.fixed, [str(t) for t in p.random]
    ('Reaction', 'Days', ['(1 + Days | Subject)'])

    Raises :class:`FormulaError` for text that is not a valid lme4 formula.
    """
    if not isinstance(formula, str):
        raise FormulaError(f"the formula must be a string such as 'y ~ x + (1 | g)', got {type(formula).__name__}")
    return _parse_formula(formula)


@functools.lru_cache(maxsize=512)
def _parse_formula(formula: str) -> ParsedFormula:
    """:func:`parse_formula` for a string, cached: the result is immutable and refits reuse their text."""
    if not formula.strip():
        raise FormulaError("the formula is empty; write e.g. 'y ~ x + (1 | g)'")
    list(_walk(formula, formula))  # balance check on the text as the user wrote it
    lhs, rhs = _split_tilde(_squash(formula))
    if "|" in _unquoted(lhs):
        raise FormulaError(
            f"the response {lhs!r} contains '|'; bars belong in random-effects "
            "terms on the right of '~', e.g. 'y ~ x + (1 | g)'"
        )
    fixed, random = _split_rhs(rhs)
    return ParsedFormula(formula, lhs or None, fixed, random)


def _split_rhs(rhs: str) -> tuple[str, tuple[RandomTerm, ...]]:
    """Fixed-effects text and expanded random terms of the right-hand side."""
    if _bar_positions(rhs):
        raise FormulaError(
            f"the right-hand side {rhs!r} has '|' outside parentheses; put each "
            f"random-effects term in parentheses, e.g. 'y ~ ({rhs})', or "
            "'y ~ x + (1 + x | g)' to keep x as a fixed effect too"
        )
    fixed_terms: list[tuple[int, str]] = []
    random: list[RandomTerm] = []
    for sign, term in _signed_terms(rhs, "the right-hand side"):
        structured = _structured_terms(term, sign)
        if structured is not None:
            random.extend(structured)
            continue
        inner = _bar_inner(term)
        if inner is None:
            fixed_terms.append((sign, term))
        elif sign < 0:
            raise FormulaError(
                f"the random-effects term {term!r} is subtracted; random terms can only "
                "be added: write '+ " + term + "'"
            )
        else:
            random.extend(_parse_bar(inner, term))
    return _render_fixed(fixed_terms), tuple(random)


# --------------------------------------------------------------------------
# scanning


def _walk(text: str, formula: str) -> Iterator[tuple[int, str, int, bool]]:
    """Yield ``(index, char, depth, quoted)``; raise on unbalanced brackets/quotes."""
    stack: list[tuple[str, int]] = []
    quote: tuple[str, int] | None = None
    escaped = False
    for i, ch in enumerate(text):
        if quote is not None:
            yield i, ch, len(stack), True
            if escaped:
                escaped = False
            elif ch == "\\" and quote[0] != "`":
                escaped = True
            elif ch == quote[0]:
                quote = None
            continue
        if ch in _QUOTES:
            quote = (ch, i)
            yield i, ch, len(stack), True
            continue
        if ch in _CLOSE:
            if not stack:
                raise _where(formula, text, i, f"{ch!r} has no matching {_CLOSE[ch]!r}")
            opener, j = stack.pop()
            if _OPEN[opener] != ch:
                raise _where(formula, text, j, f"{opener!r} is closed by {ch!r}; use {_OPEN[opener]!r}")
        yield i, ch, len(stack), False
        if ch in _OPEN:
            stack.append((ch, i))
            if len(stack) > MAX_DEPTH:
                raise _too_deep(formula, i)
    if quote is not None:
        raise _where(formula, text, quote[1], f"the quote {quote[0]} is never closed")
    if stack:
        opener, j = stack[-1]
        raise _where(formula, text, j, f"{opener!r} is never closed; add {_OPEN[opener]!r}")


def _where(formula: str, text: str, i: int, what: str) -> FormulaError:
    """An 'unbalanced' error pointing at character ``i`` of ``text``."""
    line = text.replace("\n", " ").replace("\t", " ").replace("\r", " ")
    return FormulaError(
        f"unbalanced brackets or quotes in formula {formula!r}: {what} (character {i + 1}):\n    {line}\n    {' ' * i}^"
    )


def _too_deep(formula: str, i: int) -> FormulaError:
    """The error for brackets nested deeper than :data:`MAX_DEPTH` (reached at character ``i``)."""
    start = max(i - 30, 0)
    excerpt = ("..." if start else "") + formula[start : i + 1]
    return FormulaError(
        f"the formula nests brackets more than {MAX_DEPTH} levels deep (at character {i + 1}: "
        f"{excerpt!r}); write it with fewer nested parentheses, or compute the term as a column first"
    )


def _top_level(text: str) -> list[bool]:
    """For each character: is it outside all brackets and quotes?"""
    return [depth == 0 and not q for _, _, depth, q in _walk(text, text)]


def _unquoted(text: str) -> str:
    """``text`` with quoted characters blanked out."""
    return "".join(" " if q else ch for _, ch, _, q in _walk(text, text))


def _squash(text: str) -> str:
    """Collapse whitespace runs outside quotes to one space and strip."""
    out: list[str] = []
    for _, ch, _, quoted in _walk(text, text):
        if ch.isspace() and not quoted:
            if out and out[-1] != " ":
                out.append(" ")
        else:
            out.append(ch)
    return "".join(out).strip()


def _split_top(text: str, seps: str) -> tuple[list[str], list[str]]:
    """Split at top-level characters in ``seps``: (pieces, separators)."""
    top = _top_level(text)
    pieces, ops, start = [], [], 0
    for i, ch in enumerate(text):
        if top[i] and ch in seps:
            pieces.append(text[start:i].strip())
            ops.append(ch)
            start = i + 1
    pieces.append(text[start:].strip())
    return pieces, ops


def _split_tilde(text: str) -> tuple[str, str]:
    """Split the (squashed) formula at its single '~'."""
    tildes = [i for i, ch in enumerate(_unquoted(text)) if ch == "~"]
    if not tildes:
        raise FormulaError(
            f"the formula {text!r} has no '~'; write the response left of '~' and the "
            "predictors right of it, e.g. 'y ~ x + (1 | g)'"
        )
    if len(tildes) > 1:
        raise FormulaError(
            f"the formula {text!r} has {len(tildes)} '~'; a model formula has exactly one, as in 'y ~ x + (1 | g)'"
        )
    lhs, rhs = text[: tildes[0]].strip(), text[tildes[0] + 1 :].strip()
    if not rhs:
        raise FormulaError(f"nothing right of '~' in {text!r}; add predictors, e.g. '~ 1 + (1 | g)'")
    return lhs, rhs


def _signed_terms(text: str, where: str) -> list[tuple[int, str]]:
    """Split ``text`` at top-level ``+``/``-`` into ``(sign, term)`` pairs."""
    pieces, ops = _split_top(text, "+-")
    terms: list[tuple[int, str]] = []
    sign = 1
    for k, piece in enumerate(pieces):
        if k > 0 and ops[k - 1] == "-":
            sign = -sign
        if piece:
            terms.append((sign, piece))
            sign = 1
        elif k == len(pieces) - 1:
            raise FormulaError(
                f"{where} {text!r} ends with {ops[-1]!r}; remove it or add a term after it"
                if ops
                else f"{where} is empty"
            )
    return terms


# --------------------------------------------------------------------------
# bar terms


def _bar_inner(term: str) -> str | None:
    """The text inside ``(lhs | group)``, or None for a fixed term.

    Raises if the term has a ``|`` that is not the top level of parentheses.
    """
    inner = term
    while _wrapped(inner):
        inner = inner[1:-1].strip()
        if _bar_positions(inner):
            return inner
    if "|" in _unquoted(term):
        raise FormulaError(
            f"the term {term!r} uses '|' inside a function call, interaction or "
            "nested parentheses; a random-effects term must stand alone in its own "
            "parentheses and be added with '+', as in 'y ~ x + (1 + x | g)'"
        )
    return None


def _structured_terms(term: str, sign: int) -> list[RandomTerm] | None:
    """The expanded terms of ``diag(1 + x | g)`` and the like, each with its structure; None for other terms."""
    call = structure_call(term, lambda text: bool(_bar_positions(text)))
    if call is None or not _wrapped(call[1]):
        return None
    name, inner = call[0], call[1][1:-1].strip()
    if sign < 0:
        raise FormulaError(f"the random-effects term {term!r} is subtracted; random terms can only be added")
    bars = _bar_positions(inner)
    if len(bars) == 2 and bars[1] == bars[0] + 1:
        raise FormulaError(
            f"the term {term!r} uses '||' inside {name}(); write {name}(lhs | group) -- "
            "diag(lhs | group) is the uncorrelated structure, and '(lhs || group)' lme4's split into terms"
        )
    return [replace(t, structure=name) for t in _parse_bar(inner, term)]


def _bar_positions(text: str) -> list[int]:
    """Indices of the top-level ``|`` characters of ``text``."""
    return [i for i, (ch, top) in enumerate(zip(text, _top_level(text))) if top and ch == "|"]


def _wrapped(text: str) -> bool:
    """Is ``text`` one parenthesised expression ``( ... )``?"""
    if not (text.startswith("(") and text.endswith(")")):
        return False
    for i, _, depth, quoted in _walk(text, text):
        if not quoted and depth == 0 and 0 < i < len(text) - 1:
            return False
    return True


def _parse_bar(inner: str, term: str) -> list[RandomTerm]:
    """Expand one ``(lhs | group)`` / ``(lhs || group)`` into RandomTerms."""
    bars = _bar_positions(inner)
    double = len(bars) == 2 and bars[1] == bars[0] + 1
    if len(bars) > 2 or (len(bars) == 2 and not double):
        raise FormulaError(
            f"the random-effects term {term!r} has too many bars; write "
            "'(lhs | group)' or, for uncorrelated effects, '(lhs || group)'"
        )
    lhs, group = inner[: bars[0]].strip(), inner[bars[-1] + 1 :].strip()
    if not lhs:
        raise FormulaError(
            f"the random-effects term {term!r} has nothing left of the bar; write "
            f"'(1 | {group or 'g'})' for a random intercept"
        )
    if not group:
        raise FormulaError(
            f"the random-effects term {term!r} has no grouping factor right of the "
            f"bar; name it, e.g. '({lhs} | Subject)'"
        )
    exprs = _uncorrelated_exprs(lhs, term) if double else [_normalise_lhs(lhs, term)]
    groups = _expand_group(group, term)
    return [RandomTerm(e, ":".join(f), f) for e in exprs for f in groups]


def _lhs_terms(lhs: str, term: str) -> tuple[bool, list[tuple[int, str]]]:
    """Intercept flag and the other signed terms of a bar's lhs."""
    intercept, rest = True, []
    for sign, t in _signed_terms(lhs, f"the left of the bar in {term!r}"):
        if "|" in _unquoted(t):
            raise FormulaError(
                f"the random-effects term {term!r} has a '|' inside its left-hand "
                "side; random-effects terms cannot be nested inside each other"
            )
        if t in ("0", "1"):
            intercept = (t == "1") == (sign > 0)
        else:
            rest.append((sign, t))
    if not intercept and not any(s > 0 for s, _ in rest):
        raise FormulaError(
            f"the random-effects term {term!r} has no random effects (no intercept "
            "and no variables); write e.g. '(1 | g)' or '(0 + x | g)'"
        )
    return intercept, rest


def _normalise_lhs(lhs: str, term: str) -> str:
    """``"x"`` -> ``"1 + x"``; ``"x - 1"`` -> ``"0 + x"``; ``"1"`` -> ``"1"``."""
    intercept, rest = _lhs_terms(lhs, term)
    out = "1" if intercept else "0"
    for sign, t in rest:
        out += f" + {t}" if sign > 0 else f" - {t}"
    return out


def _uncorrelated_exprs(lhs: str, term: str) -> list[str]:
    """lme4's ``||`` expansion: ``"1"`` then ``"0 + t"`` for each term of lhs.

    Like R's ``terms()``, ``a*b`` expands to ``a``, ``b``, ``a:b``; subtracted
    terms are dropped, duplicates removed and terms ordered by degree.
    """
    intercept, rest = _lhs_terms(lhs, term)
    drop = {_term_key(t) for s, t in rest if s < 0}
    seen: set[frozenset[str]] = set()
    kept: list[str] = []
    for t in (x for sign, added in rest if sign > 0 for x in _expand_star(added)):
        key = _term_key(t)
        if key not in drop and key not in seen:
            seen.add(key)
            kept.append(t)
    kept.sort(key=lambda t: len(_term_key(t)))
    return (["1"] if intercept else []) + [f"0 + {t}" for t in kept]


def _expand_star(t: str) -> list[str]:
    """``a*b`` -> ``[a, b, a:b]`` (R order); other terms unchanged."""
    marked = "".join(
        "\0" if ch == "*" and top and "*" not in t[max(i - 1, 0) : i] + t[i + 1 : i + 2] else ch
        for i, (ch, top) in enumerate(zip(t, _top_level(t)))
    )
    factors = [f.strip() for f in marked.split("\0")]
    if len(factors) == 1 or not all(factors):
        return [t]
    return [":".join(c) for n in range(1, len(factors) + 1) for c in combinations(factors, n)]


def _term_key(t: str) -> frozenset[str]:
    """Variables of an interaction term, order- and space-insensitive."""
    pieces, _ = _split_top(t, ":")
    return frozenset(p.replace(" ", "") for p in pieces)


def _expand_group(group: str, term: str) -> list[tuple[str, ...]]:
    """``"a/b"`` -> ``[("b", "a"), ("a",)]``; ``"a:b"`` -> ``[("a", "b")]``."""
    pieces: list[list[str]] = [[]]
    pos, expect_name = 0, True
    for m in _GROUP_TOKEN.finditer(group):
        if m.start() != pos or (m["name"] is not None) != expect_name:
            break
        pos, expect_name = m.end(), not expect_name
        if m["name"] is not None:
            pieces[-1].append(m["name"].strip("`"))
        elif m["op"] == "/":
            pieces.append([])
    if pos != len(group) or expect_name or not all(all(p) for p in pieces):
        raise FormulaError(
            f"the grouping factor {group!r} in {term!r} is not a variable name; lme4 "
            "groups by column names, joined by ':' (interaction) or '/' (nesting). "
            "Create the grouping column in the data first, e.g. df['g'] = ..."
        )
    # lme4's makeInteraction: innermost first, each level named inner:...:outer
    return [tuple(name for piece in reversed(pieces[: k + 1]) for name in piece) for k in reversed(range(len(pieces)))]


def _quote_name(name: str) -> str:
    """Backtick-quote a name that is not a plain identifier."""
    return name if _NAME_RE.fullmatch(name) else f"`{name}`"


def _render_fixed(terms: list[tuple[int, str]]) -> str:
    """Fixed-effects text for formulaic: ``"1"``/``"0"`` when only intercept is left."""
    if all(t in ("0", "1") for _, t in terms):
        intercept = True
        for sign, t in terms:
            intercept = (t == "1") == (sign > 0)
        return "1" if intercept else "0"
    out = ""
    for k, (sign, t) in enumerate(terms):
        if k == 0:
            out = t if sign > 0 else f"-{t}"
        else:
            out += f" + {t}" if sign > 0 else f" - {t}"
    return out
