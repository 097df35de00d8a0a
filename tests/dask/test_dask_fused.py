"""Pass 1 folded into pass 2 (mixedmodels.dask.fused): the two-pass answers, and the in-memory ones, from one pass.

The fused pass builds blocks over every known category or every integer of
an id's range and drops the levels without rows after the reduction; the
fits are compared with the in-memory fits of the same rows with the issue's
tolerances (``conftest_dask.assert_same_fit``).  Which path was taken is read
from the model: ``data_passes`` (1 for known categories, 2 with the
reduction over integer ids' ranges) and the keys of ``model.seconds``
(``"pass 1"`` only when pass 1 was made).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from conftest import dataset
from conftest_dask import assert_same_fit, on, partitioned
from mixedmodels.dask.fused import drop_levels
from mixedmodels.dask.crossprods import partial_blocks

dd = pytest.importorskip("dask.dataframe")

FORMULA = "Reaction ~ Days + (Days | G)"
# 180 rows sorted by subject in 6 partitions, one empty: most partitions miss most subjects
SIZES = [40, 30, 0, 50, 30, 30]


def _sleep(group) -> pd.DataFrame:
    df = dataset("sleepstudy")[["Reaction", "Days", "Subject"]].copy()
    df["G"] = group(df["Subject"].cat.codes.to_numpy())
    return df


def _fit(df: pd.DataFrame, formula: str = FORMULA, scheduler: str = "sync", client=None):
    with on(scheduler, client):
        return mm.lmer(formula, partitioned(df, SIZES))


def _fused(fit, passes: int) -> bool:
    return fit.model.data_passes == passes and "pass 1" not in fit.model.seconds


@pytest.mark.parametrize("scheduler", ["sync", "cluster"])
def test_integer_ids_with_gaps(scheduler, request):
    """Ids 1000, 1007, ...: the range has 7 times as many integers as subjects, most without rows."""
    df = _sleep(lambda codes: 1000 + 7 * codes.astype(np.int64))
    client = request.getfixturevalue("dask_client") if scheduler == "cluster" else None
    fit, memory = _fit(df, scheduler=scheduler, client=client), mm.lmer(FORMULA, df)
    assert _fused(fit, 2) and "ranges" in fit.model.seconds
    assert_same_fit(fit, memory)
    assert fit.ranef()["G"].index.tolist() == [str(1000 + 7 * i) for i in range(18)]


def test_known_categories_with_an_unused_one_and_their_own_order():
    """The unused category gets no level (as in memory), the others keep the categories' order (not sorted)."""
    names = [f"s{i:02d}" for i in range(18)]
    categories = names[::-1] + ["never"]
    df = _sleep(lambda codes: pd.Categorical(np.asarray(names)[codes], categories=categories))
    fit, memory = _fit(df), mm.lmer(FORMULA, df)
    assert _fused(fit, 1)
    assert_same_fit(fit, memory)
    assert fit.ranef()["G"].index.tolist() == names[::-1]


def test_rows_with_missing_values_are_dropped_and_counted():
    df = _sleep(lambda codes: codes.astype(np.int32))
    df.loc[[3, 50, 51, 170], "Reaction"] = np.nan
    df.loc[[7, 50, 120], "Days"] = np.nan
    df.loc[df["G"] == 5, "Reaction"] = np.nan  # one subject has no complete row: no level
    fit, memory = _fit(df), mm.lmer(FORMULA, df)
    assert _fused(fit, 2)
    assert_same_fit(fit, memory)
    assert fit.model.inputs.n_dropped == memory.model.inputs.n_dropped == 14  # rows 3, 7, 120, 170 and subject 5's 10
    assert "5" not in fit.ranef()["G"].index


def test_two_terms_on_crossed_integer_ids():
    """A second term with absent levels: its rows and columns of A21 and A22 are dropped too."""
    df = _sleep(lambda codes: codes.astype(np.int64) * 2)
    df["H"] = 10 + 3 * (df["Days"].astype(int) % 4)
    df["Reaction"] += np.array([-30.0, 10.0, 25.0, -5.0])[df["Days"].astype(int) % 4]  # H's effects: no singular fit
    formula = "Reaction ~ Days + (1 | G) + (1 | H)"
    fit, memory = _fit(df, formula), mm.lmer(formula, df)
    assert _fused(fit, 2)
    assert_same_fit(fit, memory)


