"""R's printing of numbers and tables, one copy of each rule.

Every printed summary (lmer, glmer, lm, glm, lmerTest's tables, the Bayesian
summary) formats its numbers here, the way R's ``print`` does:

* :func:`format_r` -- fixed notation with one number of decimals per column,
  the fewest that show every entry to ``digits`` significant digits (the
  fixed branch of R's ``formatReal``);
* :func:`format_sig` -- R's ``format(x, digits)``: fixed notation unless
  scientific notation is narrower.  With ``neg_i`` 1 for a negative entry,
  ``e_i`` its decimal exponent and ``s_i`` its significant digits after
  rounding to ``digits``, the fixed width is
  ``max_i(neg_i + max(e_i + 1, 1)) + rgt + (rgt > 0)`` with
  ``rgt = max_i(s_i - e_i - 1)``, and the scientific width
  ``neg + (m > 0) + m + 5`` (``d.ddde-05``; one more for a three-digit
  exponent) with ``m = max_i(s_i) - 1``; fixed wins ties;
* :func:`format_pval` -- ``format.pval``: ``< 2e-16`` below machine epsilon;
  p >= 1e-4 and the smaller ones formatted as two groups;
* :func:`signif_stars` and :func:`signif_legend` -- ``symnum`` with cut points
  0.001, 0.01, 0.05, 0.1;
* :func:`coefmat_lines` -- ``printCoefmat``: the columns before the statistic
  (Estimate, Std. Error, df) rounded to ``max(1, digits - 1 - floor(log10(min |x|)))``
  decimals and formatted jointly, the statistic rounded to
  ``max(1, min(5, digits - 1))`` decimals, p-values by ``format.pval`` and
  stars when some p-value is below 0.1;
* :func:`zapsmall`, :func:`abbreviate`, :func:`deparse_lines`,
  :func:`format_g` (``formatC``), :func:`quantile_lines` and
  :func:`five_number_lines` (a summary's residual quantiles) and :func:`table_lines` (a character matrix printed
  in columns);
* :class:`Printable` -- printed objects: ``str()`` joins ``lines()``,
  notebooks show the same text preformatted.
"""

from __future__ import annotations

import html
import math
import re
from typing import Sequence

import numpy as np
import pandas as pd

__all__ = [
    "format_r",
    "format_sig",
    "format_g",
    "format_pval",
    "format_coef_se",
    "signif_stars",
    "signif_legend",
    "SIGNIF_LEGEND",
    "coefmat_lines",
    "quantile_lines",
    "five_number_lines",
    "zapsmall",
    "abbreviate",
    "deparse_lines",
    "common_width",
    "table_lines",
    "Printable",
]

_EPS = float(np.finfo(float).eps)
_MAX_DECIMALS = 15
# symnum's cut points and codes, in increasing order of p
_STARS = ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, "."), (1.0, " "))


# --- numbers ------------------------------------------------------------------------------
def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _sig_parts(x: float, digits: int) -> tuple[int, int]:
    """(decimal exponent, significant digits needed) of |x| rounded to ``digits`` digits."""
    mantissa, exponent = f"{abs(x):.{digits - 1}e}".split("e")
    nsig = len(mantissa.replace(".", "").rstrip("0")) or 1
    return int(exponent), nsig


def _decimals(values: Sequence[float], digits: int) -> int:
    """Decimals R needs to show every finite entry to ``digits`` significant digits (at most 15)."""
    parts = [_sig_parts(v, digits) for v in values if _finite(v) and v != 0]
    return min(max((max(nsig - e - 1, 0) for e, nsig in parts), default=0), _MAX_DECIMALS)


def format_r(values: Sequence[float], digits: int = 4) -> list[str]:
    """Format numbers jointly in fixed notation as R's print does with ``digits`` significant digits.

    One number of decimals for all, the fewest that show each entry to
    ``digits`` significant digits; ``"NA"`` for missing and non-finite values.
    """
    decimals = _decimals(values, digits)
    return [f"{v + 0.0:.{decimals}f}" if _finite(v) else "NA" for v in values]  # + 0.0: R prints -0 as 0


def format_sig(values: Sequence[float], digits: int) -> list[str]:
    """R's ``format(x, digits)`` for a numeric vector: fixed or scientific, whichever is narrower."""
    finite = [float(v) for v in values if _finite(v) and v != 0]
    if not finite:
        return format_r(values, digits)
    parts = [_sig_parts(v, digits) for v in finite]
    rgt = max(max(nsig - e - 1, 0) for e, nsig in parts)
    fixed_width = max((v < 0) + max(_left_digits(v, e), 1) for v, (e, _) in zip(finite, parts)) + (rgt > 0) + rgt
    mant = max(nsig for _, nsig in parts) - 1
    big_exp = any(abs(e) >= 100 for e, _ in parts)
    sci_width = any(v < 0 for v in finite) + (mant > 0) + mant + 1 + (5 if big_exp else 4)
    if fixed_width <= sci_width:
        return format_r(values, digits)
    return [f"{v + 0.0:.{mant}e}" if _finite(v) else "NA" for v in values]


