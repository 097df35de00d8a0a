"""The reordered, supernodal rest block (linalg/reordered_rest.py) against the original-order factor."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import need_numba

need_numba("the reordered rest block needs numba (the 'fast' extra)")

import mixedmodels.linalg.blocked as blocked  # noqa: E402
import mixedmodels.linalg.reordered_rest as reordered_rest  # noqa: E402
from mixedmodels.linalg import BlockedCrossProducts  # noqa: E402
from mixedmodels.linalg.rank_update import VectorRankUpdate  # noqa: E402

pytestmark = pytest.mark.numerics  # .ci/run runs these again under another BLAS kernel


def _crossed(seed=3, n=2000, rest_k=1):
    """Students x lecturers x departments, all scalar (like InstEval) unless ``rest_k`` is 2."""
    rng = np.random.default_rng(seed)
    nlevels = [300, 120, 6]
    lecturer_dept = rng.integers(0, nlevels[2], nlevels[1])
    student = rng.integers(0, nlevels[0], n)
    # each student sees lecturers of a few departments: a sparse, clustered rest block
    lecturer = (student * 7 + rng.integers(0, 15, n)) % nlevels[1]
    refs = [student, lecturer, lecturer_dept[lecturer]]
    x = rng.normal(size=n)
    zs = [np.ones((n, 1)), np.ones((n, 1)), np.ones((n, 1)) if rest_k == 1 else np.column_stack([np.ones(n), x])]
    xy = np.column_stack([np.ones(n), x, rng.normal(size=n) + x])
    theta = np.array([0.6, 0.9] + ([0.4] if rest_k == 1 else [0.4, 0.1, 0.3]))
    return refs, zs, nlevels, xy, theta


@pytest.fixture
def always_reorder(monkeypatch):
    """Reorder whatever the size and density (the defaults keep small blocks dense)."""
    monkeypatch.setattr(blocked, "_DENSE_LIMIT", 0)
    monkeypatch.setattr(reordered_rest, "_MIN_ROWS", 0)
    monkeypatch.setattr(reordered_rest, "_MIN_ROWS_TO_LOAD", 0)
    monkeypatch.setattr(reordered_rest, "_MAX_DENSITY", 1.0)
    monkeypatch.setattr(reordered_rest, "_MAX_FLOP_SHARE", 1.0)


@pytest.mark.parametrize("theta_scale", [1.0, 0.05, 3.0])
def test_objective_factor_gives_the_original_objective_and_solution(always_reorder, theta_scale):
    refs, zs, nlevels, xy, theta = _crossed()
    theta = theta * theta_scale
    cp = BlockedCrossProducts.build(refs, zs, nlevels, xy)
    assert cp.reordered_rest is not None
    fast, plain = cp.objective_factor(theta), cp.factorize(theta)
    assert fast.order is not None and plain.order is None
    assert sorted(fast.order) == list(range(cp.nre_rest))
    assert fast.ok and plain.ok
    assert fast.logdet_re() == pytest.approx(plain.logdet_re(), rel=1e-12)
    assert fast.logdet_x() == pytest.approx(plain.logdet_x(), rel=1e-12)
    assert fast.pwrss() == pytest.approx(plain.pwrss(), rel=1e-10)
    beta_fast, u_fast = fast.solve()
    beta_plain, u_plain = plain.solve()
    np.testing.assert_allclose(beta_fast, beta_plain, rtol=1e-10)
    for a, b in zip(u_fast, u_plain):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="reordered"):
        fast.l22


def test_the_original_order_factor_uses_the_level_update(always_reorder):
    """Once the block is reordered, the original-order factor takes the same per-level update (no grouped plan)."""
    refs, zs, nlevels, xy, theta = _crossed()
    cp = BlockedCrossProducts.build(refs, zs, nlevels, xy)
    assert isinstance(cp.rank_update_plan, VectorRankUpdate)
    np.testing.assert_array_equal(
        cp.reordered_rest.cholesky.order[cp.nre_rest :], np.arange(cp.nre_rest, cp.a22.shape[0])
    )


def test_rank_deficient_fixed_effects_are_reported(always_reorder):
    refs, zs, nlevels, xy, theta = _crossed()
    xy = np.column_stack([xy[:, :2], 2 * xy[:, 1], xy[:, 2]])  # a repeated column
    cp = BlockedCrossProducts.build(refs, zs, nlevels, xy)
    assert not cp.objective_factor(theta).ok


def test_only_where_it_pays(monkeypatch):
    monkeypatch.setattr(blocked, "_DENSE_LIMIT", 0)
    refs, zs, nlevels, xy, theta = _crossed()
    assert BlockedCrossProducts.build(refs, zs, nlevels, xy).reordered_rest is None  # 129 rows: LAPACK is cheaper
    monkeypatch.setattr(reordered_rest, "_MIN_ROWS", 0)
    monkeypatch.setattr(reordered_rest, "_MIN_ROWS_TO_LOAD", 0)
    monkeypatch.setattr(reordered_rest, "_MAX_DENSITY", 0.01)
    assert BlockedCrossProducts.build(refs, zs, nlevels, xy).reordered_rest is None  # too dense
    monkeypatch.setattr(reordered_rest, "_MAX_DENSITY", 1.0)
    monkeypatch.setattr(reordered_rest, "_MAX_FLOP_SHARE", 0.0)
    assert BlockedCrossProducts.build(refs, zs, nlevels, xy).reordered_rest is None  # no flops saved


def test_not_for_vector_rest_terms_or_without_numba(always_reorder, monkeypatch):
    from mixedmodels.linalg import _kernels

    refs, zs, nlevels, xy, theta = _crossed(rest_k=2)
    cp = BlockedCrossProducts.build(refs, zs, nlevels, xy)
    assert cp.reordered_rest is None
    assert cp.objective_factor(theta).order is None
    monkeypatch.setenv("MIXEDMODELS_NO_NUMBA", "1")
    _kernels.jit.cache_clear()
    try:
        refs, zs, nlevels, xy, theta = _crossed()
        assert BlockedCrossProducts.build(refs, zs, nlevels, xy).reordered_rest is None
    finally:
        _kernels.jit.cache_clear()


def test_conditional_variances_of_a_reordered_factor_are_those_of_the_original_order(always_reorder):
    from mixedmodels.linalg.condvar import conditional_variances

    refs, zs, nlevels, xy, theta = _crossed()
    cp = BlockedCrossProducts.build(refs, zs, nlevels, xy)
    fast = cp.objective_factor(theta)
    assert fast.in_original_order().order is None
    for a, b in zip(conditional_variances(fast), conditional_variances(cp.factorize(theta))):
        np.testing.assert_array_equal(a, b)


def test_the_strict_upper_triangle_is_never_read(always_reorder):
    """The reordered block's upper triangle is left unwritten (np.empty): NaN there must change nothing."""
    refs, zs, nlevels, xy, theta = _crossed()
    cp = BlockedCrossProducts.build(refs, zs, nlevels, xy)
    fast = cp.objective_factor(theta)
    expected_beta, expected_u = fast.solve()
    expected = (fast.logdet_re(), fast.logdet_x(), fast.pwrss(), fast.fixed_factor()[0].tolist())
    fast._l22[np.triu_indices(fast._l22.shape[0], 1)] = np.nan
    beta, u = fast.solve()
    np.testing.assert_array_equal(beta, expected_beta)
    for a, b in zip(u, expected_u):
        np.testing.assert_array_equal(a, b)
    assert (fast.logdet_re(), fast.logdet_x(), fast.pwrss(), fast.fixed_factor()[0].tolist()) == expected


