"""R's printing of coefficient and test tables: ``printCoefmat`` and ``format.pval``.

These reproduce what R prints for ``summary()`` coefficient tables with
p-values and significance stars (lmerTest, lm, glm):

* estimate-like columns (Estimate, Std. Error, and df when present) are
  rounded to ``max(1, digits - (1 + floor(log10(min |x|))))`` decimals and
  formatted jointly to ``digits`` significant digits;
* the test statistic is rounded to ``dig.tst = digits - 1`` decimals;
* p-values use ``format.pval(p, digits = dig.tst)``: values below machine
  epsilon print as ``< 2e-16``; those from 1e-4 up are formatted together,
  the smaller ones together, each group in fixed or scientific notation,
  whichever R's ``format`` would choose;
* stars: ``***`` p <= 0.001, ``**`` <= 0.01, ``*`` <= 0.05, ``.`` <= 0.1.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from ..summary import _table, format_r

__all__ = ["format_pval", "format_sig", "signif_stars", "coefmat_lines", "SIGNIF_LEGEND"]

SIGNIF_LEGEND = "Signif. codes:  0 \u2018***\u2019 0.001 \u2018**\u2019 0.01 \u2018*\u2019 0.05 \u2018.\u2019 0.1 \u2018 \u2019 1"
_EPS = float(np.finfo(float).eps)


def _sig_parts(x: float, digits: int) -> tuple[int, int]:
    """(decimal exponent, significant digits needed) of |x| rounded to ``digits`` digits."""
    mantissa, exponent = f"{abs(x):.{digits - 1}e}".split("e")
    nsig = len(mantissa.replace(".", "").rstrip("0")) or 1
    return int(exponent), nsig


def format_sig(values: Sequence[float], digits: int) -> list[str]:
    """R's ``format(x, digits)`` for a numeric vector: fixed or scientific, whichever is narrower."""
    finite = [v for v in values if math.isfinite(v) and v != 0]
    if not finite:
        return format_r(list(values), digits)
    parts = [_sig_parts(v, digits) for v in finite]
    neg = any(v < 0 for v in finite)
    rgt = max(max(nsig - e - 1, 0) for e, nsig in parts)
    left = max(max(e + 1, 1) for e, _ in parts)
    fixed_width = neg + left + (rgt > 0) + rgt
    mant = max(nsig for _, nsig in parts) - 1
    big_exp = any(abs(e) >= 100 for e, _ in parts)
    sci_width = neg + (mant > 0) + mant + 1 + (5 if big_exp else 4)
    if fixed_width <= sci_width:
        return [f"{v:.{rgt}f}" if math.isfinite(v) else "NA" for v in values]
    out = []
    for v in values:
        text = f"{v:.{mant}e}"
        mantissa, exponent = text.split("e")
        out.append(f"{mantissa}e{exponent[0]}{abs(int(exponent)):02d}")
    return out


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
    """R's significance codes (symnum with cutpoints 0, .001, .01, .05, .1, 1)."""
    out = []
    for p in pvalues:
        if not math.isfinite(p):
            out.append("")
        else:
            out.append("***" if p <= 0.001 else "**" if p <= 0.01 else "*" if p <= 0.05 else "." if p <= 0.1 else " ")
    return out


def coefmat_lines(table: pd.DataFrame, digits: int = 4, legend: bool = True) -> list[str]:
    """``printCoefmat(table, digits)`` for a table whose last column is a p-value and the one before it the statistic.

    All earlier columns (Estimate, Std. Error, df) are formatted jointly, as R does.
    """
    values = table.to_numpy(dtype=float)
    est = values[:, :-2]
    finite = np.abs(est[np.isfinite(est) & (est != 0)])
    digmin = 1 + (math.floor(math.log10(finite.min())) if finite.size else 0)
    rounded = np.round(est, max(1, digits - digmin))
    joint = format_r(list(rounded.ravel(order="F")), digits)
    width = max(len(t) for t in joint)
    joint = [t.rjust(width) for t in joint]  # R formats these columns as one matrix: one width
    n = len(table)
    stat = format_r([round(v, digits - 1) for v in values[:, -2]], digits)
    pvals = format_pval(values[:, -1], max(1, min(5, digits - 1)))
    stars = signif_stars(values[:, -1])
    show_stars = any(math.isfinite(p) and p < 0.1 for p in values[:, -1])
    header = ["", *table.columns] + ([""] if show_stars else [])
    rows = [header]
    for i, name in enumerate(table.index):
        cells = [joint[j * n + i] for j in range(est.shape[1])]
        rows.append([str(name), *cells, stat[i], pvals[i]] + ([stars[i].ljust(3)] if show_stars else []))
    lines = _table(rows, "l" + "r" * (len(header) - 1))
    if show_stars and legend:
        lines += ["---", SIGNIF_LEGEND]
    return lines
