"""mm.plots: what is drawn (panels, lines, arrows, their data, labels), never pixels."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.text import Annotation  # noqa: E402

import mixedmodels as mm  # noqa: E402
from conftest import dataset, fitted_lmer  # noqa: E402
from mixedmodels.errors import MixedModelsError  # noqa: E402

SLOPE = "Reaction ~ Days + (Days | Subject)"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _lines(ax, gid=None):
    return [line for line in ax.get_lines() if gid is None or line.get_gid() == gid]


def _arrows(ax):
    """Shrinkage arrows (group labels may carry leader lines: they are not arrows)."""
    return [
        t for t in ax.texts if isinstance(t, Annotation) and t.arrow_patch is not None and t.get_gid() != "group-label"
    ]


def test_importing_mixedmodels_does_not_import_matplotlib():
    code = (
        "import sys, mixedmodels as mm; mm.plots; mm.compare_pooling; "
        "import mixedmodels.plots.pooling, mixedmodels.plots.ranef, mixedmodels.plots.diagnostics; "
        "assert 'matplotlib' not in sys.modules, 'matplotlib was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------
# pooling lines


def test_pooling_lines_one_panel_per_subject(sleep_cmp):
    fig = sleep_cmp.plot()
    assert len(fig.axes) == 18
    data = dataset("sleepstudy")
    for ax, subject in zip(fig.axes, sleep_cmp.levels):
        assert ax.get_title() == f"Subject {subject}"
        assert [line.get_gid() for line in ax.get_lines()] == ["complete", "no", "partial"]
        for approach in ("complete", "no", "partial"):
            (line,) = _lines(ax, approach)
            coef = sleep_cmp.estimates(approach).loc[subject]
            x = np.asarray(line.get_xdata(), float)
            np.testing.assert_allclose(line.get_ydata(), coef["(Intercept)"] + coef["Days"] * x, rtol=1e-10)
            assert x.min() == 0 and x.max() == 9
        (points,) = [c for c in ax.collections if isinstance(c, PathCollection)]
        rows = data[data["Subject"] == subject]
        np.testing.assert_allclose(points.get_offsets(), rows[["Days", "Reaction"]].to_numpy(float))
    assert [ax.get_xlabel() for ax in fig.axes[-6:]] == ["Days"] * 6
    assert fig.get_supylabel() == "Reaction"
    legend_texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend_texts == ["observed", "complete pooling", "no pooling", "partial pooling"]


def test_pooling_lines_subset_and_layout(sleep_cmp):
    fig = sleep_cmp.plot(groups=["308", "309", "330", "331", "332"], ncols=2)
    assert len(fig.axes) == 5  # the sixth slot of the 3 x 2 grid is removed
    assert fig.axes[-1].get_xlabel() == "Days" and fig.axes[3].get_xlabel() == "Days"
    assert fig.axes[0].get_xlabel() == ""
    with pytest.raises(MixedModelsError, match="'999'"):
        sleep_cmp.plot(groups=["999"])


def test_pooling_lines_singleton_group_has_no_no_pooling_line():
    data = dataset("sleepstudy")
    small = data[~((data["Subject"] == "308") & (data["Days"] != 3))]
    cmp = mm.compare_pooling(SLOPE, small)
    fig = cmp.plot()
    first = fig.axes[0]
    assert [line.get_gid() for line in first.get_lines()] == ["complete", "partial"]
    assert any("not estimable" in t.get_text() for t in first.texts)
    assert len(_lines(fig.axes[1], "no")) == 1


def test_pooling_strip_for_intercept_only_model(dyes_cmp):
    fig = dyes_cmp.plot()
    (ax,) = fig.axes
    for approach in ("no", "partial"):
        (line,) = _lines(ax, approach)
        np.testing.assert_allclose(line.get_ydata(), dyes_cmp.estimates(approach)["(Intercept)"])
    (complete,) = _lines(ax, "complete")
    np.testing.assert_allclose(complete.get_ydata(), dyes_cmp.complete_fit.coef["(Intercept)"])
    assert [t.get_text() for t in ax.get_xticklabels()] == list("ABCDEF")
    assert ax.get_xlabel() == "Batch" and ax.get_ylabel() == "Yield"
    (points,) = ax.collections
    assert len(points.get_offsets()) == 30


# --------------------------------------------------------------------------
# shrinkage


def test_shrinkage_arrows_go_from_no_to_partial_pooling(sleep_cmp):
    fig = sleep_cmp.plot_shrinkage()
    (ax,) = fig.axes
    arrows = _arrows(ax)
    assert len(arrows) == 18
    no, partial = sleep_cmp.estimates("no"), sleep_cmp.estimates("partial")
    np.testing.assert_allclose([a.xyann for a in arrows], no.to_numpy())
    np.testing.assert_allclose([a.xy for a in arrows], partial.to_numpy())
    (population,) = _lines(ax, "population")
    np.testing.assert_allclose([population.get_xdata()[0], population.get_ydata()[0]], sleep_cmp.partial_fit.fixef)
    (complete,) = _lines(ax, "complete")
    np.testing.assert_allclose([complete.get_xdata()[0], complete.get_ydata()[0]], sleep_cmp.complete_fit.coef)
    assert ax.get_xlabel() == "(Intercept)" and ax.get_ylabel() == "Days"
    assert "Shrinkage" in ax.get_title()


def test_shrinkage_contours_are_the_estimated_normal(sleep_cmp):
    fig = sleep_cmp.plot_shrinkage(contours=(0.5, 0.95))
    ax = fig.axes[0]
    contours = _lines(ax, "contour")
    assert len(contours) == 2
    center = sleep_cmp.partial_fit.fixef.to_numpy()
    inv = np.linalg.inv(sleep_cmp.partial_fit.covariances["Subject"])
    for line, p in zip(contours, (0.5, 0.95)):
        d = np.column_stack([line.get_xdata(), line.get_ydata()]) - center
        np.testing.assert_allclose(np.einsum("ij,jk,ik->i", d, inv, d), stats.chi2.ppf(p, 2), rtol=1e-8)


def test_shrinkage_one_dimensional_for_random_intercept(dyes_cmp):
    fig = dyes_cmp.plot_shrinkage()
    ax = fig.axes[0]
    arrows = _arrows(ax)
    assert len(arrows) == 6
    no, partial = dyes_cmp.estimates("no")["(Intercept)"], dyes_cmp.estimates("partial")["(Intercept)"]
    np.testing.assert_allclose([a.xyann for a in arrows], np.column_stack([np.zeros(6), no]))
    np.testing.assert_allclose([a.xy for a in arrows], np.column_stack([np.ones(6), partial]))
    (population,) = _lines(ax, "population")
    np.testing.assert_allclose(population.get_ydata(), dyes_cmp.partial_fit.fixef["(Intercept)"])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["no pooling", "partial pooling"]
    assert ax.get_ylabel() == "(Intercept)"


def test_shrinkage_into_given_axes_and_missing_estimates(sleep_cmp):
    fig, axes = plt.subplots(1, 2)
    assert sleep_cmp.plot_shrinkage(ax=axes[1], terms=["Days"]) is fig
    assert len(_arrows(axes[1])) == 18 and not _arrows(axes[0])
    data = dataset("sleepstudy")
    cmp = mm.compare_pooling(SLOPE, data[~((data["Subject"] == "308") & (data["Days"] != 3))])
    assert len(_arrows(cmp.plot_shrinkage().axes[0])) == 17  # 308 has no slope of its own
    with pytest.raises(MixedModelsError, match="pooled terms"):
        sleep_cmp.plot_shrinkage(terms=["Age"])


# --------------------------------------------------------------------------
# label placement and legends: nothing written over anything else


def _boxes(fig, texts):
    """Display boxes of the texts themselves (an annotation's own extent includes its leader line)."""
    from matplotlib.text import Text

    renderer = fig.canvas.get_renderer()
    return np.array([list(Text.get_window_extent(t, renderer).extents) for t in texts])


def _overlapping_pairs(boxes):
    pairs = []
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            a, b = boxes[i], boxes[j]
            if min(a[2], b[2]) - max(a[0], b[0]) > 0.5 and min(a[3], b[3]) - max(a[1], b[1]) > 0.5:
                pairs.append((i, j))
    return pairs


def _labels(ax):
    return [t for t in ax.texts if t.get_gid() == "group-label"]


def test_spread_1d_is_the_nearest_spacing():
    from mixedmodels.plots._labels import spread_1d

    assert spread_1d([0.0, 10.0, 20.0], gap=5.0).tolist() == [0.0, 10.0, 20.0]  # far enough: unchanged
    np.testing.assert_allclose(spread_1d([3.0, 3.0], gap=2.0), [2.0, 4.0])  # ties part symmetrically
    np.testing.assert_allclose(spread_1d([9.0, 0.0, 1.0], gap=2.0), [9.0, -0.5, 1.5])  # input order kept
    rng = np.random.default_rng(1)
    y = rng.normal(size=40)
    out = spread_1d(y, gap=0.3)
    order = np.argsort(y, kind="stable")
    assert np.all(np.diff(out[order]) >= 0.3 - 1e-12)
    # least squares: no feasible small move lowers the squared displacement (checked on random nudges)
    base = np.sum((out - y) ** 2)
    for _ in range(200):
        moved = out + rng.normal(scale=0.01, size=y.size)
        if np.all(np.diff(moved[order]) >= 0.3):
            assert np.sum((moved - y) ** 2) >= base - 1e-12


def test_shrinkage_1d_labels_do_not_overlap():
    """18 subjects' intercepts crowd the no-pooling column: the labels stack one line apart."""
    cmp = mm.compare_pooling(fitted_lmer("Reaction ~ Days + (1 | Subject)", "sleepstudy"))
    fig = cmp.plot_shrinkage()
    ax = fig.axes[0]
    labels = _labels(ax)
    assert sorted(t.get_text() for t in labels) == sorted(cmp.levels)
    no = cmp.estimates("no")["(Intercept)"]
    for t in labels:
        assert t.xy == pytest.approx((0.0, no[t.get_text()]))
    fig.canvas.draw()
    assert _overlapping_pairs(_boxes(fig, labels)) == []
    assert len(_arrows(ax)) == 18


def test_shrinkage_2d_labels_clear_of_each_other_and_of_markers(sleep_cmp):
    fig = sleep_cmp.plot_shrinkage()
    ax = fig.axes[0]
    fig.canvas.draw()
    labels = _labels(ax)
    assert len(labels) == 18
    boxes = _boxes(fig, labels)
    assert _overlapping_pairs(boxes) == []
    markers = np.vstack(
        [ax.transData.transform(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection)]
    )
    covered = [
        (t.get_text(), m) for t, b in zip(labels, boxes) for m in markers if b[0] < m[0] < b[2] and b[1] < m[1] < b[3]
    ]
    assert covered == []


def test_shrinkage_2d_legend_leaves_the_contours_alone(sleep_cmp):
    fig = sleep_cmp.plot_shrinkage()
    ax = fig.axes[0]
    fig.canvas.draw()
    legend = ax.get_legend().get_window_extent(fig.canvas.get_renderer())
    assert legend.y1 <= ax.get_window_extent().y0  # below the axes
    assert legend.y1 <= ax.xaxis.label.get_window_extent().y0  # and below the axis title
    for line in _lines(ax, "contour"):
        pts = ax.transData.transform(np.column_stack([line.get_xdata(), line.get_ydata()]))
        assert not any(legend.x0 < x < legend.x1 and legend.y0 < y < legend.y1 for x, y in pts)


# --------------------------------------------------------------------------
# random effects


def test_caterpillar_sorted_modes_and_intervals(sleep_fit):
    fig = mm.plots.caterpillar(sleep_fit)
    assert len(fig.axes) == 2
    ranef = sleep_fit.ranef(condvar=True)["Subject"]
    order = np.argsort(ranef["condval"]["(Intercept)"].to_numpy())
    for ax, term in zip(fig.axes, ["(Intercept)", "Days"]):
        assert ax.get_title() == f"Subject: {term}"
        (line,) = _lines(ax, "modes")
        modes = ranef["condval"][term].to_numpy()[order]
        np.testing.assert_allclose(line.get_xdata(), modes)
        np.testing.assert_allclose(line.get_ydata(), np.arange(18))
        (bars,) = ax.collections
        segments = np.array([seg[:, 0] for seg in bars.get_segments()])
        half = stats.norm.ppf(0.975) * ranef["condsd"][term].to_numpy()[order]
        np.testing.assert_allclose(segments, np.column_stack([modes - half, modes + half]), rtol=1e-6)
        assert ax.get_xlabel() == "conditional mode"
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == list(ranef.index[order])
    assert np.all(np.diff(_lines(fig.axes[0], "modes")[0].get_xdata()) >= 0)


def test_caterpillar_one_row_per_factor():
    fit = fitted_lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin")
    fig = mm.plots.caterpillar(fit, level=0.9)
    assert [ax.get_title() for ax in fig.axes] == ["plate: (Intercept)", "sample: (Intercept)"]
    assert len(_lines(fig.axes[0], "modes")[0].get_xdata()) == 24
    assert "90%" in fig.get_suptitle()
    assert len(mm.plots.caterpillar(fit, groups="sample", sort=False).axes) == 1


def test_ranef_scatter(sleep_fit):
    fig = mm.plots.ranef_scatter(sleep_fit)
    ax = fig.axes[0]
    (points,) = [c for c in ax.collections if isinstance(c, PathCollection)]
    np.testing.assert_allclose(points.get_offsets(), sleep_fit.ranef()["Subject"].to_numpy())
    assert ax.get_xlabel().startswith("(Intercept)") and ax.get_ylabel().startswith("Days")
    assert len(_lines(ax, "contour")) == 1
    with pytest.raises(MixedModelsError, match="two random-effect columns"):
        mm.plots.ranef_scatter(fitted_lmer("Yield ~ 1 + (1 | Batch)", "Dyestuff"))


# --------------------------------------------------------------------------
# diagnostics and profiles


def test_diagnostics_panels_and_qq_data(sleep_fit):
    fig = mm.plots.diagnostics(sleep_fit)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [
        "Residuals vs fitted",
        "Normal Q-Q: residuals",
        "Normal Q-Q: Subject (Intercept)",
        "Normal Q-Q: Subject Days",
    ]
    first = fig.axes[0]
    np.testing.assert_allclose(
        first.collections[0].get_offsets(), np.column_stack([sleep_fit.fitted, sleep_fit.residuals()])
    )
    assert first.get_xlabel() == "fitted values"
    (qq,) = _lines(fig.axes[3], "qq-points")
    n = 18
    np.testing.assert_allclose(qq.get_xdata(), stats.norm.ppf((np.arange(1, n + 1) - 0.5) / n))  # R's ppoints
    np.testing.assert_allclose(qq.get_ydata(), np.sort(sleep_fit.ranef()["Subject"]["Days"]))
    assert len(_lines(fig.axes[1], "qq-points")[0].get_xdata()) == 180


def test_diagnostics_of_a_glmm_say_which_scale():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", dataset("cbpp"), family="binomial")
    fig = mm.plots.diagnostics(fit)
    first, qq_resid, qq_herd = fig.axes
    assert first.get_xlabel() == "fitted probability (response scale)"
    np.testing.assert_allclose(first.collections[0].get_offsets()[:, 0], fit.fitted)  # the response scale indeed
    assert first.get_ylabel() == qq_resid.get_ylabel() == "Pearson residuals"
    assert qq_herd.get_ylabel() == "conditional modes (logit scale)"
    np.testing.assert_allclose(_lines(qq_herd, "qq-points")[0].get_ydata(), np.sort(fit.ranef()["herd"]["(Intercept)"]))
    # a linear mixed model's axes keep their plain names
    assert (
        mm.plots.diagnostics(fitted_lmer("Yield ~ 1 + (1 | Batch)", "Dyestuff")).axes[2].get_ylabel()
        == "conditional modes"
    )


def _synthetic_profile():
    """A quadratic log-likelihood: zeta is linear, (value - estimate) / se."""
    rows = []
    for name, est, se in [("sigma", 25.0, 1.5), ("(Intercept)", 250.0, 7.0), ("Days", 10.5, 1.5)]:
        values = est + se * np.linspace(-3, 3, 13)
        rows.append(pd.DataFrame({"parameter": name, "value": values[::-1], "zeta": ((values - est) / se)[::-1]}))
    return pd.concat(rows, ignore_index=True)


def test_profile_zeta_from_expected_frame():
    prof = _synthetic_profile()
    fig = mm.plots.profile_zeta(prof)
    assert [ax.get_title() for ax in fig.axes] == ["sigma", "(Intercept)", "Days"]
    for ax, (name, est) in zip(fig.axes, [("sigma", 25.0), ("(Intercept)", 250.0), ("Days", 10.5)]):
        (line,) = _lines(ax, "zeta")
        rows = prof[prof["parameter"] == name].sort_values("value")
        np.testing.assert_allclose(line.get_xdata(), rows["value"])
        np.testing.assert_allclose(line.get_ydata(), rows["zeta"])
        (mark,) = _lines(ax, "estimate")
        assert mark.get_xdata()[0] == pytest.approx(est)
    assert fig.axes[0].get_ylabel() == "zeta"
    # the reference lines' confidence levels are named on the right of the row
    (right,) = [a for a in fig.axes[2].child_axes if a.get_gid() == "levels"]
    z = stats.norm.ppf(0.5 + np.array([0.5, 0.8, 0.9, 0.95, 0.99]) / 2)
    np.testing.assert_allclose(right.get_yticks(), np.ravel(np.column_stack([-z, z])))
    assert [t.get_text() for t in right.get_yticklabels()] == [
        level for level in ("50%", "80%", "90%", "95%", "99%") for _ in "+-"
    ]
    np.testing.assert_allclose(
        sorted(line.get_ydata()[0] for line in _lines(fig.axes[0], "level")), np.sort(np.r_[-z, z])
    )
    assert not [a for a in fig.axes[0].child_axes if a.get_gid() == "levels"]  # once per row
    absolute = mm.plots.profile_zeta(prof, parameters=["Days"], absolute=True, levels=(0.9, 0.999))
    assert len(absolute.axes) == 1 and np.all(_lines(absolute.axes[0], "zeta")[0].get_ydata() >= 0)
    (right,) = absolute.axes[0].child_axes
    assert [t.get_text() for t in right.get_yticklabels()] == ["90%", "99.9%"]


def test_profile_zeta_accepts_to_frame_and_rejects_bad_input():
    class Profile:
        def to_frame(self):
            return _synthetic_profile()

    assert len(mm.plots.profile_zeta(Profile()).axes) == 3
    with pytest.raises(MixedModelsError, match="zeta"):
        mm.plots.profile_zeta(pd.DataFrame({"parameter": ["a"], "value": [1.0]}))
    with pytest.raises(MixedModelsError, match="'nope'"):
        mm.plots.profile_zeta(_synthetic_profile(), parameters=["nope"])


def test_figure_script_renders(tmp_path, monkeypatch):
    """docs/make_figures.py runs from the bundled data (written to a temporary folder)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "docs" / "make_figures.py"
    spec = importlib.util.spec_from_file_location("make_figures", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "IMAGES", tmp_path)
    monkeypatch.setattr(module, "DPI", 30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module.main(explorer=False)  # the explorer's screenshot is the browser test's business
    written = {p.name for p in tmp_path.iterdir()}
    assert {
        "pooling_sleepstudy.png",
        "shrinkage_sleepstudy.png",
        "shrinkage_sleepstudy_intercept.png",
        "pooling_dyestuff.png",
        "profile_dyestuff.png",
        "diagnostics_cbpp.png",
        "by_group_sleepstudy.png",
        "shrinkage_grouseticks.png",
    } <= written


def test_profile_zeta_of_a_fitted_model():
    """m.profile() (inference/profile.py) gives a ProfileResult whose .table feeds the plot."""
    pytest.importorskip("mixedmodels.inference.profile")
    fit = fitted_lmer("Yield ~ 1 + (1 | Batch)", "Dyestuff")
    prof = fit.profile()
    fig = mm.plots.profile_zeta(prof)
    assert [ax.get_title() for ax in fig.axes] == list(prof.parameters)
    for ax, name in zip(fig.axes, prof.parameters):
        (points,) = _lines(ax, "zeta")
        rows = prof.table[prof.table["parameter"] == name].sort_values("value")
        np.testing.assert_allclose(points.get_ydata(), rows["zeta"])
        (spline,) = _lines(ax, "spline")
        np.testing.assert_allclose(spline.get_ydata(), prof.zeta(name, spline.get_xdata()))
        (mark,) = _lines(ax, "estimate")
        assert mark.get_xdata()[0] == pytest.approx(prof.estimates[name], rel=1e-3, abs=1e-3)


def test_ranef_scatter_labels_clear_of_each_other_and_of_points(sleep_fit):
    fig = mm.plots.ranef_scatter(sleep_fit)
    ax = fig.axes[0]
    fig.canvas.draw()
    labels = _labels(ax)
    assert sorted(t.get_text() for t in labels) == sorted(sleep_fit.ranef()["Subject"].index)
    boxes = _boxes(fig, labels)
    assert _overlapping_pairs(boxes) == []
    points = ax.transData.transform(ax.collections[0].get_offsets())
    assert not any(b[0] < x < b[2] and b[1] < y < b[3] for b in boxes for x, y in points)