@pytest.mark.parametrize(
    "formula, column",
    [
        ("Reaction ~ scale(Days) + (1 | G)", lambda codes: codes.astype(np.int64)),  # a transform's global state
        ("Reaction ~ Days + (1 | G)", lambda codes: np.array([f"s{c}" for c in codes], dtype=object)),  # text
        ("Reaction ~ Days + (1 | G)", lambda codes: codes.astype(np.int64) * 10**6),  # range >> rows
    ],
)
def test_pass1_is_kept_when_it_must_come_first(formula, column):
    df = _sleep(column)
    fit, memory = _fit(df, formula), mm.lmer(formula, df)
    assert fit.model.data_passes == 2 and "pass 1" in fit.model.seconds
    assert_same_fit(fit, memory)


@pytest.mark.parametrize(
    "formula, data, error",
    [
        # one category with complete rows out of two known ones: found from the counts of the fused pass
        (
            "Reaction ~ Days + (1 | G)",
            lambda df: df.assign(G=pd.Categorical(["a"] * len(df), categories=["a", "b"])),
            mm.ModelSpecError,
        ),
        ("Reaction ~ Days + (1 | G)", lambda df: df.assign(Reaction=np.nan), mm.DataError),  # NaN-only response
        ("Reaction ~ Days + (1 | G)", lambda df: df.assign(G=np.arange(len(df))), mm.ModelSpecError),  # one per row
        ("Reaction ~ Dayz + (1 | G)", lambda df: df, mm.DataError),  # an unknown column: from dask's metadata
    ],
)
def test_bad_input_gets_the_in_memory_errors(formula, data, error):
    df = data(_sleep(lambda codes: codes.astype(np.int64)))
    with pytest.raises(error) as in_memory:
        mm.lmer(formula, df)
    with pytest.raises(error) as on_dask:
        _fit(df, formula)
    assert str(on_dask.value) == str(in_memory.value)


def test_dropping_levels_gives_the_blocks_of_the_observed_levels():
    """drop_levels on blocks over a range equals the blocks built on the observed levels alone (dense and sparse)."""
    rng = np.random.default_rng(3)
    n = 400
    observed1, observed2 = np.sort(rng.choice(60, 25, replace=False)), np.array([1, 4, 6])
    r1, r2 = rng.integers(0, 25, n), rng.integers(0, 3, n)
    z1, z2 = np.column_stack([np.ones(n), rng.normal(size=n)]), np.ones((n, 1))
    x, y = np.column_stack([np.ones(n), rng.normal(size=n)]), rng.normal(size=n)
    small = partial_blocks((r1, r2), (z1, z2), (25, 3), x, y)
    for scale in (1, 400):  # 400: A21 over the range is sparse
        wide = partial_blocks((observed1[r1] * scale, observed2[r2]), (z1, z2), (60 * scale, 7), x, y)
        keeps = [observed1 * scale, observed2]
        dropped = drop_levels(wide, keeps, [60 * scale, 7], [2, 1])
        for ours, theirs in zip(dropped.dense_blocks(), small.dense_blocks()):
            ours = ours.toarray() if hasattr(ours, "toarray") else ours
            theirs = theirs.toarray() if hasattr(theirs, "toarray") else theirs
            np.testing.assert_allclose(ours, theirs, rtol=1e-13, atol=1e-12)  # the same sums, perhaps in another order


def test_parquet_statistics_give_the_ranges_without_a_pass(tmp_path):
    """Integer ids read from Parquet files: their row groups' min and max give the range, so one pass in all."""
    df = _sleep(lambda codes: 1000 + 7 * codes.astype(np.int64))
    for i, (start, stop) in enumerate([(0, 70), (70, 130), (130, 180)]):
        df.iloc[start:stop].to_parquet(tmp_path / f"part{i}.parquet", index=False)
    with on("sync"):
        fit = mm.lmer(FORMULA, str(tmp_path / "*.parquet"))
    assert _fused(fit, 1) and "ranges" not in fit.model.seconds
    assert_same_fit(fit, mm.lmer(FORMULA, df))


