"""The printed summary of a glmer fit: lme4's layout for ``glmerMod``.

Residual quantiles, the random-effects table (no Residual row for families
without a dispersion), the groups line, the correlation of fixed effects and
the closing lines are :class:`~mixedmodels.lmm.summary.LmerSummary`'s; the
header names the family and the approximation, and the coefficient table is
R's ``printCoefmat`` with z tests.
"""

from __future__ import annotations

import textwrap

from ..format import coefmat_lines, deparse_lines
from ..lmm.summary import LmerSummary

__all__ = ["GlmerSummary"]


class GlmerSummary(LmerSummary):
    """The printed summary of a glmer fit; ``str()`` gives lme4's text layout (see the module docstring)."""

    def _header(self) -> list[str]:
        r = self.result  # a GlmerResults
        title = r.method_title
        if len(title) + 5 + len("glmerMod") > 80:  # lme4 wraps long titles at width - 2, indenting by 2
            lines = textwrap.wrap(title, width=77, subsequent_indent="  ", break_on_hyphens=False)
            lines[-1] += " [glmerMod]"
        else:
            lines = [f"{title} ['glmerMod']"]
        lines.append(f" Family: {r.family.name}  ( {r.link} )")
        formula = deparse_lines(r.formula)
        lines.append(f"Formula: {formula[0]}")
        lines.extend(f"    {line}" for line in formula[1:])
        if r.model.inputs.weights is not None:
            lines.append("Weights: given")
        names = ["AIC", "BIC", "logLik", "deviance", "df.resid"]
        vals = [f"{v:.1f}" for v in (r.aic, r.bic, r.loglik, -2.0 * r.loglik)] + [str(r.df_resid)]
        width = max(max(len(v) for v in vals), 8)
        return lines + ["", " ".join(n.rjust(width) for n in names), " ".join(v.rjust(width) for v in vals)]

    def _fixed_effects(self) -> list[str]:
        if not self.result.fixef_names:  # lme4's summary has no fixed-effects section then
            return []
        return ["", "Fixed effects:", *coefmat_lines(self.result.coef_table())]
