"""Closed-form 2 x 2 factors and solves agree with NumPy's (LAPACK's) within rounding-error bounds.

The closed forms repeat LAPACK's reference arithmetic, so with OpenBLAS's
Haswell kernel they give the same bits; other kernels (SkylakeX's ``dgesv``)
order the operations differently and differ in the last place.  The tests
therefore compare with bounds that follow from the conditioning of what is
computed (Higham, *Accuracy and Stability of Numerical Algorithms*, 2002,
Thm 10.3 for Cholesky, Thm 8.5 for triangular solves): with unit roundoff
``u``, a backward-stable result is within ``c u kappa`` (relative) of any
other backward-stable one, ``kappa`` the condition number of the 2 x 2 block.
"""

from __future__ import annotations

import numpy as np
import pytest

from mixedmodels.linalg.small import (
    cholesky_2x2,
    first_block_factor_2x2,
    first_block_roots_2x2,
    first_block_weights_2x2,
)

pytestmark = pytest.mark.numerics  # .ci/run runs these again under another BLAS kernel

LAMS = [
    np.array([[0.97, 0.0], [0.015, 0.23]]),  # sleepstudy's optimum, scaled
    np.array([[1.3, 0.0], [-0.7, 0.01]]),
    np.array([[1e-3, 0.0], [0.1, 5.0]]),  # |b| > |a| in most factors: LAPACK pivots
    np.array([[0.0, 0.0], [0.0, 0.4]]),  # a singular fit's boundary
    np.array([[2.0, 0.0], [0.0, 0.0]]),
    np.array([[1.3, 0.4], [-0.7, 0.01]]),  # not triangular
]


def _blocks(q: int, seed: int) -> np.ndarray:
    """Random symmetric positive semi-definite 2 x 2 blocks of varied scales (some rank 1)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(q, 4, 2)) * rng.lognormal(sigma=2.0, size=(q, 1, 1))
    x[: q // 10, :, 1] = x[: q // 10, :, 0] * 3.0  # rank one
    return np.einsum("qni,qnj->qij", x, x)


_U = np.finfo(float).eps / 2  # unit roundoff
_C = 16  # a generous constant for the 2 x 2 error bounds (the theorems give 3-6)


def _cond(mats: np.ndarray) -> np.ndarray:
    """2-norm condition number of each matrix of a (q, 2, 2) stack, shape (q, 1, 1)."""
    sv = np.linalg.svd(mats, compute_uv=False)
    return (sv[:, 0] / sv[:, 1]).reshape(-1, 1, 1)


def _assert_within_bound(ours: np.ndarray, theirs: np.ndarray, kappa: np.ndarray) -> None:
    """Every level's block agrees within ``_C u kappa`` times the block's largest entry."""
    scale = np.abs(theirs).max(axis=(1, 2), keepdims=True)
    excess = np.abs(ours - theirs) - _C * _U * kappa * scale
    assert np.all(excess <= 0), f"worst excess over the bound: {excess.max():.3g}"


def _reference(a11: np.ndarray, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What linalg/blocked.py computes for k = 2 with einsum and np.linalg."""
    l11 = np.linalg.cholesky(np.einsum("ji,qjl,lm->qim", lam, a11, lam) + np.eye(2))
    g = np.linalg.solve(l11, np.broadcast_to(lam.T, l11.shape))
    return l11, g, np.einsum("qji,qjm->qim", g, g)


@pytest.mark.parametrize("lam", LAMS)
@pytest.mark.parametrize("seed", [0, 1])
def test_first_block_helpers_agree_with_numpy_within_rounding(lam: np.ndarray, seed: int) -> None:
    a11 = _blocks(5000, seed)
    l11, g, w = _reference(a11, lam)
    kappa_l = _cond(l11)  # cond(L) = sqrt(cond(L L')): the factor's sensitivity (Higham Thm 10.8)
    _assert_within_bound(first_block_factor_2x2(a11, lam), l11, kappa_l)
    # the solves get NumPy's own factor, so only the solve's rounding differs: bound cond(L) |g|
    _assert_within_bound(first_block_roots_2x2(l11, lam), g, kappa_l)
    _assert_within_bound(first_block_weights_2x2(l11, lam), w, kappa_l**2)