# --------------------------------------------------------------------------- partitions of 10,000 rows and more
def _large(seed: int = 11) -> pd.DataFrame:
    """36,000 rows (three partitions above the size of the compiled sweeps), a big term with ids in blocks of
    consecutive integers and gaps, a crossed second term, and some missing values."""
    rng = np.random.default_rng(seed)
    n, groups = 36_000, 900
    subject = np.sort(rng.integers(0, groups, n)) * 3 + 50  # sorted: each partition spans a third of the ids
    item = rng.integers(0, 40, n)
    x = rng.normal(size=n)
    effects = rng.normal(size=(3 * groups + 50, 2)) * [0.8, 0.3]
    y = (
        0.5
        + 0.3 * x
        + effects[subject, 0]
        + effects[subject, 1] * x
        + rng.normal(0, 0.5, 40)[item]
        + rng.normal(size=n)
    )
    df = pd.DataFrame({"y": y, "x": x, "subject": subject, "item": item})
    df.loc[rng.choice(n, 30, replace=False), "y"] = np.nan
    return df


@pytest.mark.parametrize("scheduler", ["sync", "cluster"])
@pytest.mark.parametrize("formula", ["y ~ x + (1 + x | subject)", "y ~ x + (1 + x | subject) + (1 | item)"])
def test_large_partitions_take_the_compiled_sweeps(scheduler, formula, request):
    """Partitions of 12,000 rows: the big term's sums over the span of its ids and the columns' facts come from
    the compiled sweeps (with numba), and the fit is the in-memory one with the issue's tolerances."""
    df = _large()
    client = request.getfixturevalue("dask_client") if scheduler == "cluster" else None
    with on(scheduler, client):
        fit = mm.lmer(formula, partitioned(df, [12_000] * 3))
    memory = mm.lmer(formula, df)
    assert _fused(fit, 2)
    assert_same_fit(fit, memory)


