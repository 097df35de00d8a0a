"""One compiled sweep over a partition's columns (mixedmodels.dask.sweep): the general path's sums and counts.

The sweep and the general path (encode the rows, then the per-level and column
sweeps) sum the same products per level in the same row order, so A11 and A21
are the same bits; X'X, X'y and y'y are dot products in one and loop sums in
the other (rounding only: 1e-12 relative).  Whether the sweep was
taken is asserted, so a test cannot pass on the general path alone.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from conftest_dask import assert_same_fit, on, partitioned

dd = pytest.importorskip("dask.dataframe")


def _compiled() -> bool:
    from mixedmodels.dask import sweep

    return sweep._compiled() is not None


needs_numba = pytest.mark.skipif(not _compiled(), reason="numba is not installed (or MIXEDMODELS_NO_NUMBA is set)")


def _frame(n: int, groups: int, seed: int = 2) -> pd.DataFrame:
    """Ids ``7 + 2 * g`` (gaps), two covariates (one of them integer), a response with subject effects."""
    rng = np.random.default_rng(seed)
    subject = np.sort(rng.integers(0, groups, n))
    x = rng.normal(2.0, 1.0, n)
    w = rng.integers(0, 5, n)
    effects = rng.normal(size=(groups, 2)) @ np.array([[0.8, 0.15], [0.0, 0.25]])  # correlated: no theta near 0
    y = 1.0 + 0.3 * x - 0.1 * w + effects[subject, 0] + effects[subject, 1] * x + rng.normal(size=n)
    return pd.DataFrame({"y": y, "x": x, "w": w, "subject": 7 + 2 * subject})


def _wide_plan(formula: str, df: pd.DataFrame):
    """The fused pass's plan over the whole range of ids, as the workers get it."""
    from mixedmodels.dask.fused import _PLACEHOLDER_ROWS, _range_levels, _summary, for_workers
    from mixedmodels.dask.inputs import parse_with_response
    from mixedmodels.dask.plan import encoding_plan, summary_spec
    from mixedmodels.dask.source import DataSource
    from mixedmodels.design.inputs import expand_formula_dot

    source = DataSource.make(dd.from_pandas(df, npartitions=1))
    with on("sync"):
        parsed = expand_formula_dot(parse_with_response(formula), source.data_meta)
        spec = summary_spec(parsed, source.meta, None, None)
        levels, _ = _range_levels(source, spec, sorted(spec.level_columns))
        placeholder = _summary(spec, source.meta, levels, _PLACEHOLDER_ROWS, _PLACEHOLDER_ROWS, {})
        return for_workers(encoding_plan(parsed, placeholder, spec, source.meta, None, True))


def _dense(block) -> np.ndarray:
    return block if isinstance(block, np.ndarray) else block.toarray()


@needs_numba
@pytest.mark.parametrize(
    "formula",
    [
        "y ~ x + (1 + x | subject)",  # z is X
        "y ~ x + w + (1 | subject)",  # z is not X: z z' summed too
        "y ~ 0 + x + (0 + w + x | subject)",  # no intercept; an integer column
    ],
)
@pytest.mark.parametrize("groups", [900, 12_000])  # A11 and A21 dense, and sparse
def test_the_sweep_gives_the_general_paths_blocks_and_counts(formula, groups, monkeypatch):
    from mixedmodels.dask import fused, sweep

    df = _frame(30_000, groups).iloc[2_000:]  # the partition's ids start above the range's first
    plan = _wide_plan(formula, _frame(30_000, groups))
    swept = fused._fused_partition(df, plan)
    assert sweep.swept_partition(df, plan) is not None
    monkeypatch.setattr(fused, "swept_partition", lambda frame, plan: None)
    general = fused._fused_partition(df, plan)
    a, b = swept.pass2.blocks, general.pass2.blocks
    assert a.nobs == b.nobs == len(df)
    for name in ("a11", "a21", "a22_re", "a22_re_xy", "a22_xy"):
        left, right = getattr(a, name), getattr(b, name)
        assert left.shape == right.shape, name
        if name in ("a11", "a21"):  # dense as in the general path, else spans of levels for its sparse matrices
            assert isinstance(left, np.ndarray) == isinstance(right, np.ndarray) == (groups == 900)
        if name in ("a11", "a21"):  # the same products per level, in the same row order: the same bits
            np.testing.assert_array_equal(_dense(left), _dense(right), err_msg=name)
        else:
            np.testing.assert_allclose(_dense(left), _dense(right), rtol=1e-12, atol=1e-9, err_msg=name)
    f, g = swept.pass2.facts, general.pass2.facts
    for name in ("gram", "mean", "m2", "y_sums"):
        np.testing.assert_allclose(getattr(f, name), getattr(g, name), rtol=1e-12, err_msg=name)
    np.testing.assert_array_equal(f.binary, g.binary)
    assert (f.n, f.y_min, f.y_max, f.nonfinite_rows) == (g.n, g.y_min, g.y_max, g.nonfinite_rows)
    assert (swept.rows.nrows, swept.rows.ncomplete, swept.rows.missing) == (
        general.rows.nrows,
        general.rows.ncomplete,
        general.rows.missing,
    )
    np.testing.assert_array_equal(swept.rows.present[0], general.rows.present[0])


@needs_numba
@pytest.mark.parametrize("column, value", [("y", np.nan), ("x", np.nan), ("x", np.inf), ("subject", 10**6)])
def test_rows_the_general_path_must_see_leave_the_sweep(column, value):
    """Missing and non-finite values, and an id outside the plan's range: the general path counts or rejects them."""
    from mixedmodels.dask import sweep

    df = _frame(20_000, 900)
    plan = _wide_plan("y ~ x + (1 + x | subject)", df)
    assert sweep.swept_partition(df, plan) is not None
    df.loc[df.index[5], column] = value
    assert sweep.swept_partition(df, plan) is None
    assert sweep.swept_partition(df.iloc[:9_000], plan) is None  # too few rows for the compiled loop


@needs_numba
@pytest.mark.parametrize("scheduler", ["sync", "cluster"])
def test_fits_through_the_sweep_are_the_in_memory_fits(scheduler, request, monkeypatch):
    """Three partitions of 12,000 rows without missing values: the issue's tolerances against the in-memory fit."""
    from mixedmodels.dask import fused

    df = _frame(36_000, 3_000)
    formula = "y ~ x + w + (1 + x | subject)"
    taken: list[bool] = []
    if scheduler == "sync":
        sweep_of = fused.swept_partition

        def counted(frame, plan):
            result = sweep_of(frame, plan)
            taken.append(result is not None)
            return result

        monkeypatch.setattr(fused, "swept_partition", counted)
    client = request.getfixturevalue("dask_client") if scheduler == "cluster" else None
    with on(scheduler, client):
        fit = mm.lmer(formula, partitioned(df, [12_000] * 3))
    assert fit.model.data_passes == 2 and "pass 1" not in fit.model.seconds
    assert scheduler == "cluster" or taken == [True] * 3
    assert_same_fit(fit, mm.lmer(formula, df))
