"""The pieces of the Dask path on their own: moments and transform states, quantile sketches, placeholders,
the partial blocks, level coding and pass 1's level order."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import mixedmodels as mm
from conftest import dataset
from conftest_dask import on

dd = pytest.importorskip("dask.dataframe")

from formulaic.transforms import TRANSFORMS  # noqa: E402

from mixedmodels.dask.crossprods import PartialBlocks, assemble, partial_blocks, sum_sparse  # noqa: E402
from mixedmodels.dask.moments import Moments, poly_state, scale_state  # noqa: E402
from mixedmodels.dask.placeholders import RowsOnWorkers  # noqa: E402
from mixedmodels.dask.plan import LevelCoder  # noqa: E402
from mixedmodels.dask.quantiles import QuantileSketch  # noqa: E402
from mixedmodels.lmm.model import LinearMixedModel  # noqa: E402


def _parts(x: np.ndarray, pieces: int, order: int) -> Moments:
    total = Moments.of(np.empty(0), order)
    for piece in np.array_split(x, pieces):
        total = total.combine(Moments.of(piece, order))
    return total


@pytest.mark.parametrize("degree", [1, 2, 3])
def test_poly_state_from_moments_is_formulaics(degree):
    """Combined central power sums give formulaic's recurrence coefficients (to ~1e-13: sums in another order)."""
    x = np.random.default_rng(1).normal(1000.0, 3.0, 5001)  # far from 0: raw power sums would cancel badly
    expected: dict = {}
    TRANSFORMS["poly"](x, degree, _state=expected)
    state = poly_state(_parts(x, 7, 2 * degree), degree)
    for key in ("alpha", "norms2"):
        assert sorted(state[key]) == sorted(expected[key])
        for k in expected[key]:
            assert state[key][k] == pytest.approx(expected[key][k], rel=1e-12)


def test_scale_and_center_states_are_formulaics():
    x = np.random.default_rng(2).gamma(2.0, 10.0, 999)
    expected: dict = {}
    TRANSFORMS["scale"](x, _state=expected)
    state = scale_state(_parts(x, 5, 2))
    assert state["ddof"] == 1 and state["center"] == pytest.approx(expected["center"], rel=1e-14)
    assert state["scale"] == pytest.approx(expected["scale"], rel=1e-13)
    assert scale_state(_parts(x, 3, 2), scale=False)["scale"] is None


def test_quantile_sketch_is_exact_while_small_and_close_when_compressed():
    rng = np.random.default_rng(3)
    small = rng.normal(size=900)
    sketch = QuantileSketch.of(small[:400]).combine(QuantileSketch.of(small[400:]))
    probs = [0, 0.25, 0.5, 0.75, 1]
    assert sketch.exact and np.array_equal(sketch.quantiles(probs), np.quantile(small, probs))
    large = np.sort(rng.normal(size=200_000))  # sorted partitions: the hard case for merged summaries
    sketch = QuantileSketch.of(large[:1])
    for piece in np.array_split(large[1:], 40):
        sketch = sketch.combine(QuantileSketch.of(piece))
    assert not sketch.exact
    found = sketch.quantiles(probs)
    assert found[0] == large[0] and found[-1] == large[-1]
    ranks = np.searchsorted(large, found[1:-1]) / large.size  # the rank error is at most about 1 / budget
    assert np.all(np.abs(ranks - np.array(probs[1:-1])) <= 1e-3)


def test_rows_on_workers_refuse_everything_but_their_shape():
    rows = RowsOnWorkers("the response", (180,))
    assert rows.shape == (180,) and rows.ndim == 1
    for action in (
        lambda: np.asarray(rows),
        lambda: rows[:3],
        lambda: rows @ np.ones(180),
        lambda: len(rows),
        lambda: rows.sum(),
        lambda: np.log(rows),
    ):
        with pytest.raises(mm.NotOnDaskError, match="the response"):
            action()
    again = pickle.loads(pickle.dumps(rows))
    assert again.shape == (180,) and repr(again) == repr(rows)


@pytest.mark.parametrize(
    "formula, data, pieces",
    [
        ("Reaction ~ Days + (Days | Subject)", "sleepstudy", 5),  # dense partial blocks
        ("y ~ service + (1 | s) + (1 | d) + (1 | dept:service)", "InstEval", 6),  # sparse ones
        ("y ~ service + (1 + service | s) + (1 + service | d)", "InstEval", 4),  # vector terms, sparse
    ],
)
@pytest.mark.parametrize("merged", [False, True], ids=["pairwise", "merged"])
def test_summed_partial_blocks_are_the_in_memory_blocks(formula, data, pieces, merged):
    model = LinearMixedModel.from_formula(formula, dataset(data))
    inputs = model.inputs
    x, y = inputs.fixed.matrix, inputs.y
    nlevels = tuple(t.nlevels for t in inputs.terms)
    total, parts = None, []
    for rows in np.array_split(np.arange(inputs.nobs), pieces):
        x_rows = x[rows]  # a z that is X itself (the same array) takes the kernel's shortcut
        zs = tuple(x_rows if np.array_equal(t.z, x) else t.z[rows] for t in inputs.terms)
        part = partial_blocks(tuple(t.refs[rows] for t in inputs.terms), zs, nlevels, x_rows, y[rows])
        parts.append(part)
        total = part if total is None else total + part
    if merged:  # the reduction's merge of several parts: the pairwise sums' values, added in the same order
        pairwise, total = total, PartialBlocks.sum(parts)
        for name in ("a11", "a21", "a22_re", "a22_re_xy", "a22_xy"):
            a, b = getattr(total, name), getattr(pairwise, name)
            if sp.issparse(a):
                assert a.indices.dtype == np.int32
                a, b = a.toarray(), b.toarray()
            np.testing.assert_array_equal(a, b)
    assert isinstance(total, PartialBlocks)
    ours = assemble(total, list(range(x.shape[1])), nlevels, tuple(t.ncols for t in inputs.terms))
    theirs = model.crossprods
    dense = lambda a: a.toarray() if sp.issparse(a) else a  # noqa: E731
    assert type(ours.a21) is type(theirs.a21)
    for name in ("a11", "a21", "a22"):
        a, b = dense(getattr(ours, name)), dense(getattr(theirs, name))
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * np.abs(b).max())
    for lo, lt in zip(ours.terms, theirs.terms):
        np.testing.assert_allclose(lo.scales, lt.scales, rtol=1e-13)


