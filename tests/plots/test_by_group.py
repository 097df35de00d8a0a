"""mm.plots.by_group and R's lowess (issue 21 item 5): the lecture's xyplot(Reaction ~ Days | Subject).

References: tests/reference/classroom.json ``lowess`` (R 4.2's ``lowess()`` on six data sets: a
sleepstudy subject, ties and outliers with the robustness iterations, f = 0.3 without them, the
``delta`` interpolation on 200 points, two points, unsorted input).  The algorithm is
deterministic arithmetic on the same numbers, so the smoothed values agree to 1e-10 relative
(seen: 4e-13 at most).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from conftest import as_list, dataset, reference
from mixedmodels.plots import lowess

pytestmark = pytest.mark.numerics

LOWESS = reference("classroom")["lowess"]


@pytest.mark.parametrize("case", sorted(LOWESS))
def test_lowess_is_r_lowess(case):
    ref = LOWESS[case]
    x, fitted = lowess(as_list(ref["x"]), as_list(ref["y"]), f=ref["f"], iter=ref["iter"], delta=ref["delta"])
    np.testing.assert_array_equal(x, as_list(ref["fit_x"]))
    np.testing.assert_allclose(fitted, as_list(ref["fit_y"]), rtol=1e-10, atol=1e-10)


def test_lowess_defaults_and_errors():
    ref = LOWESS["sleepstudy_308"]
    _, default = lowess(as_list(ref["x"]), as_list(ref["y"]))  # f = 2/3, iter = 3, delta = 1 % of the range
    np.testing.assert_allclose(default, as_list(ref["fit_y"]), rtol=1e-10)
    assert lowess([1.0], [2.0])[1].tolist() == [2.0]
    with pytest.raises(mm.DataError, match="finite"):
        lowess([1.0, np.nan], [1.0, 2.0])
    with pytest.raises(mm.DataError, match="as many"):
        lowess([1.0, 2.0], [1.0])


@pytest.fixture(scope="module")
def plt():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _lines(ax, gid):
    return [line for line in ax.get_lines() if line.get_gid() == gid]


def test_panels_with_lowess_and_the_fits_conditional_lines(plt, sleep_fit):
    sleep = dataset("sleepstudy")
    fig = mm.plots.by_group(sleep, "Days", "Reaction", "Subject", fit=sleep_fit)
    axes = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in axes] == [f"Subject {s}" for s in sleep["Subject"].cat.categories]
    first = axes[0]
    rows = sleep[sleep["Subject"] == "308"]
    np.testing.assert_array_equal(first.collections[0].get_offsets()[:, 1], rows["Reaction"].to_numpy())
    (smooth,) = _lines(first, "smooth")
    np.testing.assert_allclose(smooth.get_ydata(), as_list(LOWESS["sleepstudy_308"]["fit_y"]), rtol=1e-10)
    (line,) = _lines(first, "fit")
    coef = sleep_fit.coef()["Subject"].loc["308"]
    np.testing.assert_allclose(line.get_ydata(), coef["(Intercept)"] + coef["Days"] * line.get_xdata(), rtol=1e-10)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["observed", "lowess (f = 0.667)", "model: fixed + group's random effects"]
    plt.close(fig)


def test_least_squares_lines_and_chosen_groups(plt):
    sleep = dataset("sleepstudy")
    fig = mm.plots.by_group(sleep, "Days", "Reaction", "Subject", smooth="lm", groups=["308", "335"])
    axes = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in axes] == ["Subject 308", "Subject 335"]
    (line,) = _lines(axes[0], "smooth")
    np.testing.assert_allclose(line.get_ydata(), 244.1927 + 21.764702 * line.get_xdata(), atol=5e-4)  # lmList's
    plt.close(fig)
    none = mm.plots.by_group(sleep, "Days", "Reaction", "Subject", smooth=None, groups="308")
    assert not _lines(none.axes[0], "smooth")
    plt.close(none)


def test_a_glmm_fit_draws_on_the_response_scale(plt):
    rng = np.random.default_rng(5)
    groups = np.repeat(np.arange(4), 15)
    x = np.tile(np.linspace(0, 1, 15), 4)
    data = pd.DataFrame({"y": rng.binomial(1, 0.3 + 0.4 * x), "x": x, "g": groups.astype(str)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mm.glmer("y ~ x + (1 | g)", data, family="binomial")
    fig = mm.plots.by_group(data, "x", "y", "g", smooth="lm", fit=fit)
    for ax in (a for a in fig.axes if a.get_title()):
        (line,) = _lines(ax, "fit")
        assert np.all((line.get_ydata() > 0) & (line.get_ydata() < 1))
    plt.close(fig)


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"x": "Hours"}, mm.DataError, "Hours"),
        ({"group": "Days", "y": "Subject"}, mm.DataError, "numeric"),
        ({"smooth": "loess"}, mm.MixedModelsError, "lowess"),
        ({"groups": ["999"]}, mm.MixedModelsError, "999"),
        ({"span": 0}, mm.MixedModelsError, "span"),
    ],
)
def test_errors_name_the_problem(plt, kwargs, error, words):
    args = {"x": "Days", "y": "Reaction", "group": "Subject", **kwargs}
    with pytest.raises(error, match=words):
        mm.plots.by_group(dataset("sleepstudy"), args.pop("x"), args.pop("y"), args.pop("group"), **args)
