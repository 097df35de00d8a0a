"""Tables that are DataFrames and print as R prints them.

``mm.anova(m0, m1)``, ``mm.ranova(m)``, ``m.anova()``, ``m.coef_table()`` and
``m.confint()`` return pandas DataFrames, so they can be indexed, joined and
saved as usual.  Printed, a DataFrame wider than the terminal is cut to
``[2 rows x 8 columns]``; these tables instead print whole, in R's layout:

* ``"anova"``: R's ``print.anova``: the heading lines, then the table as
  ``printCoefmat`` shows it with ``digits = 5``: each column rounded by
  ``zapsmall`` (R 4.2's, which can round twice: BIC 1814.85047 prints as
  1814.8) and formatted on its own, test statistics (``Chisq``,
  ``F value``, ...) rounded to ``dig.tst = 4`` decimals, degrees of freedom as
  they are, p-values by ``format.pval`` with significance stars and their
  legend, and missing values left blank;
* ``"matrix"``: R's print of a numeric matrix (``coef(summary(m))``,
  ``confint(m)``): each column formatted on its own to 7 significant digits,
  ``NA`` where a value is missing.

Anything derived from such a table (a selection, a copy, arithmetic) is a plain
DataFrame again, so the heading never describes a table it does not belong to.
"""

from __future__ import annotations

import html
import re
from typing import Sequence

import numpy as np
import pandas as pd

from .format import SIGNIF_LEGEND, format_pval, format_sig, signif_stars, zapsmall

__all__ = ["RTable", "r_table"]

_LAYOUTS = ("anova", "matrix")


class RTable(pd.DataFrame):
    """A DataFrame that prints as R prints the table it stands for.

    Attributes
    ----------
    heading : tuple of str
        Lines printed above the table (R's ``attr(x, "heading")``).
    layout : {"anova", "matrix"}
        How the numbers are formatted (see the module docstring).
    """

    _metadata = ["heading", "layout"]

    @property
    def _constructor(self):  # derived tables are plain DataFrames (their heading would no longer apply)
        return pd.DataFrame

    def r_lines(self) -> list[str]:
        """The printed text, one string per line."""
        body = anova_lines(self) if self.layout == "anova" else matrix_lines(self)
        return [*self.heading, *body]

    def __repr__(self) -> str:
        return "\n".join(self.r_lines())

    def __str__(self) -> str:
        return self.__repr__()

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(self.__repr__())}</pre>"


def r_table(frame: pd.DataFrame, heading: Sequence[str] = (), layout: str = "anova") -> RTable:
    """``frame`` as an :class:`RTable` (same index, columns and values) with ``heading`` above it."""
    if layout not in _LAYOUTS:
        raise ValueError(f"layout must be one of {_LAYOUTS}, not {layout!r}")
    table = RTable(frame)
    table.attrs = dict(frame.attrs)
    table.heading = tuple(heading)
    table.layout = layout
    return table


# --- R's print.anova / printCoefmat(cs.ind = NULL) ---------------------------------------------


def _column_kinds(columns: list[str]) -> tuple[bool, list[int], list[int]]:
    """(has a p-value column last, test-statistic columns, columns to zap) as ``print.anova`` chooses."""
    has_p = bool(re.match(r"^(P|Pr)\(", columns[-1]))
    tests = [i for i, c in enumerate(columns) if c[1:7] == " value" or c in ("F", "Cp", "Chisq")]
    zap = [i for i in range(len(columns) - has_p) if i not in tests and not columns[i].endswith("Df")]
    return has_p, tests, zap


def anova_lines(table: pd.DataFrame, digits: int = 5) -> list[str]:
    """The rows of ``table`` as R's ``print.anova`` prints them (without the heading)."""
    columns = [str(c) for c in table.columns]
    values = np.array(table.to_numpy(dtype=float, na_value=np.nan))  # a copy: zapped in place
    has_p, tests, zap = _column_kinds(columns)
    for i in zap:
        values[:, i] = zapsmall(values[:, i], digits)
    cells = np.full(values.shape, "", dtype=object)
    if tests:
        rounded = np.round(values[:, tests], max(1, min(5, digits - 1)))
        cells[:, tests] = np.array(format_sig(list(rounded.ravel(order="F")), digits), dtype=object).reshape(
            rounded.shape, order="F"
        )
    others = [i for i in range(len(columns)) if i not in tests and not (has_p and i == len(columns) - 1)]
    for i in others:
        cells[:, i] = format_sig(list(values[:, i]), digits)
    _reformat_false_zeros(cells, values, others, digits)
    cells[np.isnan(values)] = ""
    header = ["", *columns]
    stars = _format_p_column(cells, values[:, -1], digits) if has_p else None
    if stars is not None:
        header.append("")
        cells = np.column_stack([cells, stars])
    rows = [header] + [[str(name), *row] for name, row in zip(table.index, cells.tolist())]
    return _layout(rows) + (["---", SIGNIF_LEGEND] if stars is not None else [])


def _reformat_false_zeros(cells: np.ndarray, values: np.ndarray, columns: list[int], digits: int) -> None:
    """Cells that print as zero but are not (or the reverse) get ``digits - 1`` digits of their own, as printCoefmat."""
    for i in columns:
        rows = [
            r
            for r in range(values.shape[0])
            if np.isfinite(values[r, i]) and (values[r, i] == 0) != (float(cells[r, i]) == 0)
        ]
        if rows:
            for r, text in zip(rows, format_sig([values[r, i] for r in rows], max(1, digits - 1))):
                cells[r, i] = text


def _format_p_column(cells: np.ndarray, pvalues: np.ndarray, digits: int) -> np.ndarray | None:
    """Fill the p-value column (``format.pval``); the stars column if any p < 0.1, else None."""
    ok = np.isfinite(pvalues)
    if not ok.any():
        return None
    cells[np.flatnonzero(ok), -1] = format_pval(pvalues[ok], max(1, min(5, digits - 1)))
    if not np.any(pvalues[ok] < 0.1):
        return None
    return np.array([s.ljust(3) for s in signif_stars(pvalues)], dtype=object)


def _layout(rows: list[list[str]]) -> list[str]:
    """R's ``print.default`` of a character matrix, ``right = TRUE``: row names left, cells right-justified."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        lines.append(" ".join(cells).rstrip())
    return lines


# --- R's print of a numeric matrix -------------------------------------------------------------


def matrix_lines(table: pd.DataFrame, digits: int = 7) -> list[str]:
    """The rows of ``table`` as R prints a numeric matrix: each column to ``digits`` significant digits."""
    values = np.array(table.to_numpy(dtype=float, na_value=np.nan))  # a copy: zapped in place
    columns = [format_sig(list(values[:, i]), digits) for i in range(values.shape[1])]
    rows = [["", *map(str, table.columns)]] + [
        [str(name), *(column[r] for column in columns)] for r, name in enumerate(table.index)
    ]
    return _layout(rows)
