"""Models without random effects: ``lm`` and ``glm``, R's conventions (complete pooling).

(The package is not called ``lm``: ``mm.lm`` is the function, and a subpackage
of that name would replace it as an attribute of ``mixedmodels`` when imported.)

* :mod:`.model` -- :class:`~.model.LinearModel` (defined, not fitted), :func:`~.model.lm`, :func:`~.model.glm`;
* :mod:`.irls` -- iteratively reweighted least squares (R's ``glm.fit``);
* :mod:`.results` -- :class:`~.results.LmResults` and :class:`~.results.GlmResults` on one base;
* :mod:`.summary` -- R's ``summary(lm)`` and ``summary(glm)`` layouts.

Least squares itself is :func:`mixedmodels.linalg.lstsq.lstsq`.
"""