def _left_digits(value: float, exponent: int) -> int:
    """Digits left of the decimal point in fixed notation: ``exponent + 1``, one fewer when
    rounding to the significant digits carried the exponent up (99902 -> 1.0e5; R's ``roundingwidens``)."""
    return exponent + 1 - (exponent > 0 and abs(value) < 10.0**exponent)


def format_g(value: float, digits: int = 4) -> str:
    """R's ``formatC(x, digits=)`` (C's ``%g``)."""
    return f"{value:.{digits}g}"


def zapsmall(values: np.ndarray, digits: int) -> np.ndarray:
    """R's ``zapsmall``: round to ``digits`` significant digits of the largest magnitude.

    R rounds a non-integer number of decimals to the nearest integer, so the
    decimals are ``round(digits - log10(max|x|))`` (R 4.2, which made the
    references; R 4.4 changed it).  Missing values are ignored, as in R.
    """
    finite = np.abs(values[np.isfinite(values)])
    largest = float(finite.max()) if finite.size else 0.0
    if largest == 0:
        return values
    decimals = max(0, math.floor(digits - math.log10(largest) + 0.5))
    return np.round(values, decimals)


# --- p-values and stars --------------------------------------------------------------------
def format_pval(pvalues: Sequence[float], digits: int = 3, eps: float = _EPS) -> list[str]:
    """R's ``format.pval``: ``< 2e-16`` below ``eps``; p >= 1e-4 (digits > 1) and smaller p formatted as two groups."""
    p = np.asarray(pvalues, dtype=float)
    out = ["NA"] * len(p)
    ok = np.isfinite(p)
    tiny = ok & (p < eps)
    rest = ok & ~tiny
    if rest.any():
        vals = p[rest]
        expo = np.floor(np.log10(np.where(vals > 0, vals, 1e-50)))
        fixp = (expo >= -3) | ((expo == -4) & (digits > 1))
        texts = np.empty(len(vals), dtype=object)
        for group in (fixp, ~fixp):
            if group.any():
                texts[group] = format_sig(list(vals[group]), digits)
        for i, t in zip(np.flatnonzero(rest), texts):
            out[i] = t
    if tiny.any():
        d = max(1, digits - 2)
        if rest.any():
            nc = max(len(out[i]) for i in np.flatnonzero(rest))
            if d > 1 and d + 6 > nc:
                d = max(1, nc - 7)
            sep = "" if d == 1 and nc <= 6 else " "
        else:
            sep = "" if d == 1 else " "
        label = "<" + sep + format_sig([eps], d)[0]
        for i in np.flatnonzero(tiny):
            out[i] = label
    return out


def signif_stars(pvalues: Sequence[float]) -> list[str]:
    """R's significance codes (symnum with cutpoints 0, .001, .01, .05, .1, 1); ``""`` for a missing p."""
    return [next((code for cut, code in _STARS if p <= cut), " ") if math.isfinite(p) else "" for p in pvalues]


def signif_legend(utf8: bool = True) -> str:
    """The legend under a table with stars; R quotes the codes with ``‘ ’`` in a UTF-8 locale, ``' '`` in the C locale."""
    left, right = ("\u2018", "\u2019") if utf8 else ("'", "'")
    codes = " ".join(f"{left}{code}{right} {cut:g}" for cut, code in _STARS)
    return f"Signif. codes:  0 {codes}"


SIGNIF_LEGEND = signif_legend()


# --- coefficient tables --------------------------------------------------------------------
def _round_coef_block(values: np.ndarray, digits: int) -> np.ndarray:
    """printCoefmat's rounding of the estimate-like columns: ``max(1, digits - 1 - floor(log10(min |x|)))`` decimals."""
    nonzero = np.abs(values[np.isfinite(values) & (values != 0)])
    digmin = 1 + (math.floor(math.log10(nonzero.min())) if nonzero.size else 0)
    return np.round(values, max(1, digits - digmin))


def format_coef_se(estimates: np.ndarray, std_errors: np.ndarray, digits: int = 4) -> list[str]:
    """Estimates then SEs formatted jointly as R's ``printCoefmat`` does (rounded, then ``format``)."""
    values = np.concatenate([np.asarray(estimates, float), np.asarray(std_errors, float)])
    return format_sig(list(_round_coef_block(values, digits)), digits)


