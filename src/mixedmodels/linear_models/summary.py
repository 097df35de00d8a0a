"""R's ``summary(lm)`` and ``summary(glm)`` layouts.

The coefficient table is R's ``printCoefmat`` (:func:`mixedmodels.format.coefmat_lines`):
estimates and standard errors share one format, test statistics are rounded
to ``digits - 1`` decimals, p-values go through ``format.pval`` and
significance stars are added when some p-value is below 0.1.  The references
these layouts are tested against were printed by R in the C locale, so the
legend of the stars quotes with ``'``.
"""

from __future__ import annotations

import numpy as np

from ..fitted import Fit, GeneralizedFit
from ..format import Printable, coefmat_lines, format_g, format_pval, format_sig, quantile_lines, signif_legend

__all__ = ["LmSummary", "GlmSummary"]

_LEGEND = signif_legend(utf8=False)


class LmSummary(Printable):
    """``summary(lm)``: residual quantiles, coefficients with t tests, R-squared and the F test."""

    def __init__(self, result: Fit):
        """``result``: an :class:`~.results.LmResults`."""
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
        out += quantile_lines(resid) if r.df_resid > 5 else [" ".join(format_sig(list(resid), 4))]
        out += ["", "Coefficients:", *coefmat_lines(r.coef_table(), legend=_LEGEND)]
        out += ["", f"Residual standard error: {format_g(r.sigma)} on {r.df_resid} degrees of freedom"]
        if inputs.n_dropped:
            out.append(
                f"  ({inputs.n_dropped} observation{'s' if inputs.n_dropped != 1 else ''} deleted due to missingness)"
            )
        value, numdf, dendf = r.fstatistic
        if numdf > 0:
            from scipy import stats

            p = format_pval([stats.f.sf(value, numdf, dendf)], 4)[0]
            out.append(
                f"Multiple R-squared:  {format_g(r.r_squared)},\tAdjusted R-squared:  {format_g(r.adj_r_squared)} "
            )
            out.append(f"F-statistic: {format_g(value)} on {numdf} and {dendf} DF,  p-value: {p}")
        return out + [""]


class GlmSummary(Printable):
    """``summary(glm)``: coefficients with z (or t) tests, dispersion, deviances, AIC, iterations."""

    def __init__(self, result: GeneralizedFit):
        """``result``: a :class:`~.results.GlmResults`."""
        self.result = result

    def lines(self) -> list[str]:
        r = self.result
        call = (
            f"glm(formula = {r.formula}, family = {r.family_label}"
            + (", weights = given" if r.model.inputs.weights is not None else "")
            + ")"
        )
        out = ["", "Call:", call, "", "Deviance Residuals: "]
        out += quantile_lines(r.residuals("deviance").to_numpy(), gap=2)
        out += ["", "Coefficients:", *coefmat_lines(r.coef_table(), legend=_LEGEND)]
        dispersion = "1" if not r.estimates_dispersion else format_sig([r.dispersion], 7)[0]
        how = "taken to be" if not r.estimates_dispersion else "taken to be"
        out += ["", f"(Dispersion parameter for {r.family_name} family {how} {dispersion})", ""]
        devs = format_sig([r.null_deviance, r.deviance], 5)
        dfs = [str(r.df_null), str(r.df_resid)]
        width = max(map(len, dfs))
        out.append(f"    Null deviance: {devs[0]}  on {dfs[0].rjust(width)}  degrees of freedom")
        out.append(f"Residual deviance: {devs[1]}  on {dfs[1].rjust(width)}  degrees of freedom")
        if r.model.inputs.n_dropped:
            out.append(f"  ({r.model.inputs.n_dropped} observations deleted due to missingness)")
        out.append(f"AIC: {format_sig([r.aic], 5)[0]}")
        out += ["", f"Number of Fisher Scoring iterations: {r.iterations}", ""]
        return out
