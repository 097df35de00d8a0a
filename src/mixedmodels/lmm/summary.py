"""lme4's summary layout, as text (``print``) and HTML (Jupyter).

Numbers are formatted the way R's ``print`` does (:mod:`mixedmodels.format`):
a column shares one number of decimals, the fewest that show every entry to
the requested significant digits.
"""

from __future__ import annotations

import numpy as np

from ..fitted import MixedFit
from ..format import (
    Printable,
    abbreviate,
    coefmat_lines,
    common_width,
    deparse_lines,
    five_number_lines,
    format_r,
    table_lines,
)

__all__ = ["LmerSummary"]


def _correlation_text(cov: np.ndarray) -> list[list[str]]:
    """Rows of the Corr columns of one term: row j lists its correlations with columns 0..j-1."""
    sd = np.sqrt(np.diag(cov))
    k = cov.shape[0]
    text = [[f"{cov[j, c] / (sd[j] * sd[c]):.2f}" if sd[j] * sd[c] > 0 else "NaN" for c in range(j)] for j in range(k)]
    for c in range(k - 1):
        column = common_width([text[j][c] for j in range(c + 1, k)])
        for j, cell in zip(range(c + 1, k), column):
            text[j][c] = cell
    return text


def _structure_text(term, cov: np.ndarray) -> list[list[str]]:
    """The Corr cells of one term: lme4's triangle (unstructured), none (``diag``), or
    glmmTMB's ``0.92 (cs)`` / ``0.85 (ar1)`` on the first row (the common or lag-1 correlation)."""
    name = term.structure.name
    if name == "us":
        return _correlation_text(cov)
    if name == "diag":
        return [[] for _ in range(cov.shape[0])]
    sd = np.sqrt(np.diag(cov))
    rho = cov[1, 0] / (sd[1] * sd[0]) if sd[0] * sd[1] > 0 else np.nan
    return [[f"{rho:.2f} ({name})"]] + [[""] for _ in range(cov.shape[0] - 1)]


class LmerSummary(Printable):
    """The printed summary of a fit; ``str()`` gives lme4's text layout."""

    def __init__(self, result: MixedFit, ddf: str | None = None):
        self.result = result
        self.ddf = ddf
        if ddf is not None:  # refuse a bad method now, not when the summary is printed
            from ..inference.ddf import (
                coef_table,
            )  # upward: summary(ddf=...) is lmerTest's (see tests/test_layering.py)

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
        quantiles, approximate = self.residual_quantiles()
        title = "Scaled residuals (approximate quantiles): " if approximate else "Scaled residuals: "
        return ["", title, *five_number_lines(quantiles)]

    def _random_effects(self) -> list[str]:
        r = self.result
        vc = r.varcorr
        variances = vc[vc["var2"].isna()]
        var_text = common_width(format_r(list(variances["vcov"])))
        sd_text = common_width(format_r(list(variances["sdcor"])))
        corrs = [_structure_text(term, cov) for cov, term in zip(r.covariances.values(), r.terms)]
        ncorr = max(len(row) for corr in corrs for row in corr)
        rows = [["Groups", "Name", "Variance", "Std.Dev."] + (["Corr"] + [""] * (ncorr - 1) if ncorr else [])]
        idx = 0
        for (grp, cov), term, corr in zip(r.covariances.items(), r.terms, corrs):
            for j, name in enumerate(term.column_names):
                rows.append([grp if j == 0 else "", name, var_text[idx], sd_text[idx], *corr[j]])
                idx += 1
        if (vc["grp"] == "Residual").any():  # binomial and Poisson fits have none
            rows.append(["Residual", "", var_text[idx], sd_text[idx]])
        width = len(rows[0])
        rows = [row + [""] * (width - len(row)) for row in rows]
        return ["", "Random effects:", *[" " + line for line in table_lines(rows, "l" * width)]]

    def _residual_structure(self) -> list[str]:
        """nlme's lines for a residual structure (SD ratios per level, AR(1) phi), if the model has one."""
        residual = getattr(self.result.model, "residual", None)
        if residual is None:
            return []
        return residual.structure.describe(residual.params)

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
        from ..inference.ddf import normalize_ddf  # upward: summary(ddf=...)

        return normalize_ddf(self.ddf)

    def _fixed_effects(self) -> list[str]:
        """lme4's table (Estimate, Std. Error, t value), or lmerTest's with df, p-values and stars."""
        if not self.result.fixef_names:  # lme4's summary has no fixed-effects section then
            return []
        return ["", "Fixed effects:", *coefmat_lines(self.result.coef_table(ddf=self._ddf))]

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
            rows.append(
                [abbreviate(names[i], 11)]
                + [f"{round(corr[i, j], 3) + 0.0:.3f}" for j in range(i)]
                + [""] * (len(names) - 1 - i)
            )
        return ["", "Correlation of Fixed Effects:", *table_lines(rows, "l" + "r" * (len(names) - 1))]

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
            + self._residual_structure()
            + self._groups_line()
            + self._fixed_effects()
            + self._correlation()
            + self._footer()
        )
