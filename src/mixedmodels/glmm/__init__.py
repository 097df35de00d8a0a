"""Generalized linear mixed models (``glmer``): the model, its fit, the results, the summary.

* :mod:`.model` -- :class:`~.model.GeneralizedLinearMixedModel` (defined, not fitted),
  its Laplace / adaptive-quadrature deviance at (theta, beta), :func:`~.model.glmer`;
* :mod:`.fit` -- lme4's two optimization stages and the Hessian-based covariance of beta;
* :mod:`.results` -- :class:`~.results.GlmerResults` (lme4's ``glmerMod``), immutable;
* :mod:`.summary` -- lme4's printed summary.

The model calls the fit stages, which make the results; the stages and the
results use the model only through :class:`mixedmodels.fitted.GeneralizedMixedModel`
(PIRLS and the deviance at its solutions), so nothing here imports in a circle.
PIRLS itself is in :mod:`mixedmodels.linalg.pirls`.
"""