def test_merged_sparse_sums_are_the_chained_sums():
    """Rows whose parts interleave and share entries, rows in one part only, empty rows: the same values
    as ``a + b + c`` (each entry's terms added in the same order), with 32-bit indices."""
    rng = np.random.default_rng(3)
    blocks = []
    for seed in range(4):
        dense = rng.normal(size=(7, 30)) * (rng.random((7, 30)) < 0.3)
        dense[seed] = 0.0  # a row empty in one part
        dense[5] = 0.0  # a row empty in every part
        if seed:
            dense[6] = 0.0  # a row in the first part only
        blocks.append(sp.csr_array(dense))
    merged, chained = sum_sparse(blocks), blocks[0] + blocks[1] + blocks[2] + blocks[3]
    assert merged.indices.dtype == np.int32 and merged.has_canonical_format
    np.testing.assert_array_equal(merged.toarray(), chained.toarray())
    dense_blocks = [b.toarray() for b in blocks]
    np.testing.assert_array_equal(sum_sparse(dense_blocks), sum(dense_blocks[1:], dense_blocks[0]))


def test_level_coder_handles_runs_values_and_known_categories():
    run = LevelCoder.make(np.arange(100, 110), None)
    assert run.first == 100
    assert run.codes(pd.Series([100, 109, 111])).tolist() == [0, 9, -1]
    text = LevelCoder.make(np.array(["a", "c"], dtype=object), None)
    assert text.codes(pd.Series(["c", "a", "b"])).tolist() == [1, 0, -1]
    categories = ("z", "y", "x")  # category order, "y" never observed
    known = LevelCoder.make(np.array(["z", "x"], dtype=object), categories)
    column = pd.Series(pd.Categorical(["x", "z", "x"], categories=list(categories)))
    assert known.codes(column).tolist() == [1, 0, 1]


@pytest.mark.filterwarnings("ignore::mixedmodels.SingularFitWarning")
def test_pass1_orders_levels_as_the_in_memory_code():
    """Known categories keep their order (unused ones dropped); other columns sort their values, numbers as numbers."""
    df = pd.DataFrame(
        {
            "y": np.arange(12.0) % 5,
            "g": pd.Categorical(list("bacbacbacbac"), categories=["c", "b", "a", "unused"]),
            "h": np.tile([10, 9, 100], 4),
            "t": np.tile(["beta", "alpha"], 6),
        }
    )
    formula = "y ~ t + (1 | g) + (1 | h) + (1 | g:h)"
    memory = mm.lmer(formula, df)
    with on("sync"):
        fit = mm.lmer(formula, dd.from_pandas(df, npartitions=5))
    for group in ("g", "h", "g:h"):
        assert fit.ranef()[group].index.tolist() == memory.ranef()[group].index.tolist()
    assert fit.fixef.index.tolist() == memory.fixef.index.tolist() == ["(Intercept)", "tbeta"]


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("z_is_x", [True, False])
def test_per_level_sums_are_the_per_level_products(compiled, z_is_x, monkeypatch):
    """The compiled sweep and the bincounts both give z'z and z'[x y] per level, also when z is X itself."""
    from mixedmodels.dask import kernels

    if compiled and kernels._compiled() is None:
        pytest.skip("numba is not installed (or MIXEDMODELS_NO_NUMBA is set)")
    if not compiled:
        monkeypatch.setattr(kernels, "_compiled", lambda: None)
    rng = np.random.default_rng(7)
    n, q = 12_000, 40  # above the size from which the compiled sweep is used
    levels = rng.integers(0, q, n)
    x = np.column_stack([np.ones(n), rng.normal(size=n)])
    z = x if z_is_x else rng.normal(size=(n, 2))
    y = rng.normal(size=n)
    a11, zxy = kernels.per_level_sums(levels, z, x, y, q + 1)  # one level without rows
    xy = np.column_stack([x, y])
    for level in range(q + 1):
        rows = levels == level
        np.testing.assert_allclose(a11[level], z[rows].T @ z[rows], rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(zxy[level], z[rows].T @ xy[rows], rtol=1e-12, atol=1e-9)
