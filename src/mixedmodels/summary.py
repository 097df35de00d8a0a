"""lme4's summary layout, as text (``print``) and HTML (Jupyter).

Numbers are formatted the way R's ``print`` does (``formatReal``): a column
shares one number of decimals, the fewest that show every entry to the
requested significant digits.
"""

from __future__ import annotations

import html
import math
import re
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    from .results import LmerResults

__all__ = ["LmerSummary", "format_r", "format_coef_se", "abbreviate", "zapsmall", "deparse_lines"]


def _decimals_needed(value: float, digits: int) -> int:
    """Decimals R needs to show ``value`` to ``digits`` significant digits (trailing zeros dropped)."""
    if value == 0 or not math.isfinite(value):
        return 0
    exponent = math.floor(math.log10(abs(value)))
    rounded = float(f"{value:.{digits - 1}e}")
    if rounded != 0:
        exponent = math.floor(math.log10(abs(rounded)))
    mantissa = f"{abs(rounded):.{digits - 1}e}".split("e")[0].replace(".", "").rstrip("0")
    nsig = max(len(mantissa), 1)
    return max(nsig - exponent - 1, 0)


def format_r(values: Sequence[float], digits: int = 4) -> list[str]:
    """Format numbers jointly as R's print does with ``digits`` significant digits."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    decimals = max((_decimals_needed(v, digits) for v in finite), default=0)
    decimals = min(decimals, 15)
    return [("NA" if v is None or not math.isfinite(v) else f"{v:.{decimals}f}") for v in values]


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


def format_coef_se(estimates: np.ndarray, std_errors: np.ndarray, digits: int = 4) -> list[str]:
    """Estimates then SEs formatted jointly as R's ``printCoefmat`` does.

    R first rounds both columns to ``max(1, digits - 1 - floor(log10(min |x|)))``
    decimals, then formats them together with ``digits`` significant digits.
    """
    values = np.concatenate([estimates, std_errors])
    nonzero = np.abs(values[np.isfinite(values) & (values != 0)])
    decimals = max(1, digits - 1 - math.floor(math.log10(nonzero.min()))) if nonzero.size else 1
    return format_r(list(np.round(values, decimals)), digits)


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


def _common_width(cells: list[str]) -> list[str]:
    """Right-justify formatted numbers to one width, as R's format() does."""
    width = max(len(c) for c in cells)
    return [c.rjust(width) for c in cells]


def _correlation_text(cov: np.ndarray) -> list[list[str]]:
    """Rows of the Corr columns of one term: row j lists its correlations with columns 0..j-1."""
    sd = np.sqrt(np.diag(cov))
    k = cov.shape[0]
    text = [[f"{cov[j, c] / (sd[j] * sd[c]):.2f}" if sd[j] * sd[c] > 0 else "NaN" for c in range(j)] for j in range(k)]
    for c in range(k - 1):
        column = _common_width([text[j][c] for j in range(c + 1, k)])
        for j, cell in zip(range(c + 1, k), column):
            text[j][c] = cell
    return text


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


