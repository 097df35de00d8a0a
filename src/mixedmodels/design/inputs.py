"""A model's inputs before any fitting: lme4's ``lFormula`` stage.

``prepare_inputs(formula, data)`` parses an lme4 formula and builds, in order,

1. the model frame: the columns the formula uses, rows complete in all of
   them (grouping factors included), labelled by their position in ``data``;
   this is where the data are checked, once -- the design code below trusts
   the frame;
2. the response ``y`` (a column, an expression, or ``cbind`` for binomial);
3. the fixed-effects matrix ``X`` with R's contrasts and names, aliased
   columns dropped (lme4's ``chkRank.drop.cols``) and lme4's check of the
   predictors' scales;
4. prior weights and the offset (the formula's ``offset()`` terms plus ``offset=``),
   for the kept rows;
5. the random-effects terms (level index per row, the term's columns), in
   lme4's order (most levels first).

Every model kind starts here: ``lmer`` (:func:`prepare_inputs`), ``glmer``
(:func:`prepare_glmm_inputs`: a term may have as many random effects as
there are observations), ``lm``/``glm`` (:func:`prepare_fixed_inputs`: no
random-effects terms), the Bayesian models and the power simulations.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..errors import DataError, FormulaError
from ..formula import ParsedFormula, parse_formula, random_terms_text
from .checks import check_scale, drop_aliased_columns
from .fixed import DesignMatrix, build_design
from .frame import ModelFrame, model_frame, required_variables
from .random import RandomEffectsTerm, build_random_terms
from .response import build_response

__all__ = [
    "ModelInputs",
    "prepare_inputs",
    "prepare_glmm_inputs",
    "prepare_fixed_inputs",
    "prepare_fixed_part",
]


@dataclass(frozen=True, eq=False)
class ModelInputs:
    """Everything a model is made of, before any fitting.

    Attributes
    ----------
    formula : ParsedFormula
    frame : DataFrame
        The model frame: used columns, complete rows, positional index.
    n_dropped : int
        Rows dropped for missing values.
    y : ndarray
        Response (1-d, or (n, 2) for ``cbind``).
    fixed : DesignMatrix
        Fixed-effects model matrix X (aliased columns already dropped).
    dropped_columns : tuple of str
        Columns of X dropped as aliased.
    terms : tuple of RandomEffectsTerm
        Random-effects terms in block order (empty for lm and glm).
    weights : ndarray or None
        Prior weights for the kept rows.
    offset : ndarray or None
        Offset for the kept rows (formula ``offset()`` terms plus ``offset=``).
    """

    formula: ParsedFormula
    frame: pd.DataFrame
    n_dropped: int
    y: np.ndarray
    fixed: DesignMatrix
    dropped_columns: tuple[str, ...]
    terms: tuple[RandomEffectsTerm, ...]
    weights: np.ndarray | None
    offset: np.ndarray | None

    @property
    def nobs(self) -> int:
        return len(self.frame)


def _used_variables(parsed: ParsedFormula) -> set[str]:
    names = set(required_variables(parsed.fixed))
    if parsed.response is not None:
        names |= required_variables(parsed.response)
    for term in parsed.random:
        names |= required_variables(term.expr) | set(term.factors)
    return names


def _row_vector(values: Any, name: str, nrows: int, keep: np.ndarray) -> np.ndarray | None:
    """Validate a per-row argument (weights, offset) and keep the model-frame rows."""
    if values is None:
        return None
    array = np.asarray(values, dtype=float).reshape(-1)
    if array.size != nrows:
        raise DataError(f"{name} has {array.size} values but the data have {nrows} rows; give one per row")
    return array[keep]


def _check_weights(weights: np.ndarray | None) -> None:
    if weights is None:
        return
    if not np.all(np.isfinite(weights)):
        raise DataError("weights contain missing or infinite values; give a finite weight for every row")
    if np.any(weights < 0):
        raise DataError("weights must be non-negative; found a negative weight")


def _sum_offsets(*offsets: np.ndarray | None) -> np.ndarray | None:
    present = [o for o in offsets if o is not None]
    return np.sum(present, axis=0) if present else None


def prepare_fixed_part(
    parsed: ParsedFormula,
    data: pd.DataFrame,
    *,
    weights: Any = None,
    offset: Any = None,
    contrasts: Mapping[str, str] | None = None,
) -> ModelInputs:
    """Model frame, y, X, weights and offset of a parsed formula; no random-effects terms yet.

    The model frame keeps the rows complete in every variable the formula
    uses, the grouping factors of its random terms included.
    """
    if parsed.response is None:
        raise FormulaError(f"formula {parsed.formula!r} has no response; write it as 'y ~ ...'")
    mf = model_frame(data, sorted(_used_variables(parsed)), positional=True)  # the one check of the data
    keep = mf.data.index.to_numpy()
    w = _row_vector(weights, "weights", len(data), keep)
    _check_weights(w)
    fixed, dropped = drop_aliased_columns(build_design(parsed.fixed, mf, contrasts))
    check_scale(fixed)
    extra_offset = _row_vector(offset, "offset", len(data), keep)
    return ModelInputs(
        formula=parsed,
        frame=mf.data,
        n_dropped=mf.n_dropped,
        y=build_response(parsed.response, mf),
        fixed=fixed,
        dropped_columns=dropped,
        terms=(),
        weights=w,
        offset=_sum_offsets(fixed.offset, extra_offset),
    )


def prepare_inputs(
    formula: str,
    data: pd.DataFrame,
    *,
    weights: Any = None,
    offset: Any = None,
    contrasts: Mapping[str, str] | None = None,
    allow_as_many_ranef_as_obs: bool = False,
) -> ModelInputs:
    """Parse the formula and build the model frame, y, X and the random-effects terms.

    ``allow_as_many_ranef_as_obs`` relaxes lme4's lmer rule (random effects <
    observations per term) to glmer's (<=).
    """
    parsed = parse_formula(formula)
    inputs = prepare_fixed_part(parsed, data, weights=weights, offset=offset, contrasts=contrasts)
    frame = ModelFrame(inputs.frame, inputs.n_dropped)  # checked in prepare_fixed_part
    terms = build_random_terms(parsed.random, frame, contrasts, allow_as_many_ranef_as_obs)
    return replace(inputs, terms=terms)


def prepare_glmm_inputs(formula: str, data: pd.DataFrame, *, weights: Any = None, offset: Any = None,
                        contrasts: Mapping[str, str] | None = None) -> ModelInputs:
    """As :func:`prepare_inputs`, with glmer's rule that a term may have as many
    random effects as there are observations (e.g. an observation-level ``(1 | obs)``)."""
    return prepare_inputs(formula, data, weights=weights, offset=offset, contrasts=contrasts,
                          allow_as_many_ranef_as_obs=True)


def prepare_fixed_inputs(
    formula: str,
    data: pd.DataFrame,
    *,
    weights: Any = None,
    offset: Any = None,
    contrasts: Mapping[str, str] | None = None,
    caller: str = "lm",
) -> ModelInputs:
    """Model frame, response and fixed-effects matrix of a formula without random effects (lm, glm)."""
    parsed = parse_formula(formula)
    if parsed.response is None:
        raise FormulaError(f"formula {formula!r} has no response; write it as 'y ~ ...'")
    if parsed.random:
        raise FormulaError(
            f"formula {formula!r} has random-effects terms {random_terms_text(parsed.random)}; "
            f"{caller}() fits models without them -- use mm.lmer or mm.glmer, or drop the terms"
        )
    return prepare_fixed_part(parsed, data, weights=weights, offset=offset, contrasts=contrasts)
