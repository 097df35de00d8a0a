"""Shared helpers for the df / F-test / emmeans tests: derived data, cached fits, R-optimum results.

The derived columns are those of tests/reference/make_references.R and make_ddf.R:
``DayF = factor(Days)``, ``Phase = early/late (Days < 5)``, ``Half = even/odd Days``,
``w = 1 + Days %% 3``, ``Third = factor(Days %/% 4)``; ``sleep_unbal`` drops the rows with (subject number + Days) %% 7 == 0.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
import pandas as pd

import mixedmodels as mm
from conftest import as_list
from mixedmodels.lmm.model import LinearMixedModel
from mixedmodels.optim import OptInfo
from mixedmodels.lmm.results import LmerResults


@lru_cache(maxsize=None)
def sleep_data() -> pd.DataFrame:
    df = mm.datasets.load("sleepstudy").copy()
    days = df["Days"].astype(int)
    df["DayF"] = pd.Categorical(days.astype(str), categories=[str(i) for i in range(10)])
    df["Phase"] = pd.Categorical(np.where(days < 5, "early", "late"))
    df["Half"] = pd.Categorical(np.where(days % 2 == 0, "even", "odd"))
    df["w"] = 1.0 + days % 3
    df["Third"] = pd.Categorical((days // 4).astype(str), categories=["0", "1", "2"])
    return df


@lru_cache(maxsize=None)
def sleep_unbalanced() -> pd.DataFrame:
    """make_ddf.R's ``sleep_unbal``: rows with (subject number + Days) %% 7 == 0 dropped."""
    df = sleep_data()
    number = df["Subject"].cat.codes.to_numpy() + 1
    return df[(number + df["Days"].astype(int).to_numpy()) % 7 != 0].reset_index(drop=True)


def _data(name: str) -> pd.DataFrame:
    if name == "sleepstudy":
        return sleep_data()
    if name == "sleep_unbal":
        return sleep_unbalanced()
    return mm.datasets.load(name)


def _kwargs(weights: bool, contrasts: tuple | None) -> dict:
    kw = {}
    if weights:
        kw["weights"] = sleep_data()["w"].to_numpy()
    if contrasts:
        kw["contrasts"] = dict(contrasts)
    return kw


@lru_cache(maxsize=None)
def fit(
    formula: str, data: str = "sleepstudy", REML: bool = True, weights: bool = False, contrasts: tuple | None = None
) -> LmerResults:
    """Our own fit, once per session."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.lmer(formula, _data(data), REML=REML, **_kwargs(weights, contrasts))


@lru_cache(maxsize=None)
def at_reference(
    formula: str,
    theta: tuple,
    data: str = "sleepstudy",
    REML: bool = True,
    weights: bool = False,
    contrasts: tuple | None = None,
) -> LmerResults:
    """The results at R's optimum theta, to test a method apart from optimizer differences."""
    model = LinearMixedModel.from_formula(formula, _data(data), REML=REML, **_kwargs(weights, contrasts))
    theta_arr = np.asarray(theta, dtype=float)
    info = OptInfo("reference", theta_arr, theta_arr, np.nan, 0, 0.0, 1, "R's optimum")
    return LmerResults.from_fit(model, info)


def ref_theta(ref: dict) -> tuple:
    return tuple(as_list(ref["theta"]))


def table(ref: dict) -> pd.DataFrame:
    """A reference table stored column-wise (R's length-1 columns as scalars)."""
    return pd.DataFrame({k: as_list(v) for k, v in ref.items()})


def assert_p_close(actual, expected, rel: float = 1e-3, abs_: float = 1e-10) -> None:
    """p-values: within ``rel`` relative or ``abs_`` absolute (tiny tail p-values)."""
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    ok = np.abs(actual - expected) <= np.maximum(rel * np.abs(expected), abs_)
    assert ok.all(), f"p-values {actual[~ok]} vs R {expected[~ok]}"
