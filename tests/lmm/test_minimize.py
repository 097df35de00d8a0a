"""lmm/minimize.py's small pieces: lme4's canonical signs of a fitted theta."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from mixedmodels.design.covariance import UNSTRUCTURED, canonical_theta, lower_triangle
from mixedmodels.lmm.minimize import _negative_diagonal, canonical_signs


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_negative_diagonal_reads_lambdas_diagonal(k):
    """The diagonal of a column-major lower triangle, at an offset: the same answer as forming lambda."""
    rng = np.random.default_rng(k)
    for _ in range(500):
        theta = rng.normal(size=k * (k + 1) // 2)
        lam = np.zeros((k, k))
        lam[lower_triangle(k)] = theta
        assert _negative_diagonal(np.r_[1.0, theta], 1, k) == bool((np.diagonal(lam) < 0).any())


def test_canonical_signs_flips_negative_columns_and_leaves_the_rest():
    """Two vector terms: the one with a negative diagonal is canonical_theta's, the other and a trailing
    parameter (a residual structure's) unchanged, bit for bit; the input is not modified."""
    layouts = [
        SimpleNamespace(structure=UNSTRUCTURED, ncols=2, theta_start=0, theta_stop=3),
        SimpleNamespace(structure=UNSTRUCTURED, ncols=2, theta_start=3, theta_stop=6),
    ]
    theta = np.array([0.9, -0.3, 0.2, -0.5, 0.1, 0.4, -0.7])
    before = theta.copy()
    x = canonical_signs(theta, layouts)
    np.testing.assert_array_equal(theta, before)
    np.testing.assert_array_equal(x[:3], theta[:3])
    np.testing.assert_array_equal(x[3:6], canonical_theta(theta[3:6], 2))
    assert x[6] == theta[6]
    assert (x[[3, 5]] >= 0).all()
