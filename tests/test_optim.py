"""BOBYQA wrapper and its fit log."""

import numpy as np
import pytest

from mixedmodels.optim import OptimizerSettings, minimize_bounded

pytestmark = pytest.mark.numerics  # .ci/run runs these again under another BLAS kernel


def test_minimizes_within_bounds_and_logs():
    info = minimize_bounded(lambda x: (x[0] + 1) ** 2 + (x[1] - 2) ** 2, np.array([1.0, 0.0]), np.array([0.0, -np.inf]))
    np.testing.assert_allclose(info.final, [0.0, 2.0], atol=1e-6)
    assert info.feval > 0 and info.converged and info.seconds >= 0
    assert "converged=True" in repr(info)


def test_maxeval_is_reported_as_not_converged():
    info = minimize_bounded(lambda x: np.sum((x - 3) ** 2), np.zeros(3), np.full(3, -np.inf), settings=OptimizerSettings(maxeval=10))
    assert not info.converged and "maximum number of evaluations" in info.message
