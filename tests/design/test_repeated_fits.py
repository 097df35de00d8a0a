"""What a small fit caches never leaks into another fit (issue 18, item 3).

A fit caches what depends on the formula's text alone (the parse, the
fixed part's terms for the size check, whether a part uses R's ``.``), the
memory available (read at most once a second), and, for the length of one
model's set-up, the model frame's columns.  The same formula on other data,
with other contrasts or another na_action, must give that fit's answer,
whatever was fitted before it: each fit is compared with the same fit made
first (in the process's caches' order the other way round, so neither can
borrow from the other).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.design.frame import ModelFrame, model_frame

FORMULA = "Reaction ~ Days + (Days | Subject)"
SCALAR = "Reaction ~ Days + (1 | Subject)"  # Days as a number or as a factor of 10 levels


def _summary(fit) -> tuple:
    """The estimates and the row-shaped results' shape and labels (what na_action and the data's index change)."""
    estimates = (tuple(fit.fixef.index), tuple(np.round(fit.fixef.to_numpy(), 8)), round(fit.sigma, 8))
    return (fit.nobs, len(fit.fitted), fit.fitted.index[0], *estimates)


def _variants(sleepstudy: pd.DataFrame) -> dict[str, tuple[str, dict]]:
    """The same formulas on other data or with other options; each must be fitted as if alone."""
    shifted = sleepstudy.assign(Reaction=sleepstudy["Reaction"] * 2.0 + 10.0)
    holes = sleepstudy.copy()
    holes.loc[holes.index[:7], "Reaction"] = np.nan
    relabelled = sleepstudy.set_axis(pd.RangeIndex(1000, 1000 + len(sleepstudy)), axis=0)
    text_days = sleepstudy.assign(Days=sleepstudy["Days"].astype(int).astype(str))
    return {
        "original": (FORMULA, {"data": sleepstudy}),
        "shifted response": (FORMULA, {"data": shifted}),
        "missing responses": (FORMULA, {"data": holes}),
        "missing responses, exclude": (FORMULA, {"data": holes, "na_action": "exclude"}),
        "other row labels": (FORMULA, {"data": relabelled}),
        "Days a number": (SCALAR, {"data": sleepstudy}),
        "Days as text (a factor)": (SCALAR, {"data": text_days}),
        "Days as text, sum contrasts": (SCALAR, {"data": text_days, "contrasts": {"Days": "sum"}}),
    }


@pytest.fixture(scope="module")
def alone(sleepstudy):
    """Each variant fitted first, in a fresh state of the caches (cleared before each)."""
    out = {}
    for name, (formula, kwargs) in _variants(sleepstudy).items():
        _clear_caches()
        out[name] = _summary(_fit(formula, **kwargs))
    return out


def _clear_caches() -> None:
    from mixedmodels import _memory
    from mixedmodels.design import size
    from mixedmodels.formula import bars, rsyntax

    for cached in (size._fixed_terms, rsyntax.has_dot, bars._parse_formula):
        cached.cache_clear()
    _memory._last_reading = None


def _fit(formula: str, data: pd.DataFrame, **kwargs):
    return mm.lmer(formula, data, **kwargs)


@pytest.mark.parametrize("order", ["forwards", "backwards"])
def test_the_same_formula_on_other_data_or_options_gives_each_fits_own_answer(alone, sleepstudy, order):
    variants = list(_variants(sleepstudy).items())
    for name, (formula, kwargs) in variants if order == "forwards" else variants[::-1]:
        assert _summary(_fit(formula, **kwargs)) == alone[name], name


def test_the_variants_differ_so_that_a_stale_answer_would_show(alone):
    assert len(set(alone.values())) == len(alone)


def test_na_action_shapes_the_row_results_after_the_same_formula(sleepstudy):
    holes = sleepstudy.copy()
    holes.loc[holes.index[:7], "Reaction"] = np.nan
    omitted = _fit(FORMULA, holes)
    excluded = _fit(FORMULA, holes, na_action="exclude")
    again = _fit(FORMULA, holes)
    assert len(omitted.fitted) == len(again.fitted) == len(sleepstudy) - 7
    assert len(excluded.fitted) == len(sleepstudy) and excluded.fitted.iloc[:7].isna().all()


def test_a_model_frame_reads_its_own_columns(sleepstudy):
    """ModelFrame.column caches per frame: a frame without some rows has its own columns, by its own labels."""
    full = model_frame(sleepstudy, ["Reaction", "Days", "Subject"], positional=True)
    assert full.column("Reaction") is full.column("Reaction")
    pd.testing.assert_series_equal(full.column("Days"), full.data["Days"])
    fewer = ModelFrame(full.data.iloc[5:], full.n_dropped + 5)
    assert len(fewer.column("Reaction")) == len(sleepstudy) - 5
    assert fewer.column("Reaction").index[0] == 5