def _table(rows: list[list[str]], align: str) -> list[str]:
    """Lay out string rows in columns; ``align`` has 'l' or 'r' per column."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(align))]
    lines = []
    for row in rows:
        cells = [c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(row, widths, align)]
        lines.append(" ".join(cells).rstrip())
    return lines


class _Printable:
    """Text that prints as itself: ``str()`` joins :meth:`lines`; notebooks show it preformatted."""

    def lines(self) -> list[str]:  # pragma: no cover - overridden
        raise NotImplementedError

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(str(self))}</pre>"


class LmerSummary(_Printable):
    """The printed summary of a fit; ``str()`` gives lme4's text layout."""

    def __init__(self, result: "LmerResults", ddf: str | None = None):
        self.result = result
        self.ddf = ddf
        if ddf is not None:  # refuse a bad method now, not when the summary is printed
            from .inference.ddf import coef_table

            coef_table(result, ddf=ddf)

    # --- sections -------------------------------------------------------------
    def _header(self) -> list[str]:
        r = self.result
        method = "REML" if r.REML else "maximum likelihood "
        title = f"Linear mixed model fit by {method} ['lmerMod']"
        if self._ddf is not None:
            name = "Satterthwaite's" if self._ddf == "satterthwaite" else "Kenward-Roger's"
            title = f"Linear mixed model fit by {method}. t-tests use {name} method [lmerModLmerTest]"
        formula = deparse_lines(r.formula)
        lines = [title, f"Formula: {formula[0]}", *(f"    {line}" for line in formula[1:])]
        if r.model.inputs.weights is not None:
            lines.append("Weights: given")
        lines.append("")
        if r.REML:
            lines.append(f"REML criterion at convergence: {r.objective:.1f}")
        else:
            names = ["AIC", "BIC", "logLik", "deviance", "df.resid"]
            vals = [f"{v:.1f}" for v in (r.aic, r.bic, r.loglik, r.deviance)] + [str(r.df_resid)]
            width = max(max(len(v) for v in vals), 8)
            lines.append(" ".join(n.rjust(width) for n in names))
            lines.append(" ".join(v.rjust(width) for v in vals))
        return lines

    def residual_quantiles(self) -> tuple[np.ndarray, bool]:
        """Min, quartiles and max of the scaled Pearson residuals, and whether they are approximate (here: exact)."""
        resid = self.result.residuals("pearson", scaled=True).to_numpy()
        return np.quantile(resid, [0, 0.25, 0.5, 0.75, 1]), False

    def _residuals(self) -> list[str]:
        raw, approximate = self.residual_quantiles()
        quantiles = zapsmall(np.asarray(raw, dtype=float), 5)
        names, values = ["Min", "1Q", "Median", "3Q", "Max"], format_r(list(quantiles))
        width = max(len(c) for c in names + values)  # R prints a named vector in equal-width columns
        title = "Scaled residuals (approximate quantiles): " if approximate else "Scaled residuals: "
        return ["", title, " ".join(n.rjust(width) for n in names), " ".join(v.rjust(width) for v in values)]

    def _random_effects(self) -> list[str]:
        r = self.result
        vc = r.varcorr
        variances = vc[vc["var2"].isna()]
        var_text = _common_width(format_r(list(variances["vcov"])))
        sd_text = _common_width(format_r(list(variances["sdcor"])))
        max_k = max(t.ncols for t in r.terms)
        rows = [["Groups", "Name", "Variance", "Std.Dev."] + (["Corr"] + [""] * (max_k - 2) if max_k > 1 else [])]
        idx = 0
        for (grp, cov), term in zip(r.covariances.items(), r.terms):
            corr = _correlation_text(cov)
            for j, name in enumerate(term.column_names):
                rows.append([grp if j == 0 else "", name, var_text[idx], sd_text[idx], *corr[j]])
                idx += 1
        if (vc["grp"] == "Residual").any():  # binomial and Poisson fits have none
            rows.append(["Residual", "", var_text[idx], sd_text[idx]])
        width = len(rows[0])
        rows = [row + [""] * (width - len(row)) for row in rows]
        return ["", "Random effects:", *[" " + line for line in _table(rows, "l" * width)]]

    def _groups_line(self) -> list[str]:
        r = self.result
        groups = "; ".join(f"{g}, {n}" for g, n in r.ngroups.items())
        lines = [f"Number of obs: {r.nobs}, groups:  {groups}"]
        dropped = r.model.inputs.n_dropped
        if dropped:
            lines.append(f"({dropped} observation{'s' if dropped != 1 else ''} deleted due to missingness)")
        return lines

    @property
    def _ddf(self) -> str | None:
        from .inference.ddf import normalize_ddf

        return normalize_ddf(self.ddf)

    def _fixed_effects(self) -> list[str]:
        r = self.result
        if not r.fixef_names:  # lme4's summary has no fixed-effects section then
            return []
        if self._ddf is not None:  # lmerTest's table: df, p-values and stars
            from .inference.printing import coefmat_lines

            return ["", "Fixed effects:", *coefmat_lines(r.coef_table(ddf=self._ddf))]
        est, se = r.fixef.to_numpy(), r.se.to_numpy()
        joint = format_coef_se(est, se)
        tval = format_r([round(t, 3) for t in est / se])
        rows = [["", "Estimate", "Std. Error", "t value"]]
        for i, name in enumerate(r.fixef_names):
            rows.append([name, joint[i], joint[len(est) + i], tval[i]])
        return ["", "Fixed effects:", *_table(rows, "lrrr")]

    def _correlation(self) -> list[str]:
        r = self.result
        names = r.fixef_names
        if len(names) < 2:
            return []
        cov = r.vcov.to_numpy()
        sd = np.sqrt(np.diag(cov))
        corr = cov / np.outer(sd, sd)
        rows = [[""] + [abbreviate(n) for n in names[:-1]]]
        for i in range(1, len(names)):  # lme4: abbreviate(rownames, 11), abbreviate(colnames, 6)
            rows.append([abbreviate(names[i], 11)] + [f"{corr[i, j]:.3f}" for j in range(i)] + [""] * (len(names) - 1 - i))
        return ["", "Correlation of Fixed Effects:", *_table(rows, "l" + "r" * (len(names) - 1))]

    def _footer(self) -> list[str]:
        """lme4's closing lines: the optimizer's verdict and the singular-fit note, when they matter."""
        r = self.result
        if r.optinfo.converged and not r.is_singular:
            return []
        status = "0 (OK)" if r.optinfo.converged else f"{r.optinfo.return_code} ({r.optinfo.message})"
        lines = [f"optimizer ({r.optinfo.optimizer}) convergence code: {status}", *r.optinfo.warnings]
        if r.is_singular:
            lines.append("boundary (singular) fit: see help('isSingular')")
        return lines

    # --- output ---------------------------------------------------------------
    def lines(self) -> list[str]:
        return (
            self._header()
            + self._residuals()
            + self._random_effects()
            + self._groups_line()
            + self._fixed_effects()
            + self._correlation()
            + self._footer()
        )
