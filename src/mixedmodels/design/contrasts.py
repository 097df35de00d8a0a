"""R's contrasts and factor coding for the model matrices.

A factor's levels are the Categorical's category order, or the sorted unique
values for other columns; a level's label is R's text for it (``TRUE``/``FALSE``
for logicals, 15 significant digits for numbers).  Levels that do not occur in
the data are dropped, so no all-zero column appears (R keeps them and lets
lme4 drop the columns).  Each factor is encoded with R's contrasts and R's
column names: ``contr.treatment`` (``GenderM``, ``period2``; the default),
``contr.poly`` for ordered factors (``f.L``, ``f.Q``, ``f.C``, ``f^4``),
``contr.sum`` / ``contr.helmert`` numbered (``f1``, ``f2``) and ``contr.SAS``; ``mm.options(contrasts=...)``
changes the defaults for unordered and ordered factors, as R's ``options(contrasts = ...)``.
The levels and the contrast are kept in formulaic's ``ModelSpec``, so new data
are coded as the training data were, and an unseen level is refused.
``C(f, contr.sum)`` in a formula chooses a factor's contrasts as in R.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from formulaic import ModelSpec
from formulaic.errors import DataMismatchWarning
from formulaic.materializers.types import FactorValues
from formulaic.transforms import encode_contrasts
from formulaic.transforms.contrasts import (
    Contrasts,
    HelmertContrasts,
    PolyContrasts,
    SASContrasts,
    SumContrasts,
    TreatmentContrasts,
)

from ..errors import DataError, ModelSpecError
from ..options import current_contrasts
from .values import level_label, level_values

__all__ = [
    "C",
    "CONTRASTS",
    "ContrastNamespace",
    "contrast_name",
    "default_contrast",
    "coding_for",
    "is_boolean",
    "as_labelled",
    "observed_levels",
    "encode_factor",
]


# ---------------------------------------------------------------------------
# Contrasts with R's column names


@dataclass
class _RSumContrasts(SumContrasts):
    """contr.sum; R numbers its columns 1..k-1 instead of naming levels."""

    @SumContrasts.override
    def get_coding_column_names(self, levels: Sequence, reduced_rank: bool = True) -> list:
        return [str(i) for i in range(1, len(levels))] if reduced_rank else list(levels)


@dataclass
class _RHelmertContrasts(HelmertContrasts):
    """contr.helmert; R numbers its columns 1..k-1 instead of naming levels."""

    @HelmertContrasts.override
    def get_coding_column_names(self, levels: Sequence, reduced_rank: bool = True) -> list:
        return [str(i) for i in range(1, len(levels))] if reduced_rank else list(levels)


CONTRASTS: dict[str, type[Contrasts]] = {
    "treatment": TreatmentContrasts,
    "sum": _RSumContrasts,
    "helmert": _RHelmertContrasts,
    "poly": PolyContrasts,  # formulaic's numbers and names (.L .Q .C ^4) equal R's
    "sas": SASContrasts,
}


class ContrastNamespace:
    """``contr`` inside formulas: ``C(f, contr.sum)`` as in R."""

    treatment = "treatment"
    sum = "sum"
    helmert = "helmert"
    poly = "poly"
    SAS = "sas"


_CONTRAST_CLASSES: dict[type, str] = {
    TreatmentContrasts: "treatment",
    SumContrasts: "sum",
    _RSumContrasts: "sum",
    HelmertContrasts: "helmert",
    _RHelmertContrasts: "helmert",
    PolyContrasts: "poly",
    SASContrasts: "sas",
}


def contrast_name(spec: Any, where: str) -> str:
    """Canonical contrast name ('sum', ...) from 'contr.sum', 'Sum', contr.sum, a class."""
    if isinstance(spec, type) and spec in _CONTRAST_CLASSES:
        return _CONTRAST_CLASSES[spec]
    if isinstance(spec, str):
        key = spec.lower().removeprefix("contr.")
        if key in CONTRASTS:
            return key
    raise ModelSpecError(
        f"unknown contrasts {spec!r} for {where}; use one of 'treatment', 'sum', 'helmert', 'poly' or 'SAS'"
    )


def default_contrast(values: Any) -> str:
    """R's ``options("contrasts")``: by default contr.poly for ordered factors, contr.treatment otherwise.

    The pair is :func:`mixedmodels.options`' ``contrasts`` setting, read when the design is built.
    """
    dtype = getattr(values, "dtype", None)
    return coding_for(isinstance(dtype, pd.CategoricalDtype) and bool(dtype.ordered))


def coding_for(ordered: bool) -> str:
    """:func:`default_contrast` of an ordered (or any other) factor."""
    unordered_coding, ordered_coding = current_contrasts()
    return ordered_coding if ordered else unordered_coding


# ---------------------------------------------------------------------------
# Factor levels and labels


def is_boolean(values: Any) -> bool:
    dtype = getattr(values, "dtype", None)
    return dtype is not None and (dtype == bool or str(dtype) == "boolean")


def as_labelled(values: Any) -> pd.Series:
    """A Categorical Series whose categories are R's level labels (strings)."""
    series = level_values(values if isinstance(values, pd.Series) else pd.Series(np.asarray(values)))
    if isinstance(series.dtype, pd.CategoricalDtype):
        cat = series.array
    elif is_boolean(series):
        cat = pd.Categorical(series, categories=[False, True])
    else:
        cat = pd.Categorical(series)
    labels = [level_label(c) for c in cat.categories]
    if len(set(labels)) == len(labels):
        cat = cat.rename_categories(labels)
    return pd.Series(cat, index=series.index, name=series.name)