@pytest.mark.parametrize("z_is_x", [True, False])
def test_span_sums_are_the_per_level_sums_of_the_present_levels(z_is_x):
    """The sweep over the span of the ids gives the levels with rows and the bincounts' sums of those levels."""
    from mixedmodels.dask import kernels
    from mixedmodels.dask.crossprods import _present_levels

    if kernels._compiled() is None:
        pytest.skip("numba is not installed (or MIXEDMODELS_NO_NUMBA is set)")
    rng = np.random.default_rng(3)
    n = 15_000
    refs = 500 + 2 * rng.integers(0, 3_000, n)  # every other id of a span, a third of them without rows
    x = np.column_stack([np.ones(n), rng.normal(size=n)])
    z = x if z_is_x else rng.normal(size=(n, 2))
    y = rng.normal(size=n)
    present, a11, zxy = kernels.present_level_sums(refs, z, x, y, 10_000)
    expected_present, local = _present_levels(refs, 10_000)
    np.testing.assert_array_equal(present, expected_present)
    monkey = kernels._compiled
    try:
        kernels._compiled = lambda: None  # type: ignore[assignment]  # the bincounts
        b11, bxy = kernels.per_level_sums(local, z, x, y, present.size)
    finally:
        kernels._compiled = monkey
    np.testing.assert_allclose(a11, b11, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(zxy, bxy, rtol=1e-12, atol=1e-9)
    assert kernels.present_level_sums(refs * 1000, z, x, y, 10**7) is None  # span >> rows: the caller's path


def test_compiled_column_facts_are_the_numpy_facts():
    """X's sums, deviations, 0/1 flags and X'X and the response's sums and range: the numpy path's numbers;
    a non-finite value leaves the facts to the numpy path (which counts it)."""
    from mixedmodels.dask import kernels

    if kernels._compiled_facts() is None:
        pytest.skip("numba is not installed (or MIXEDMODELS_NO_NUMBA is set)")
    rng = np.random.default_rng(5)
    n = 12_000
    x = np.column_stack([np.ones(n), rng.normal(size=n), rng.integers(0, 2, n).astype(float), rng.normal(3, 1, n)])
    y = rng.normal(size=n)
    sums, m2, binary, gram, y_stats = kernels.plain_column_facts(x, y)
    np.testing.assert_allclose(sums, x.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(m2, ((x - x.mean(axis=0)) ** 2).sum(axis=0), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(binary, [True, False, True, False])
    np.testing.assert_allclose(gram, x.T @ x, rtol=1e-12)
    np.testing.assert_allclose(y_stats, [y.sum(), y @ y, y.min(), y.max()], rtol=1e-12)
    x[7, 1] = np.inf
    assert kernels.plain_column_facts(x, y) is None


# --------------------------------------------------------------------------- A21 merged on the client in pieces
def _wide_crossed(text_ids: bool = False) -> pd.DataFrame:
    """A crossed design whose second term has 300 levels: A21 is sparse with more rows than ``WIDE_ROWS``."""
    rng = np.random.default_rng(17)
    n = 9_000
    user = np.sort(rng.integers(0, 600, n))  # rows partitioned by user
    item = rng.integers(0, 300, n)
    x = rng.normal(size=n)
    y = 1.0 + 0.2 * x + rng.normal(0, 0.8, 600)[user] + rng.normal(0, 0.5, 300)[item] + rng.normal(size=n)
    df = pd.DataFrame({"y": y, "x": x, "user": user, "item": item})
    if text_ids:
        df["item"] = np.array([f"i{i}" for i in item], dtype=object)
    return df


@pytest.mark.parametrize("scheduler", ["sync", "cluster"])
@pytest.mark.parametrize("text_ids", [False, True])  # the fused pass; two passes (text ids need pass 1)
def test_wide_a21_is_merged_in_pieces_as_the_root_merges_it(scheduler, text_ids, request, monkeypatch):
    """The last sum made on the client, A21 in pieces of a few rows: the root's A21 bit for bit, and the fit is
    the in-memory one with the issue's tolerances."""
    from mixedmodels.dask import pieces

    df = _wide_crossed(text_ids)
    formula = "y ~ x + (1 | user) + (1 | item)"
    client = request.getfixturevalue("dask_client") if scheduler == "cluster" else None
    monkeypatch.setattr(pieces, "PIECE_NONZEROS", 1_000)  # pieces of a few rows
    runs: list = []
    cut = pieces._pieces
    monkeypatch.setattr(pieces, "_pieces", lambda bound: runs.append(cut(bound)) or runs[-1])
    with on(scheduler, client):
        fit = mm.lmer(formula, partitioned(df, [1_500] * 6))
        monkeypatch.setattr(pieces, "WIDE_ROWS", 10**9)  # the tree's root merges A21
        rooted = mm.lmer(formula, partitioned(df, [1_500] * 6))
    assert len(runs) == 1 and len(runs[0]) > 10  # merged in pieces once, then by the root
    assert ("pass 1" in fit.model.seconds) == text_ids
    assert (fit.model.crossprods.a21 != rooted.model.crossprods.a21).nnz == 0
    assert fit.objective == rooted.objective
    assert_same_fit(fit, mm.lmer(formula, df))


def test_the_workers_plan_encodes_as_the_plan_without_the_level_labels():
    """Integer ids in a range and known categories: the partitions' codes need only the number of levels."""
    import pickle

    from mixedmodels.dask.encode import encode_partition
    from mixedmodels.dask.fused import for_workers
    from mixedmodels.dask.inputs import parse_with_response, plan_model
    from mixedmodels.dask.source import DataSource

    df = _large()
    df["subject"] = (df["subject"] - 50) // 3  # ids 0, 1, ...: coded by subtracting the first
    df["item"] = pd.Categorical(df["item"].astype(str))
    source = DataSource.make(dd.from_pandas(df, npartitions=3))
    with on("sync"):
        plan, _ = plan_model(parse_with_response("y ~ x + (1 + x | subject) + (1 | item)"), source, None)
    slim = for_workers(plan)
    for term, light in zip(plan.terms, slim.terms):  # 900 labels and ids; 40 labels and categories
        assert len(pickle.dumps(light.levels)) + len(pickle.dumps(light.coders[0].levels)) < 500
        assert len(pickle.dumps(term.levels)) + len(pickle.dumps(term.coders[0].levels)) > 500
    full, light = encode_partition(df, plan), encode_partition(df, slim)
    for a, b in zip(full.refs, light.refs):
        np.testing.assert_array_equal(a, b)
    assert [t.nlevels for t in slim.terms] == [t.nlevels for t in plan.terms]
