"""mixedmodels: multilevel (mixed-effects) models with lme4's language and answers.

>>> import mixedmodels as mm
>>> df = mm.datasets.load("sleepstudy")
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", df)
>>> print(m.summary())

The pipeline, one folder per stage: data flow down the list, and a stage imports only the
stages above it (but for a few deferred doors such as ``m.confint()``):

    formula/     "y ~ x + (x | g)"  ->  fixed part and lme4's bar terms
    design/      model frame, y, X (R's contrasts), Z terms, theta <-> Lambda; inputs.py: lme4's lFormula
    linalg/      blocked [Z X y]'[Z X y] and its Cholesky factor, PIRLS, weighted least squares
    model        linear_models/model.py (lm, glm)   lmm/model.py (lmer)   glmm/model.py (glmer)
    fit          linear_models/irls.py   lmm/minimize.py (Newton, BFGS or BOBYQA over theta)   glmm/fit.py (two stages, Hessian)
    results      {linear_models,lmm,glmm}/results.py and summary.py, printed by format.py, read via fitted.py
    inference/   df, F tests, profiles, intervals, bootstrap, emmeans, anova; with predict.py, simulate.py
    on top       pooling/, planning/, plots/, explore/, bayes/, dask/ (data larger than memory), cli.py

Why it is laid out so: docs/architecture.md; tests/test_layering.py keeps it so.
Heavy modules are imported lazily, so ``import mixedmodels`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    ConvergenceWarning,
    DataError,
    FormulaError,
    MixedModelsError,
    MixedModelsWarning,
    ModelSpecError,
    NotOnDaskError,
    RankDeficiencyWarning,
    ScaleWarning,
    SingularFitWarning,
)
from .options import get_option, option_context, options

from ._version import __version__

# public name -> module that defines it (imported on first use)
_LAZY = {
    "lmer": "mixedmodels.lmm.model",
    "LinearMixedModel": "mixedmodels.lmm.model",
    "LmerResults": "mixedmodels.lmm.results",
    "OptimizerSettings": "mixedmodels.optim",
    "var_ident": "mixedmodels.design.residual",
    "cor_ar1": "mixedmodels.design.residual",
    "glmer": "mixedmodels.glmm.model",
    "GeneralizedLinearMixedModel": "mixedmodels.glmm.model",
    "glmer_nb": "mixedmodels.glmm.negbin",
    "GlmerResults": "mixedmodels.glmm.results",
    "families": "mixedmodels.families",
    "lm": "mixedmodels.linear_models.model",
    "glm": "mixedmodels.linear_models.model",
    "anova": "mixedmodels.inference.compare",
    "ranova": "mixedmodels.inference.compare",
    "bootstrap": "mixedmodels.inference.bootstrap",
    "emmeans": "mixedmodels.inference.emmeans",
    "contrast": "mixedmodels.inference.emmeans",
    "compare_pooling": "mixedmodels.pooling.compare",
    "plots": "mixedmodels.plots",
    "simulate_design": "mixedmodels.planning.study",
    "power": "mixedmodels.planning.power",
    "datasets": "mixedmodels.datasets",
    "bayes": "mixedmodels.bayes",
    "priors": "mixedmodels.bayes.priors",
    "explore": "mixedmodels.explore",
    "dask": "mixedmodels.dask",
}

__all__ = [
    "__version__",
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
    "options",
    "option_context",
    "get_option",
    *_LAZY,
]


if TYPE_CHECKING:  # what type checkers and editors see (``x as x``: a re-export);
    # at run time _LAZY imports each name on first use
    from . import bayes as bayes, datasets as datasets, explore as explore
    from . import dask as dask, families as families, plots as plots
    from .bayes import priors as priors
    from .design.residual import cor_ar1 as cor_ar1, var_ident as var_ident
    from .glmm.model import GeneralizedLinearMixedModel as GeneralizedLinearMixedModel, glmer as glmer
    from .glmm.negbin import glmer_nb as glmer_nb
    from .glmm.results import GlmerResults as GlmerResults
    from .inference.bootstrap import bootstrap as bootstrap
    from .inference.compare import anova as anova, ranova as ranova
    from .inference.emmeans import contrast as contrast, emmeans as emmeans
    from .linear_models.model import glm as glm, lm as lm
    from .lmm.model import LinearMixedModel as LinearMixedModel, lmer as lmer
    from .lmm.results import LmerResults as LmerResults
    from .optim import OptimizerSettings as OptimizerSettings
    from .planning.power import power as power
    from .planning.study import simulate_design as simulate_design
    from .pooling.compare import compare_pooling as compare_pooling

# public names that are modules themselves (mm.datasets.load, mm.families.Binomial, ...)
_LAZY_MODULES = {"datasets", "families", "plots", "bayes", "priors", "explore", "dask"}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'mixedmodels' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    value = module if name in _LAZY_MODULES else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