def observed_levels(labelled: pd.Series) -> list:
    """Categories that occur, in category order (unused ones are dropped)."""
    codes = labelled.cat.codes.to_numpy()
    counts = np.bincount(codes[codes >= 0], minlength=len(labelled.cat.categories))
    return [c for c, n in zip(labelled.cat.categories, counts) if n > 0]


def encode_factor(
    values: Any,
    reduced_rank: bool,
    drop_rows: Sequence[int],
    encoder_state: dict,
    model_spec: ModelSpec,
    *,
    name: str | None,
    contrast: str,
    levels: Sequence | None = None,
) -> FactorValues:
    """Encode one factor with R's levels and contrasts (formulaic encoder signature).

    On first use the levels and contrast are stored in ``encoder_state``, which
    formulaic keeps in the ModelSpec; replays for new data reuse them.
    """
    raw = values.__wrapped__ if isinstance(values, FactorValues) else values
    labelled = as_labelled(raw)
    if drop_rows:
        labelled = labelled.drop(index=labelled.index[list(drop_rows)])
    known = _factor_levels(labelled, encoder_state.get("categories"), levels, name)
    contrast = encoder_state.setdefault("r_contrast", contrast)  # training's choice wins
    labelled = labelled.cat.set_categories(known)
    with warnings.catch_warnings():  # unseen levels were refused; NaN rows are fine
        warnings.simplefilter("ignore", DataMismatchWarning)
        return encode_contrasts(
            labelled,
            contrasts=CONTRASTS[contrast](),
            levels=known,
            reduced_rank=reduced_rank,
            _state=encoder_state,
            _spec=model_spec,
        )


def _factor_levels(labelled: pd.Series, trained: Sequence | None, levels: Sequence | None, name: str | None) -> list:
    """Training: the observed (or given) levels, at least two.  Replay: check against them."""
    what = f"factor {name!r}" if name else "a factor in the formula"
    if trained is not None:
        unseen = [v for v in observed_levels(labelled) if v not in set(trained)]
        if unseen:
            raise DataError(
                f"{what} has level(s) {', '.join(map(repr, unseen))} in the new data "
                f"that were not in the data the model was fitted to (levels: "
                f"{', '.join(map(repr, trained))})"
            )
        return list(trained)
    known = [level_label(v) for v in levels] if levels is not None else observed_levels(labelled)
    if len(known) < 2:
        raise DataError(
            f"{what} has only {len(known)} level(s) {known} in the data; "
            "a fixed-effect factor needs at least two levels"
        )
    return known


def _factor_values(values: Any, *, name: str | None, contrast: str, levels=None) -> FactorValues:
    """Mark values as an R factor whose encoding uses :func:`_encode_factor`."""
    encoder = functools.partial(encode_factor, name=name, contrast=contrast, levels=levels)
    return FactorValues(values, kind="categorical", spans_intercept=True, encoder=encoder)


def C(data: Any, contrasts: Any = None, levels: Sequence | None = None) -> FactorValues:
    """R's ``C(f, contr.sum)``: treat ``data`` as a factor with the given contrasts."""
    name = getattr(data, "name", None)
    contrast = default_contrast(data) if contrasts is None else contrast_name(contrasts, "C()")
    return _factor_values(data, name=name, contrast=contrast, levels=levels)
