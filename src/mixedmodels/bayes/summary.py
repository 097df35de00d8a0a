"""The printed summary of a Bayesian mixed model (in the spirit of brms' and rstanarm's)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..format import Printable

__all__ = ["BayesSummary"]


def _fmt_table(table: pd.DataFrame) -> str:
    shown = table.copy()
    for col in shown.columns:
        if col.startswith("ess"):
            shown[col] = shown[col].map(lambda v: "NA" if not np.isfinite(v) else f"{v:.0f}")
        elif col == "r_hat":
            shown[col] = shown[col].map(lambda v: "NA" if not np.isfinite(v) else f"{v:.3f}")
        else:
            shown[col] = shown[col].map(lambda v: "NA" if not np.isfinite(v) else f"{v:.4g}")
    return shown.to_string()


class BayesSummary(Printable):
    """Printable summary; ``.table`` holds the numbers (one row per parameter)."""

    def __init__(self, result, prob: float = 0.95):
        self.result = result
        self.prob = prob
        self.table = result.summary_table(prob)

    def _header(self) -> list[str]:
        r = self.result
        fam = r.family
        kind = "linear" if fam.name == "gaussian" and fam.link.name == "identity" else "generalized linear"
        groups = ", ".join(f"{g}, {n}" for g, n in r.ngroups.items())
        mixed = " mixed" if r.terms else ""
        lines = [
            f"Bayesian {kind}{mixed} model ({'prior draws' if r.prior_only else 'NUTS, NumPyro'})",
            f" Family: {fam.name} ( {fam.link.name} )",
            f"Formula: {r.formula}",
            f"   Data: {r.nobs} observations"
            + (f"; groups: {groups}" if r.terms else " (no groups: complete pooling)"),
        ]
        if r.prior_only:
            lines.append(f"  Draws: {r.nchains * r.ndraws} independent draws from the prior")
        else:
            s = r.settings
            lines.append(
                f"  Draws: {r.nchains} chains x {r.ndraws} draws after {s.warmup} warmup; "
                f"{r.nchains * r.ndraws} in total; seed {r.seed}"
            )
            d = r.diagnostics
            lines.append(
                f"  Checks: {d['divergences']} divergent transitions; largest R-hat "
                f"{d['max_r_hat']:.3f}; {d['max_tree_depth_hits']} hits of max tree depth"
            )
        return lines

    def lines(self) -> list[str]:
        t = self.table
        fixed = t.loc[[n for n in self.result.fixef_names]]
        ranpars = t.drop(index=fixed.index)
        out = self._header()
        if len(ranpars):
            out += ["", "Group-level and residual parameters:", _fmt_table(ranpars)]
        out += ["", "Population-level effects (fixed effects):", _fmt_table(fixed)]
        pct = f"{self.prob * 100:g} %"
        out += [
            "",
            f"mean and sd of the posterior; {pct} highest-density intervals; mcse: Monte-Carlo SE of the mean;",
            "ess: effective sample sizes; r_hat: rank-normalised split R-hat (trust draws with r_hat <= 1.01).",
            "Priors: .prior_summary()",
        ]
        return out
