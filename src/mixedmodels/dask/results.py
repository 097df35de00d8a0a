"""Results of fits on Dask: the in-memory results, with lazy row-level outputs.

:class:`DaskLmerResults` is an :class:`~mixedmodels.lmm.results.LmerResults` (and
:class:`~.glmm.DaskGlmerResults` a :class:`~mixedmodels.glmm.results.GlmerResults`):
everything computed from the blocks (fixed effects, vcov, variance
components, conditional modes and variances, ``coef()``, information
criteria, Satterthwaite df, likelihood-ratio tests, F tests per term) is the
in-memory code; what that code reads of the rows comes from one more pass
(Satterthwaite's residuals; type III hypotheses, :mod:`.hypotheses`).
What is row-shaped (``fitted``, ``residuals()``, ``predict()``,
``simulate()``) is a lazy dask Series or DataFrame (:mod:`.lazy`), indexed
like the data's rows; ``compute()`` it, or write it out with
``to_parquet``.  The summary's scaled-residual quantiles come from one more
pass; beyond a few thousand rows they are approximate (within 0.05 % of the
rank, :mod:`.quantiles`) and the summary says so.

What needs all rows in one process's memory raises
:class:`~mixedmodels.errors.NotOnDaskError`: Kenward-Roger (n x n work) here,
and anything else reaching for the rows through the placeholders of
:class:`~.inputs.DaskModelInputs`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from .._validate import Duck, Frame, Integer, OneOf, Text, argument_kinds, check_arguments
from ..errors import NotOnDaskError
from ..lmm.results import LmerResults
from ..lmm.summary import LmerSummary
from . import lazy

__all__ = ["DaskLmerResults", "DaskLmerSummary", "LazyRows", "dask_quantiles", "as_dask_results"]

_KENWARD_ROGER = (
    "Kenward-Roger's df need n x n matrices of the observations, which a fit on Dask never forms; "
    "use ddf='satterthwaite' (computed from the summed cross-products), or fit the data in memory"
)


def _refuse_kenward_roger(ddf: str | None) -> None:
    from ..inference.ddf import normalize_ddf

    if normalize_ddf(ddf) == "kenward-roger":
        raise NotOnDaskError(_KENWARD_ROGER)


NEWDATA = OneOf(
    Frame(), Duck("npartitions", "compute", what="a dask DataFrame"), allow_none=True, what="a pandas or dask DataFrame"
)


class LazyRows:
    """Row-level outputs of a fit on Dask, as lazy dask collections (shared by the lmer and glmer results)."""

    @property
    def data_passes(self) -> int:
        """Passes over the data the fit made (see the model's ``data_passes``)."""
        return self.model.data_passes

    @property
    def fitted(self):
        """Fitted values (a lazy dask Series indexed like the data's used rows)."""
        return lazy.fitted(self)

    @argument_kinds(newdata=NEWDATA)
    def predict(
        self,
        newdata: Any = None,
        re_form: Any = None,
        allow_new_levels: bool = False,
        type: str = "response",
        **kwargs: Any,
    ):
        """Predictions (lme4's predict): lazy for the fit's rows or a dask ``newdata``; a pandas Series for pandas ``newdata``."""
        check_arguments(locals())
        return lazy.predict(self, newdata, re_form=re_form, allow_new_levels=allow_new_levels, type=type, **kwargs)

    def simulate(self, nsim: int = 1, seed: Any = None, newdata: Any = None, use_re: bool = False, **kwargs: Any):
        """Simulated responses for the fit's rows, as a lazy dask DataFrame (columns ``sim_1`` ...)."""
        check_arguments(locals())
        asked = (["newdata"] if newdata is not None else []) + sorted(k for k, v in kwargs.items() if v is not None)
        if asked:
            raise NotOnDaskError(
                f"simulate({', '.join(a + '=' for a in asked)}) of a fit on Dask is not available: "
                "it draws, lazily, for the fit's own rows at the fitted parameters; for new rows, "
                "predict on them and draw from there"
            )
        return lazy.simulate(self, nsim=nsim, seed=seed, use_re=use_re)


def dask_quantiles(summary: LmerSummary) -> tuple[np.ndarray, bool]:
    """The scaled Pearson residuals' min, quartiles and max from one pass (exact unless the data are large)."""
    from .quantiles import series_quantiles

    resid = summary.result.residuals("pearson", scaled=True)
    return series_quantiles(resid, [0, 0.25, 0.5, 0.75, 1])


class DaskLmerSummary(LmerSummary):
    """lme4's summary of a fit on Dask; the residual quantiles are approximate for more than a few thousand rows."""

    def residual_quantiles(self) -> tuple[np.ndarray, bool]:
        return dask_quantiles(self)


@dataclass(frozen=True, eq=False)
class DaskLmerResults(LazyRows, LmerResults):
    """A linear mixed model fitted on Dask (see the module docstring)."""

    def residuals(self, type: str = "response", scaled: bool = False):
        """Residuals (``"response"`` or ``"pearson"``; ``scaled`` divides by sigma), a lazy dask Series."""
        check_arguments(locals())
        return lazy.residuals(self, type=type, scaled=scaled)

    def coef_table(self, ddf: str | None = None) -> pd.DataFrame:
        check_arguments(locals())
        _refuse_kenward_roger(ddf)
        return super().coef_table(ddf=ddf)

    @argument_kinds(type=OneOf(Integer(1, 3), Text(), what="3 or 1 (or 'III', 'I')"))
    def anova(self, ddf: str = "satterthwaite", type: int | str = 3) -> pd.DataFrame:
        """lmerTest's F tests per term (Satterthwaite): type III's hypotheses take one pass, type I's none."""
        check_arguments(locals())
        _refuse_kenward_roger(ddf)
        return super().anova(ddf=ddf, type=type)

    def summary(self, ddf: str | None = None) -> DaskLmerSummary:
        check_arguments(locals())
        _refuse_kenward_roger(ddf)
        return DaskLmerSummary(self, ddf=ddf)

    def __repr__(self) -> str:
        return super().__repr__().replace("<LmerResults", "<DaskLmerResults", 1)


def as_dask_results(result: LmerResults, kind: type | None = None, **extra: Any) -> LmerResults:
    """The same results as the Dask kind (lazy row-level outputs): ``kind``, by default :class:`DaskLmerResults`."""
    kind = DaskLmerResults if kind is None else kind
    names = {g.name for g in fields(kind)}
    values = {f.name: getattr(result, f.name) for f in fields(result) if f.init and f.name in names}
    return kind(**values, **extra)
