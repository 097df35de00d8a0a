"""R's ``summary(lm)`` and ``summary(glm)`` layouts, and R's number formatting for them.

The coefficient table follows R's ``printCoefmat``: estimates and standard
errors share one format, test statistics are rounded to ``digits - 1``
decimals, p-values go through ``format.pval`` (fixed notation down to 1e-4,
scientific below, ``< 2e-16`` under machine epsilon) and significance stars
are added when some p-value is below 0.1.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .inference.printing import format_pval
from .inference.printing import signif_stars as _signif_stars
from .summary import _Printable, _table, zapsmall

if TYPE_CHECKING:
    from .glm_fit import GlmResults
    from .linear_models import LmResults

__all__ = ["LmSummary", "GlmSummary", "format_numbers", "format_pvalues", "signif_stars", "coefficient_lines"]

SIGNIF_LEGEND = "Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1"


def _significant(value: float, digits: int) -> tuple[int, int]:
    """(significant digits needed, decimal exponent) to show ``value`` to ``digits`` digits."""
    if value == 0:
        return 1, 0
    mantissa, exponent = f"{abs(value):.{digits - 1}e}".split("e")
    return max(len(mantissa.replace(".", "").rstrip("0")), 1), int(exponent)


def format_numbers(values: Sequence[float], digits: int = 7) -> list[str]:
    """Format numbers jointly as R's ``format(x, digits=)``: fixed or scientific, whichever is narrower."""
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return ["NA" if v is None or not math.isnan(v) else "NaN" for v in values]
    info = [_significant(v, digits) for v in finite]
    decimals = max(max(sig - 1 - exp, 0) for sig, exp in info)
    fixed = [f"{v:.{decimals}f}" for v in finite]
    mant = max(sig - 1 for sig, _ in info)
    sci = [_sci(v, mant) for v in finite]
    chosen = fixed if max(map(len, fixed)) <= max(map(len, sci)) else sci
    out, it = [], iter(chosen)
    for v in values:
        out.append(next(it) if v is not None and math.isfinite(v) else ("NaN" if v is not None and math.isnan(v) else "NA"))
    return out


def _sci(value: float, mantissa_digits: int) -> str:
    text = f"{value:.{mantissa_digits}e}"
    mantissa, exponent = text.split("e")
    sign, number = exponent[0], exponent[1:].lstrip("0")
    return f"{mantissa}e{sign}{number.rjust(2, '0')}"


def format_pvalues(pvalues: Sequence[float], digits: int = 3) -> list[str]:
    """R's ``format.pval``: fixed down to 1e-4, scientific below, ``"< 2e-16"``-style under epsilon.

    The one implementation is :func:`mixedmodels.inference.printing.format_pval`.
    """
    return format_pval(pvalues, digits)


def signif_stars(p: float) -> str:
    """R's significance code of one p-value (``***`` p <= 0.001 ... ``" "`` above 0.1, ``""`` if not finite)."""
    return _signif_stars([p])[0]


def coefficient_lines(names: Sequence[str], est, se, stat, p, stat_name: str, p_name: str, digits: int = 4) -> list[str]:
    """R's ``printCoefmat`` of Estimate, Std. Error, statistic and p-value columns, with stars."""
    est, se, stat = np.asarray(est, float), np.asarray(se, float), np.asarray(stat, float)
    joint = np.concatenate([est, se])
    finite = np.abs(joint[np.isfinite(joint) & (joint != 0)])
    digmin = 1 + math.floor(math.log10(finite.min())) if finite.size else 1
    rounded = format_numbers([round(v, max(1, digits - digmin)) for v in joint], digits)
    tvals = format_numbers([round(v, max(1, min(5, digits - 1))) for v in stat], digits)
    header = ["", "Estimate", "Std. Error", stat_name]
    align = "lrrr"
    rows = [[n, rounded[i], rounded[len(est) + i], tvals[i]] for i, n in enumerate(names)]
    legend: list[str] = []
    if p is not None:
        p = np.asarray(p, float)
        header.append(p_name)
        align += "r"
        ptext = format_pvalues(p, max(1, min(5, digits - 1)))
        stars = any(np.isfinite(p) & (p < 0.1))
        for row, text, value in zip(rows, ptext, p):
            row.append(text)
            if stars:
                row.append(signif_stars(value))
        if stars:
            header.append("")
            align += "l"
            legend = ["---", SIGNIF_LEGEND]
    return _table([header] + rows, align) + legend