@pytest.mark.parametrize("lam", LAMS)
def test_first_block_factor_is_backward_stable(lam: np.ndarray) -> None:
    """|L L' - S| <= c u (|L| |L'| + |lam'| |A| |lam|) entry by entry: Higham Thm 10.3 for the
    factor, plus the rounding of forming S = lam' A lam + I (whose sums can cancel)."""
    a11 = _blocks(5000, 2)
    s = np.einsum("ji,qjl,lm->qim", lam, a11, lam) + np.eye(2)
    l11 = first_block_factor_2x2(a11, lam)
    residual = np.abs(l11 @ np.swapaxes(l11, 1, 2) - s)
    forming = np.einsum("ji,qjl,lm->qim", np.abs(lam), np.abs(a11), np.abs(lam)) + np.eye(2)
    bound = _C * _U * (np.abs(l11) @ np.abs(np.swapaxes(l11, 1, 2)) + forming)
    assert np.all(residual <= bound)


def test_pivoted_rows_are_exercised() -> None:
    l11 = first_block_factor_2x2(_blocks(5000, 0), LAMS[2])
    assert np.mean(np.abs(l11[:, 1, 0]) > np.abs(l11[:, 0, 0])) > 0.3


def test_cholesky_equals_numpy_on_spd_stacks() -> None:
    s = _blocks(5000, 3) + np.eye(2) * 1e-3
    s[:, 0, 1] = np.nan  # only the lower triangle is read, as np.linalg.cholesky
    factor = cholesky_2x2(s)
    expected = np.linalg.cholesky(s)
    _assert_within_bound(factor, expected, _cond(expected))
    np.testing.assert_array_equal(factor[:, 0, 1], 0.0)
    np.testing.assert_allclose(
        factor @ np.swapaxes(factor, 1, 2), np.tril(s) + np.swapaxes(np.tril(s, -1), 1, 2), rtol=1e-12
    )


@pytest.mark.parametrize(
    "bad",
    [
        np.array([[[1.0, 2.0], [2.0, 1.0]]]),  # indefinite
        np.array([[[0.0, 0.0], [0.0, 1.0]]]),  # singular
        np.array([[[-1.0, 0.0], [0.0, 1.0]]]),
        np.array([[[1.0, 0.0], [np.inf, 1.0]]]),
    ],
)
def test_cholesky_refuses_what_numpy_refuses(bad: np.ndarray) -> None:
    with pytest.raises(np.linalg.LinAlgError):
        np.linalg.cholesky(bad)
    with pytest.raises(np.linalg.LinAlgError):
        cholesky_2x2(np.concatenate([np.eye(2)[None], bad]))


@pytest.mark.parametrize("where", [(0, 0), (1, 0), (1, 1)])
def test_cholesky_passes_nan_through_as_numpy(where: tuple[int, int]) -> None:
    s = np.array([[[4.0, 1.0], [1.0, 3.0]], [[1.0, 0.0], [0.0, 1.0]]])
    s[(1, *where)] = np.nan
    ours, theirs = cholesky_2x2(s), np.linalg.cholesky(s)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_allclose(ours[0], theirs[0], rtol=_C * _U)


def test_inputs_are_not_modified() -> None:
    a11, lam = _blocks(50, 4), LAMS[2].copy()
    before = a11.copy(), lam.copy()
    l11 = first_block_factor_2x2(a11, lam)
    l11_before = l11.copy()
    first_block_weights_2x2(l11, lam)
    first_block_roots_2x2(l11, lam)
    np.testing.assert_array_equal(a11, before[0])
    np.testing.assert_array_equal(lam, before[1])
    np.testing.assert_array_equal(l11, l11_before)
