"""Linear mixed models (``lmer``): the model and its profiled objective, the results, the summary.

* :mod:`.model` -- :class:`~.model.LinearMixedModel` (defined, not fitted: inputs and the blocks
  of ``[Z X y]'[Z X y]``), its REML criterion or deviance at theta, the fit, :func:`~.model.lmer`;
* :mod:`.results` -- :class:`~.results.LmerResults` (lme4's ``merMod``), immutable;
* :mod:`.summary` -- lme4's printed summary.

``model.py`` makes results (``fit()``, ``results_at()``); the results read their
model only through :class:`mixedmodels.fitted.MixedModel`, so the two do not import
each other in a circle.
"""