def coefmat_lines(table: pd.DataFrame, digits: int = 4, legend: str | None = SIGNIF_LEGEND) -> list[str]:
    """``printCoefmat(table, digits)``: estimate-like columns, then the test statistic, then (optionally) the p-value.

    The table has a p-value column when its last column is named ``Pr(...)``
    (then stars are added when some p-value is below 0.1, and ``legend``
    under the table unless it is None); the statistic is the column before
    it, or the last one.  All earlier columns (Estimate, Std. Error, df) are
    formatted jointly, as one matrix of one width, as R does; missing
    values print as ``NA``.
    """
    values = table.to_numpy(dtype=float)
    has_p = str(table.columns[-1]).startswith("Pr(")
    nstat = values.shape[1] - 1 - has_p
    block = values[:, :nstat]
    joint = common_width(format_sig(list(_round_coef_block(block, digits).ravel(order="F")), digits))
    stat = format_sig([round(v, max(1, min(5, digits - 1))) for v in values[:, nstat]], digits)
    n = len(table)
    columns = [joint[j * n : (j + 1) * n] for j in range(nstat)] + [stat]
    stars, show_stars = [""] * n, False
    if has_p:
        pvals = values[:, -1]
        columns.append(format_pval(pvals, max(1, min(5, digits - 1))))
        show_stars = any(math.isfinite(p) and p < 0.1 for p in pvals)
        stars = [s.ljust(3) for s in signif_stars(pvals)]
    header = ["", *map(str, table.columns)] + ([""] if show_stars else [])
    rows = [header] + [
        [str(name), *(c[i] for c in columns)] + ([stars[i]] if show_stars else []) for i, name in enumerate(table.index)
    ]
    lines = table_lines(rows, "l" + "r" * (len(header) - 1))
    if show_stars and legend is not None:
        lines += ["---", legend]
    return lines


def quantile_lines(values: np.ndarray, digits: int = 4, gap: int = 1) -> list[str]:
    """Min, quartiles and max as R prints ``zapsmall(quantile(x), digits + 1)``: a named vector in equal-width columns."""
    return five_number_lines(np.quantile(values, [0, 0.25, 0.5, 0.75, 1]), digits, gap)


def five_number_lines(quantiles: Sequence[float], digits: int = 4, gap: int = 1) -> list[str]:
    """:func:`quantile_lines` given the min, quartiles and max (e.g. computed where the values are)."""
    names = ["Min", "1Q", "Median", "3Q", "Max"]
    quantiles = zapsmall(np.asarray(quantiles, dtype=float), digits + 1)
    text = format_sig(list(quantiles), digits)
    width = max(len(c) for c in names + text)
    sep = " " * gap
    return [sep.join(n.rjust(width) for n in names), sep.join(t.rjust(width) for t in text)]


# --- text -----------------------------------------------------------------------------------
def abbreviate(name: str, minlength: int = 6) -> str:
    """R's ``abbreviate``: drop lower-case vowels, then lower-case letters, from the right."""
    chars = list(name)
    for pool in ("aeiou", "abcdefghijklmnopqrstuvwxyz"):
        i = len(chars) - 1
        while len(chars) > minlength and i > 0:
            if chars[i] in pool and chars[i - 1] != " ":
                del chars[i]
            i -= 1
    return "".join(chars[: max(minlength, 0)]) if len(chars) > minlength else "".join(chars)


_BREAK_AFTER = re.compile(r"(?<= [~+\-*/|] )|(?<= \|\| )")


def deparse_lines(formula: str, cutoff: int = 60) -> list[str]:
    """R's ``deparse`` line breaking of a long formula: after a binary operator once a line passes 60 characters."""
    lines, current = [], ""
    for piece in _BREAK_AFTER.split(formula):
        current += piece
        if len(current) > cutoff and piece.endswith(" "):
            lines.append(current.rstrip())
            current = ""
    if current or not lines:
        lines.append(current)
    return lines


def common_width(cells: list[str]) -> list[str]:
    """Right-justify formatted numbers to one width, as R's format() does."""
    width = max((len(c) for c in cells), default=0)
    return [c.rjust(width) for c in cells]


def table_lines(rows: list[list[str]], align: str) -> list[str]:
    """Lay out string rows in columns (R's print of a character matrix); ``align`` has 'l' or 'r' per column."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(align))]
    lines = []
    for row in rows:
        cells = [c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(row, widths, align)]
        lines.append(" ".join(cells).rstrip())
    return lines


class Printable:
    """Text that prints as itself: ``str()`` joins :meth:`lines`; notebooks show it preformatted."""

    def lines(self) -> list[str]:  # pragma: no cover - overridden
        raise NotImplementedError

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(str(self))}</pre>"
