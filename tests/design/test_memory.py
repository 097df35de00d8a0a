"""Memory bounded before it is spent (issue 22, item 9).

The size of a model's matrices is estimated from the design before they are
allocated (:mod:`mixedmodels.design.size`), and a model whose estimate exceeds
the limit (``max_memory=``, else the memory available) is refused with the
estimate and what to do.  benchmarks/memory_estimate.py checks the estimate
against measured peaks (within 2x); these tests check the refusals.

The 20,000 x 20,000 crossed design on 50,000 rows would need a dense
~18,000^2 rest block (19 GB); it is held and factored sparsely instead
(:mod:`mixedmodels.linalg.sparse_rest`), estimated at ~0.46 GB (measured peak 0.54 GB:
benchmarks/results/2026-12-07-memory-estimate.md).  Its fit takes over a minute,
so the test checks the chosen path and the estimate, not the fit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import mixedmodels as mm
from mixedmodels._memory import format_size, parse_size
from mixedmodels.design.size import model_memory, rest_block_size


@pytest.mark.parametrize("text, size", [("8GB", 8e9), ("1.5 GiB", 1.5 * 2**30), ("500mb", 5e8), (1024, 1024.0)])
def test_sizes_are_read(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["lots", "-1GB", 0, -5, float("nan"), True])
def test_bad_sizes_are_refused_by_name(bad, sleepstudy):
    with pytest.raises(mm.MixedModelsError, match="^max_memory"):
        mm.lmer("Reaction ~ Days + (1 | Subject)", sleepstudy, max_memory=bad)


def test_a_factor_crossed_as_fixed_effects_is_refused_before_x_is_built():
    rng = np.random.default_rng(0)
    n = 2000
    data = pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "a": pd.Categorical(rng.integers(0, 1000, n)),
            "b": pd.Categorical(rng.integers(0, 1000, n)),
            "g": rng.integers(0, 10, n).astype(str),
        }
    )
    with pytest.raises(mm.MixedModelsError, match=r"fixed-effects matrix X needs about .* the term 'a:b'") as info:
        mm.lmer("y ~ a * b + (1 | g)", data, max_memory="1GB")
    assert "(1 | a:b)" in str(info.value) and "max_memory='1GB'" in str(info.value)


def _text_factors(n: int, levels: int) -> pd.DataFrame:
    rng = np.random.default_rng(2)
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "a": rng.integers(0, levels, n).astype(str),
            "b": rng.integers(0, levels, n).astype(str),
            "g": rng.integers(0, 10, n).astype(str),
        }
    )


def test_text_factors_crossed_as_fixed_effects_are_refused_as_categorical_ones_are():
    """The bound read off the dtypes (one level per row for text) is over the limit, so the levels are
    counted: the refusal names the same term and counts as for categorical columns."""
    with pytest.raises(mm.MixedModelsError, match=r"fixed-effects matrix X needs about .* the term 'a:b'") as info:
        mm.lmer("y ~ a * b + (1 | g)", _text_factors(2000, 1000), max_memory="1GB")
    assert "'a' (" in str(info.value) and "max_memory='1GB'" in str(info.value)


def test_a_design_over_the_dtype_bound_but_within_the_limit_is_fitted():
    """Two text factors of 3 levels on 2,000 rows: bounded by 2,000^2 columns of X (96 GB) from their
    dtypes, but 16 by their levels: the count decides, and the model is fitted."""
    data = _text_factors(2000, 3)
    data["y"] += np.arange(10.0)[data["g"].astype(int)]  # a clear group effect: not a singular fit
    fit = mm.lmer("y ~ a * b + (1 | g)", data, max_memory="1GB")
    assert fit.nobs == 2000 and len(fit.fixef) == 9


@pytest.mark.parametrize(
    "column",
    [
        np.arange(6.0),
        np.arange(6),
        pd.array([1, 2, None, 4, 5, 6], dtype="Int64"),
        np.array(list("aabbcc"), dtype=object),
        pd.array(list("aabbcc"), dtype="string"),
        pd.Categorical(list("aabbcc"), categories=list("abcd")),
        np.array([True, False] * 3),
    ],
    ids=["float", "int", "Int64", "object", "string", "categorical", "bool"],
)
def test_the_dtype_bound_is_never_below_the_level_count(column):
    from mixedmodels.design.size import _level_bound, _levels

    series = pd.Series(column)
    assert _level_bound(series.dtype, len(series)) >= (_levels(series) or 1)


def test_the_available_memory_is_read_at_most_once_a_second(monkeypatch):
    from mixedmodels import _memory

    readings = iter([8e9, 4e9])
    monkeypatch.setattr(_memory, "_read_available_memory", lambda: next(readings))
    monkeypatch.setattr(_memory, "_last_reading", None)
    clock = [100.0]
    monkeypatch.setattr(_memory, "_clock", lambda: clock[0])
    assert _memory.available_memory() == 8e9
    clock[0] += 0.5
    assert _memory.available_memory() == 8e9  # the same reading within the second
    clock[0] += 1.0
    assert _memory.available_memory() == 4e9


def _crossed(n: int, levels: int) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "a": pd.Categorical(rng.integers(0, levels, n)),
            "b": pd.Categorical(rng.integers(0, levels, n)),
        }
    )


def test_the_20k_crossed_design_is_held_sparsely_and_estimated_under_2gb():
    from mixedmodels.design.inputs import prepare_inputs

    data = _crossed(50_000, 20_000)
    inputs = prepare_inputs("y ~ 1 + (1 | a) + (1 | b)", data)
    estimate = model_memory(inputs.nobs, 1, inputs.terms)
    assert estimate.total < 2e9
    assert "sparse rest block's factor" in estimate.describe()
    model = mm.LinearMixedModel.from_formula("y ~ 1 + (1 | a) + (1 | b)", data, max_memory="2GB")
    cp = model.crossprods
    assert cp.sparse_rest is not None and sp.issparse(cp.a22)
    assert cp.a22.shape[0] > 18_000 and cp.a22.nnz < 10 * cp.a22.shape[0]  # Z_b'Z_b diagonal, plus the y row


def test_the_20k_crossed_design_is_still_refused_under_a_smaller_limit():
    with pytest.raises(mm.MixedModelsError, match=r"sparse rest block's factor.* more than max_memory='100MB'") as info:
        mm.lmer("y ~ 1 + (1 | a) + (1 | b)", _crossed(50_000, 20_000), max_memory="100MB")
    assert "'b'" in str(info.value) and "factored sparsely" in str(info.value)


def test_the_estimate_grows_with_the_rest_block():
    small = _crossed(5_000, 500)
    from mixedmodels.design.inputs import prepare_inputs

    inputs = prepare_inputs("y ~ 1 + (1 | a) + (1 | b)", small)
    m = rest_block_size(inputs.terms, 1)
    assert m == 500 + 1 + 1
    estimate = model_memory(inputs.nobs, 1, inputs.terms)
    assert 6 * 8 * m * m <= estimate.total < 6 * 8 * m * m + 5e6
    assert format_size(estimate.total).endswith("MB")


def test_a_model_that_fits_is_not_refused(sleepstudy):
    fit = mm.lmer("Reaction ~ Days + (1 | Subject)", sleepstudy, max_memory="100MB")
    assert fit.nobs == 180


def test_glmer_has_no_sparse_path_so_the_20k_design_is_estimated_dense():
    """PIRLS assembles a dense rest block: glmer's estimate (19 GB) must not borrow lmer's sparse one."""
    data = _crossed(50_000, 20_000)
    data["y"] = (data["y"] > 0).astype(float)
    with pytest.raises(
        mm.MixedModelsError, match=r"dense rest block, 18,\d{3} x 18,\d{3}.* more than max_memory='2GB'"
    ):
        mm.glmer("y ~ 1 + (1 | a) + (1 | b)", data, family="binomial", max_memory="2GB")


@pytest.mark.parametrize(("levels", "n"), [(4_000, 10_000), (4_000, 6_000), (2_000, 12_000)])
def test_the_sparse_fill_estimate_is_within_2x_of_a_minimum_degree_factor(levels, n):
    """sparse_factor_entries against the fill of SuperLU's minimum-degree factor of the same pattern."""
    import scipy.sparse.linalg as spla

    from mixedmodels.design.inputs import prepare_inputs
    from mixedmodels.design.size import sparse_factor_entries

    inputs = prepare_inputs("y ~ 1 + (1 | a) + (1 | b)", _crossed(n, levels))
    first, rest = sorted(inputs.terms, key=lambda t: len(t.levels), reverse=True)
    z1 = sp.csc_array((np.ones(n), (np.arange(n), first.refs)), shape=(n, len(first.levels)))
    z2 = sp.csc_array((np.ones(n), (np.arange(n), rest.refs)), shape=(n, len(rest.levels)))
    a21 = z2.T @ z1
    weights = 1.0 / (np.asarray(z1.sum(axis=0)).ravel() + 1.0)  # theta = 1
    block = sp.csc_array(z2.T @ z2 - a21 @ sp.diags_array(weights) @ a21.T + sp.eye_array(z2.shape[1]))
    lu = spla.splu(block, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    measured = lu.L.nnz
    assert 0.5 * measured <= sparse_factor_entries(inputs.terms) <= 2.0 * measured


def test_a_small_model_reads_no_available_memory(monkeypatch, sleepstudy):
    """A design far below what the process holds is not compared with the machine's memory (no file read);
    with max_memory= it is, however small the model."""
    from mixedmodels import _memory

    def unexpected():
        raise AssertionError("the available memory was read for a small model")

    monkeypatch.setattr(_memory, "_last_reading", None)
    monkeypatch.setattr(_memory, "_read_available_memory", unexpected)
    assert mm.lmer("Reaction ~ Days + (Days | Subject)", sleepstudy).nobs == 180
    with pytest.raises(mm.MixedModelsError, match="more than max_memory='1kB'"):
        mm.lmer("Reaction ~ Days + (Days | Subject)", sleepstudy, max_memory="1kB")


def test_an_estimate_over_the_floor_is_checked_against_the_available_memory(monkeypatch):
    """X of 200,000 rows x 11 columns (~53 MB at its peak) is over the floor: the available memory (made
    1 MB here) is read and refuses it."""
    from mixedmodels import _memory
    from mixedmodels.design.size import check_fixed_size

    monkeypatch.setattr(_memory, "_last_reading", None)
    monkeypatch.setattr(_memory, "_read_available_memory", lambda: 1e6)
    data = pd.DataFrame(np.zeros((200_000, 10)), columns=[f"x{j}" for j in range(10)])
    rhs = " + ".join(data.columns)
    with pytest.raises(mm.MixedModelsError, match="fixed-effects matrix X needs about .* the memory available now"):
        check_fixed_size(rhs, data)
    assert not _memory.worth_checking(_memory.NEVER_REFUSED_BYTES, None)
    assert _memory.worth_checking(1.0, "1kB")
