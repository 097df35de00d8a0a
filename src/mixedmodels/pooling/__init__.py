"""Complete, no and partial pooling side by side (``mm.compare_pooling``).

* :mod:`.layout` -- the data per level, the least-squares fits (complete and no pooling),
  a grouping factor's covariance, the shrinkage table, what to draw: public to
  :mod:`mixedmodels.plots` and :mod:`mixedmodels.bayes`;
* :mod:`.results` -- :class:`~.results.PoolingComparison`, the immutable result;
* :mod:`.compare` -- :func:`~.compare.compare_pooling`, fitting the three from one lmer formula.
"""
