"""The shrinkage explorer: a local web page comparing complete, no and partial pooling.

``mixedmodels explore`` (or :func:`serve`) starts a small web server on
127.0.0.1.  Its page simulates ``J`` clusters, fits ``y ~ 1 + (1 | cluster)``
by REML with :func:`mixedmodels.lmer` and shows how each cluster's estimate
moves from its own mean toward the grand mean, with the mean squared error of
each approach.  :func:`shrinkage_demo` computes the same numbers without a
server.  The server needs the optional extra ``pip install mixedmodels[explore]``
(Flask), imported only when a server is made.
"""

from __future__ import annotations

from .core import ExploreParams, parse_params, shrinkage_demo, simulate_clusters
from .server import create_app, serve, start_server

__all__ = [
    "serve",
    "create_app",
    "start_server",
    "shrinkage_demo",
    "simulate_clusters",
    "parse_params",
    "ExploreParams",
]