def _crossed_frame(seed=11, n=3000):
    """A data frame like InstEval: students x lecturers, lecturers within departments, a binary service."""
    import pandas as pd

    refs, _, nlevels, _, _ = _crossed(seed=seed, n=n)
    rng = np.random.default_rng(seed)
    service = rng.integers(0, 2, n)
    effects = [rng.normal(0, sd, q) for sd, q in zip([0.5, 0.8, 0.3], nlevels)]
    y = 3 + 0.4 * service + sum(e[r] for e, r in zip(effects, refs)) + rng.normal(size=n)
    return pd.DataFrame(
        {
            "y": y,
            "service": pd.Categorical(service.astype(str)),
            "s": pd.Categorical(refs[0].astype(str)),
            "d": pd.Categorical(refs[1].astype(str)),
            "dept": pd.Categorical(refs[2].astype(str)),
        }
    )


@pytest.mark.parametrize("REML", [True, False])
def test_whole_fits_agree_with_the_original_order_path(monkeypatch, REML):
    """lmer through the supernodal path and through LAPACK's: the same estimates, SEs, modes, df."""
    import warnings

    import mixedmodels as mm

    data = _crossed_frame()
    formula = "y ~ service + (1 | s) + (1 | d) + (1 | dept)"

    monkeypatch.setattr(blocked, "_DENSE_LIMIT", 0)

    def fit(reorder: bool):
        for name, value in [
            ("_MIN_ROWS", 0 if reorder else 10**9),
            ("_MIN_ROWS_TO_LOAD", 0 if reorder else 10**9),
            ("_MAX_DENSITY", 1.0),
            ("_MAX_FLOP_SHARE", 1.0),
        ]:
            monkeypatch.setattr(reordered_rest, name, value)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return mm.lmer(formula, data, REML=REML)

    fast, plain = fit(True), fit(False)
    assert fast.model.crossprods.reordered_rest is not None and plain.model.crossprods.reordered_rest is None
    assert fast._factor.order is not None
    assert fast.objective == pytest.approx(plain.objective, rel=1e-10)
    np.testing.assert_allclose(fast.theta, plain.theta, rtol=1e-4)
    np.testing.assert_allclose(fast.beta, plain.beta, rtol=1e-6)
    np.testing.assert_allclose(fast.se, plain.se, rtol=1e-4)
    fast_modes, plain_modes = fast.ranef(condvar=True), plain.ranef(condvar=True)
    for group in plain_modes:
        np.testing.assert_allclose(
            fast_modes[group].to_numpy(float), plain_modes[group].to_numpy(float), rtol=1e-3, atol=1e-6
        )
    if REML:
        np.testing.assert_allclose(
            fast.coef_table(ddf="satterthwaite")["df"], plain.coef_table(ddf="satterthwaite")["df"], rtol=1e-3
        )


def test_with_response_keeps_the_analysis_and_gives_the_new_responses_factor(always_reorder):
    refs, zs, nlevels, xy, theta = _crossed()
    other = xy.copy()
    other[:, -1] = np.random.default_rng(9).normal(size=xy.shape[0])
    cp = BlockedCrossProducts.build(refs, zs, nlevels, xy)
    fresh = BlockedCrossProducts.build(refs, zs, nlevels, other)
    assert cp.reordered_rest is not None
    swapped = cp.with_response(fresh.a21, fresh.a22)
    assert swapped.reordered_rest.cholesky is cp.reordered_rest.cholesky
    got, expected = swapped.objective_factor(theta), fresh.objective_factor(theta)
    assert got.pwrss() == pytest.approx(expected.pwrss(), rel=1e-12)
    assert got.logdet_re() == pytest.approx(expected.logdet_re(), rel=1e-12)
    np.testing.assert_allclose(got.solve()[0], expected.solve()[0], rtol=1e-10)
    plain = BlockedCrossProducts.build(refs, zs, nlevels, xy)  # nothing analysed yet: nothing to carry
    assert "reordered_rest" not in plain.with_response(fresh.a21, fresh.a22).__dict__
