"""Pictures of mixed models: pooling, shrinkage, random effects, diagnostics, profiles.

matplotlib is an optional extra (``pip install mixedmodels[plot]``); it is
imported only when a plot is drawn, so ``import mixedmodels`` never loads it.
Every function returns the matplotlib ``Figure`` (nothing is shown), and the
single-panel ones accept an ``ax`` to draw into.

* :func:`by_group` -- per-group panels of the raw data with a lowess or least-squares smoother and
  a fitted model's conditional lines (lattice's ``xyplot(y ~ x | g)``, languageR's ``xylowess.fnc``);
  :func:`lowess` is R's smoother;
* :func:`pooling_lines` -- per-group panels: data with complete, no and partial pooling lines;
* :func:`shrinkage` -- arrows from no- to partial-pooling estimates over the
  contours of the estimated random-effects distribution;
* :func:`caterpillar` -- conditional modes with 95 % intervals (lme4's
  ``dotplot(ranef(m, condVar = TRUE))``);
* :func:`ranef_scatter` -- conditional modes of one random effect against another;
* :func:`diagnostics` -- residuals vs fitted, normal QQ plots of residuals and random effects;
* :func:`profile_zeta` -- zeta profiles of the parameters (lme4's ``xyplot(profile(m))``).
"""

from __future__ import annotations

from .by_group import by_group
from .diagnostics import diagnostics, profile_zeta
from .pooling import pooling_lines, shrinkage
from .ranef import caterpillar, ranef_scatter
from .smooth import lowess

__all__ = [
    "by_group",
    "lowess",
    "pooling_lines",
    "shrinkage",
    "caterpillar",
    "ranef_scatter",
    "diagnostics",
    "profile_zeta",
]
