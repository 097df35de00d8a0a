"""Bayesian mixed models: lme4's formulas fitted with priors by NUTS (NumPyro on JAX).

>>> import mixedmodels as mm
>>> sleep = mm.datasets.load("sleepstudy")
>>> b = mm.bayes.lmer("Reaction ~ Days + (Days | Subject)", sleep, draws=1000, chains=4, seed=1)
>>> print(b.summary())     # posterior mean, SD, 95 % HDI, R-hat, ESS
>>> b.hdi(0.95)            # tidy intervals, including each Subject's effects
>>> b.ranef()              # posterior means of the group effects
>>> b.idata                # ArviZ InferenceData
>>> b.posterior_predict()  # posterior predictive draws

The model is the frequentist one (same model matrices as ``mm.lmer`` and
``mm.glmer``) with priors from :mod:`mixedmodels.bayes.priors` (``mm.priors``) (data-scaled
weakly-informative defaults, or your own), non-centred random effects and
LKJ priors on correlation matrices.  Needs the optional extra:
``pip install mixedmodels[bayes]`` (NumPyro, JAX, ArviZ); nothing heavy is
imported until a model is sampled.
"""

from __future__ import annotations

import importlib
from typing import Any

from .diagnostics import SamplingWarning

_LAZY = {
    "lmer": "mixedmodels.bayes.fit",
    "glmer": "mixedmodels.bayes.fit",
    "sample": "mixedmodels.bayes.fit",
    "BayesModel": "mixedmodels.bayes.model",
    "BayesResults": "mixedmodels.bayes.results",
    "compare_pooling_bayes": "mixedmodels.bayes.pooling",
    "hdi": "mixedmodels.bayes.diagnostics",
    "rhat": "mixedmodels.bayes.diagnostics",
    "ess_bulk": "mixedmodels.bayes.diagnostics",
}

__all__ = ["SamplingWarning", *_LAZY]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'mixedmodels.bayes' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
