"""Conversion of :class:`~mixedmodels.bayes.results.BayesResults` to ArviZ ``InferenceData``.

Variables (dimensions in brackets; ``g`` is lme4's group name, e.g. ``Subject``):

* ``fixef`` [``fixef_term``]
* ``sd_g`` [``g_term``], ``cor_g`` [``g_term``, ``g_term_bis``]
* ``ranef_g`` [``g_level``, ``g_term``]: the group effects ``b``
* ``sigma`` (Gaussian models)

plus ``sample_stats`` (``diverging``, ``n_steps``, ``tree_depth``,
``acceptance_rate``, ``energy``, ``lp``), ``log_likelihood`` (``y``
[``obs``]) and ``observed_data``.  Prior-only fits put the draws in the
``prior`` group.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["to_inference_data", "import_arviz"]


def import_arviz():
    """Import ArviZ quietly (0.x announces its refactor with a FutureWarning)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            import arviz
    except ImportError as exc:  # pragma: no cover - part of the bayes extra
        raise ImportError("idata needs ArviZ: pip install mixedmodels[bayes] (or pip install arviz)") from exc
    return arviz


def _observed(result) -> np.ndarray:
    data = result.model.data
    if result.model.spec.family == "binomial":
        return (
            data["k"]
            if result.model.cbind
            else np.divide(data["k"], data["trials"], out=np.zeros_like(data["k"]), where=data["trials"] > 0)
        )
    return data["y"]


def to_inference_data(result, log_likelihood: bool = True):
    """Build the ``InferenceData`` (see the module docstring)."""
    az = import_arviz()
    draws = result.draws
    variables = {"fixef": draws["beta"]}
    coords = {"fixef_term": list(result.fixef_names), "obs": list(map(str, result.model.inputs.row_index))}
    dims = {"fixef": ["fixef_term"], "y": ["obs"]}
    for g, term, sd, cor, b in zip(result.model.group_names, result.terms, draws["sd"], draws["cor"], draws["b"]):
        cols = list(term.column_names)
        coords[f"{g}_term"] = cols
        coords[f"{g}_level"] = list(term.levels)
        variables[f"sd_{g}"] = sd
        dims[f"sd_{g}"] = [f"{g}_term"]
        if cor is not None:
            coords[f"{g}_term_bis"] = cols
            variables[f"cor_{g}"] = cor
            dims[f"cor_{g}"] = [f"{g}_term", f"{g}_term_bis"]
        variables[f"ranef_{g}"] = b
        dims[f"ranef_{g}"] = [f"{g}_level", f"{g}_term"]
    if draws["sigma"] is not None:
        variables["sigma"] = draws["sigma"]
    groups = {"observed_data": {"y": _observed(result)}}
    if result.prior_only:
        groups["prior"] = variables
    else:
        groups["posterior"] = variables
        if result.stats is not None:
            groups["sample_stats"] = dict(result.stats)
        if log_likelihood:
            groups["log_likelihood"] = {"y": result.log_likelihood()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return az.from_dict(**groups, coords=coords, dims=dims)
