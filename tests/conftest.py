"""Shared fixtures: reference results from R and fitted models, cached per session."""

from __future__ import annotations

import json
import os
import warnings
from functools import lru_cache
from pathlib import Path

import pytest

import mixedmodels as mm

REFERENCE_DIR = Path(__file__).parent / "reference"


def need_numba(reason: str) -> None:
    """Skip (the test, or at module level the module) unless the compiled kernels run: numba importable
    and ``MIXEDMODELS_NO_NUMBA`` not set (with it set, numba imports but every kernel is off)."""
    pytest.importorskip("numba", reason=reason)
    if os.environ.get("MIXEDMODELS_NO_NUMBA", "") not in ("", "0"):
        pytest.skip(f"MIXEDMODELS_NO_NUMBA is set: {reason}", allow_module_level=True)


@lru_cache(maxsize=None)
def reference(name: str) -> dict:
    """An R reference result: ``shared/<name>.json`` (from ../shared/reference) or ``<name>.json``."""
    path = REFERENCE_DIR / f"{name}.json"
    return json.loads(path.read_text())


def as_list(value) -> list:
    """R's JSON writes length-1 vectors as scalars; make them lists again."""
    return value if isinstance(value, list) else [value]


@lru_cache(maxsize=None)
def raised(build) -> tuple[type, str]:
    """The type and message of the exception ``build()`` raises (to compare two paths' errors)."""
    with pytest.raises(Exception) as info:
        build()
    return type(info.value), str(info.value)


def formulaic_design(rhs, data, monkeypatch: pytest.MonkeyPatch, **kwargs):
    """The fixed-effects design built by formulaic's materializer: both direct paths switched off."""
    from mixedmodels.design import fixed

    with monkeypatch.context() as m:
        m.setattr(fixed, "_simple_design", lambda *args: None)
        m.setattr(fixed, "_product_design", lambda *args: None)
        return fixed.build_design(rhs, data, **kwargs)


def assert_same_design(fast, slow) -> None:
    """A direct path's design (``fast``, its formulaic spec deferred) is formulaic's (``slow``): matrix,
    names, columns, variables, the spec (replays, levels, contrasts, term structure)."""
    import numpy as np

    from mixedmodels.design import fixed

    assert isinstance(fast._spec_source, fixed._DeferredSpec)
    assert not isinstance(slow._spec_source, fixed._DeferredSpec)
    assert fast.column_names == slow.column_names
    np.testing.assert_array_equal(fast.matrix, slow.matrix)
    assert fast.matrix.dtype == np.float64 and fast.matrix.flags.c_contiguous
    if slow.offset is None:
        assert fast.offset is None
    else:
        np.testing.assert_array_equal(fast.offset, slow.offset)
    assert (fast._columns, fast._offset_columns, fast._variables) == (
        slow._columns,
        slow._offset_columns,
        slow._variables,
    )
    assert fast._spec == slow._spec  # replays, levels, contrasts, term structure
    assert fast.factor_levels() == slow.factor_levels()
    assert fast.transform_state == slow.transform_state == {}


def dataset(name: str):
    return mm.datasets.load(name)


@lru_cache(maxsize=None)
def fitted_lmer(formula: str, data_name: str, REML: bool = True):
    """Fit once per session; warnings (e.g. singular fits) are tested separately."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.lmer(formula, dataset(data_name), REML=REML)


@lru_cache(maxsize=None)
def issue19_dataset(name: str):
    """A bundled data set with the derived columns of the issue #19 R scripts (tests/reference/README.md).

    sleepstudy: ``Phase3`` (days 0-2, 3-5, 6-9), ``DayPair`` (ordered ``Days // 2``), ``DayO``
    (ordered ``Days``); BodyWeight, Ovary: ``obs``, the index 1, 2, ... within Rat / Mare in row order.
    """
    import numpy as np
    import pandas as pd

    df = dataset(name).copy()
    if name == "sleepstudy":
        days = df["Days"].to_numpy()
        df["Phase3"] = pd.Categorical(np.where(days <= 2, "d0_2", np.where(days <= 5, "d3_5", "d6_9")))
        df["DayPair"] = pd.Categorical((days // 2).astype(int).astype(str), categories=list("01234"), ordered=True)
        df["DayO"] = pd.Categorical(days.astype(int).astype(str), categories=[str(d) for d in range(10)], ordered=True)
    group = {"BodyWeight": "Rat", "Ovary": "Mare"}.get(name)
    if group is not None:
        df["obs"] = df.groupby(group, observed=True).cumcount().astype(float) + 1.0
    return df


@lru_cache(maxsize=None)
def fitted_issue19(kind: str, formula: str, data_name: str, **kwargs):
    """An lmer / glmer / glmer_nb fit on :func:`issue19_dataset`, once per session (``kwargs`` hashable)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = getattr(mm, kind)
        return fit(formula, issue19_dataset(data_name), **kwargs)


# The post-fit references' models (tests/reference/make_postfit*.R): lmer on sleepstudy and
# Penicillin, glmer on cbpp, and a weighted sleepstudy fit (weights 1 + Days % 3, sleepstudy$w).
POSTFIT_CALLS = {
    "ss": ("Reaction ~ Days + (Days | Subject)", "sleepstudy", None),
    "pen": ("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin", None),
    "cb": ("cbind(incidence, size - incidence) ~ period + (1 | herd)", "cbpp", "binomial"),
    "ssw": ("Reaction ~ Days + (Days | Subject)", "sleepstudy", "weights"),
}


@lru_cache(maxsize=None)
def fitted_postfit(key: str):
    """A model of :data:`POSTFIT_CALLS`, fitted once per session (warnings are tested separately)."""
    formula, data_name, kind = POSTFIT_CALLS[key]
    data = dataset(data_name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "binomial":
            return mm.glmer(formula, data, family="binomial")
        weights = 1 + data["Days"] % 3 if kind == "weights" else None
        return mm.lmer(formula, data, weights=weights)


@lru_cache(maxsize=None)
def fitted_glmer(formula: str, data_name: str, family="binomial", nAGQ: int = 1):
    """Fit once per session (``family`` a name or a (name, link) pair); warnings are tested separately."""
    family = mm.families.get_family(*family) if isinstance(family, tuple) else family
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.glmer(formula, dataset(data_name), family=family, nAGQ=nAGQ)


@pytest.fixture(scope="session")
def sleepstudy():
    return dataset("sleepstudy")


@pytest.fixture(scope="session")
def sleep_fit():
    return fitted_lmer("Reaction ~ Days + (Days | Subject)", "sleepstudy")


@pytest.fixture(scope="session")
def sleep_cmp(sleep_fit):
    """Complete, no and partial pooling of sleepstudy's random-slope fit (shared by the pooling and plot tests)."""
    return mm.compare_pooling(sleep_fit)


@pytest.fixture(scope="session")
def dyes_cmp():
    return mm.compare_pooling(fitted_lmer("Yield ~ 1 + (1 | Batch)", "Dyestuff"))


@pytest.fixture(scope="session")
def dask_client():
    """A real ``distributed.LocalCluster`` (2 worker processes, 1 thread each) for the Dask tests.

    Started on first use and closed at the end of the session; it is not the
    default scheduler (tests choose it with ``conftest_dask.on``).
    """
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    client = distributed.Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()
