"""``cbind`` responses read from the columns directly (:func:`mixedmodels.design.response._column_cbind`).

The direct path must give formulaic's numbers exactly (whole numbers and float64 arithmetic are exact
in both), so the comparisons are bit for bit; anything it does not read takes the general evaluation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.design import response as response_module
from mixedmodels.design.response import build_response


def _by_formulaic(monkeypatch: pytest.MonkeyPatch, lhs: str, data: pd.DataFrame) -> np.ndarray:
    with monkeypatch.context() as patch:
        patch.setattr(response_module, "_column_cbind", lambda *args: None)
        return build_response(lhs, data)


@pytest.fixture
def data() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "k": rng.integers(0, 5, 20),
            "n": rng.integers(5, 9, 20).astype(np.int32),
            "x": rng.random(20) * 10.0,
            "f32": rng.random(20).astype(np.float32),
            "flag": rng.random(20) > 0.5,
        }
    )


@pytest.mark.parametrize(
    "lhs", ["cbind(k, n - k)", "cbind(k, 10 - k)", "cbind(k + 1, n + k - 2)", "cbind(x, 20.5 - x)", "cbind( k ,n-k )"]
)
def test_column_cbind_is_formulaics_bit_for_bit(monkeypatch: pytest.MonkeyPatch, data: pd.DataFrame, lhs: str) -> None:
    assert response_module._column_cbind(lhs, data, data) is not None  # the direct path is taken
    np.testing.assert_array_equal(build_response(lhs, data), _by_formulaic(monkeypatch, lhs, data))


@pytest.mark.parametrize(
    "lhs",
    ["cbind(k, round(n) - k)", "cbind(f32, 1 - f32)", "cbind(flag, 1 - flag)", "cbind(k, n - k, k)", "cbind(k, n * 2)"],
)
def test_other_cbinds_take_formulaics_evaluation(data: pd.DataFrame, lhs: str) -> None:
    assert response_module._column_cbind(lhs, data, data) is None


def test_cbpp_response_and_fit_are_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    cbpp = mm.datasets.load("cbpp")
    lhs = "cbind(incidence, size - incidence)"
    np.testing.assert_array_equal(build_response(lhs, cbpp), _by_formulaic(monkeypatch, lhs, cbpp))


def test_a_missing_column_still_names_it(data: pd.DataFrame) -> None:
    with pytest.raises(mm.MixedModelsError, match="nn"):
        build_response("cbind(k, nn - k)", data)