def _quantile_lines(values: np.ndarray, digits: int = 4, gap: int = 1) -> list[str]:
    """Min, quartiles and max as R prints ``zapsmall(quantile(x), digits + 1)``."""
    names = ["Min", "1Q", "Median", "3Q", "Max"]
    quantiles = zapsmall(np.quantile(values, [0, 0.25, 0.5, 0.75, 1]), digits + 1)
    text = format_numbers(list(quantiles), digits)
    width = max(max(map(len, names)), max(map(len, text)))
    sep = " " * gap
    return [sep.join(n.rjust(width) for n in names), sep.join(t.rjust(width) for t in text)]


def _g(value: float, digits: int = 4) -> str:
    """R's ``formatC(x, digits=)`` (C's %g)."""
    return f"{value:.{digits}g}"


class LmSummary(_Printable):
    """``summary(lm)``: residual quantiles, coefficients with t tests, R-squared and the F test."""

    def __init__(self, result: "LmResults"):
        self.result = result

    def lines(self) -> list[str]:
        r = self.result
        inputs = r.model.inputs
        weighted = inputs.weights is not None and np.ptp(inputs.weights) > 0
        call = f"lm(formula = {r.formula}" + (", weights = given" if inputs.weights is not None else "") + ")"
        resid = r.residuals("pearson").to_numpy()
        if inputs.weights is not None:
            resid = resid[inputs.weights > 0]
        out = ["", "Call:", call, "", ("Weighted " if weighted else "") + "Residuals:"]
        out += _quantile_lines(resid) if r.df_resid > 5 else [" ".join(format_numbers(list(resid), 4))]
        table = r.coef_table()
        out += ["", "Coefficients:"]
        out += coefficient_lines(r.fixef_names, table["Estimate"], table["Std. Error"], table["t value"],
                                 table["Pr(>|t|)"], "t value", "Pr(>|t|)")
        out += ["", f"Residual standard error: {_g(r.sigma)} on {r.df_resid} degrees of freedom"]
        if inputs.n_dropped:
            out.append(f"  ({inputs.n_dropped} observation{'s' if inputs.n_dropped != 1 else ''} deleted due to missingness)")
        value, numdf, dendf = r.fstatistic
        if numdf > 0:
            from scipy import stats

            p = format_pvalues([stats.f.sf(value, numdf, dendf)], 4)[0]
            out.append(f"Multiple R-squared:  {_g(r.r_squared)},\tAdjusted R-squared:  {_g(r.adj_r_squared)} ")
            out.append(f"F-statistic: {_g(value)} on {numdf} and {dendf} DF,  p-value: {p}")
        return out + [""]


class GlmSummary(_Printable):
    """``summary(glm)``: coefficients with z (or t) tests, dispersion, deviances, AIC, iterations."""

    def __init__(self, result: "GlmResults"):
        self.result = result

    def lines(self) -> list[str]:
        r = self.result
        call = f"glm(formula = {r.formula}, family = {r.family_label}" + (
            ", weights = given" if r.model.inputs.weights is not None else "") + ")"
        out = ["", "Call:", call, "", "Deviance Residuals: "]
        out += _quantile_lines(r.residuals("deviance").to_numpy(), gap=2)
        table = r.coef_table()
        stat_name, p_name = table.columns[2], table.columns[3]
        out += ["", "Coefficients:"]
        out += coefficient_lines(r.fixef_names, table["Estimate"], table["Std. Error"], table[stat_name],
                                 table[p_name], stat_name, p_name)
        dispersion = "1" if not r.estimates_dispersion else format_numbers([r.dispersion], 7)[0]
        how = "taken to be" if not r.estimates_dispersion else "taken to be"
        out += ["", f"(Dispersion parameter for {r.family_name} family {how} {dispersion})", ""]
        devs = format_numbers([r.null_deviance, r.deviance], 5)
        dfs = [str(r.df_null), str(r.df_resid)]
        width = max(map(len, dfs))
        out.append(f"    Null deviance: {devs[0]}  on {dfs[0].rjust(width)}  degrees of freedom")
        out.append(f"Residual deviance: {devs[1]}  on {dfs[1].rjust(width)}  degrees of freedom")
        if r.model.inputs.n_dropped:
            out.append(f"  ({r.model.inputs.n_dropped} observations deleted due to missingness)")
        out.append(f"AIC: {format_numbers([r.aic], 5)[0]}")
        out += ["", f"Number of Fisher Scoring iterations: {r.iterations}", ""]
        return out
