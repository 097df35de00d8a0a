"""Exceptions and warnings raised by mixedmodels.

Every problem with user input raises a subclass of :class:`MixedModelsError`
(itself a :class:`ValueError`) whose message names the column, term or level
at fault and says what to do about it.
"""

from __future__ import annotations

__all__ = [
    "MixedModelsError",
    "FormulaError",
    "DataError",
    "ModelSpecError",
    "NotOnDaskError",
    "MixedModelsWarning",
    "SingularFitWarning",
    "ConvergenceWarning",
    "RankDeficiencyWarning",
    "ScaleWarning",
]


class MixedModelsError(ValueError):
    """Base class of every error mixedmodels raises for bad input."""


class FormulaError(MixedModelsError):
    """The model formula cannot be parsed or uses lme4 syntax incorrectly."""


class DataError(MixedModelsError):
    """The data do not fit the formula: missing columns, bad values, no rows."""


class ModelSpecError(MixedModelsError):
    """The model cannot be estimated as specified (too many random effects, ...)."""


class NotOnDaskError(MixedModelsError):
    """Asked of a fit on Dask, this needs the rows in one process's memory (e.g. Kenward-Roger's n x n work)."""


class MixedModelsWarning(UserWarning):
    """Base class of the warnings mixedmodels emits."""


class SingularFitWarning(MixedModelsWarning):
    """The fit is on the boundary of the parameter space ("boundary (singular) fit")."""


class ConvergenceWarning(MixedModelsWarning):
    """The optimizer did not converge, or the convergence checks failed."""


class RankDeficiencyWarning(MixedModelsWarning):
    """The fixed-effects model matrix is rank deficient; columns were dropped."""


class ScaleWarning(MixedModelsWarning):
    """Predictors are on very different scales; rescaling is advised."""
