"""Pooling for GLMMs (issue 21 item 7): complete / no / partial pooling of glmer fits on the link scale.

References: tests/reference/classroom.json ``glmm_pooling`` (make_classroom.R, R 4.2 / lme4 1.1-31):
complete pooling ``glm`` of the fixed part, the shared no-pooling ``glm(y ~ 0 + g + x)``, per-level
glms (``lmList``), and glmer's ``coef()``.  Tolerances: a glm converged by IRLS to R's deviance
criterion agrees with R's to ~1e-12 (same iterations from the same start), tested at 1e-8 relative;
glmer's conditional modes at 1 % of the largest one's magnitude (lme4's default glmer stops early,
tests/glmm/test_glmm.py).  Where R's glm "converges" to a separated, diverging coefficient (|b| > 10
with an SE above 50 |b|: R stops at |b| 14-26 with SEs of 1e3-1e5) ours is -inf or +inf with the same sign.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from conftest import as_list, dataset, reference
from mixedmodels.pooling.generalized import GlmFit, SeparationWarning

pytestmark = pytest.mark.numerics

REF = reference("classroom")["glmm_pooling"]
CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


def _quiet(fun, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fun(*args, **kwargs)


@pytest.fixture(scope="module")
def cbpp_fit():
    return _quiet(mm.glmer, CBPP, dataset("cbpp"))


@pytest.fixture(scope="module")
def grouse_cmp():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cmp = mm.compare_pooling("TICKS ~ YEAR + (1 | LOCATION)", dataset("grouseticks"), family="poisson")
    return cmp, [w for w in caught if issubclass(w.category, SeparationWarning)]


def _assert_glm(fit, ref, finite_only: bool = False):
    coef, se = fit.coef.reindex(as_list(ref["names"])).to_numpy(), fit.se.reindex(as_list(ref["names"])).to_numpy()
    r_coef, r_se = np.asarray(as_list(ref["coef"]), float), np.asarray(as_list(ref["se"]), float)
    diverged = (np.abs(r_coef) > 10) & (r_se > 50 * np.abs(r_coef))  # R stops with |b| 14-26, SE 1e3-1e5
    assert np.array_equal(np.isinf(coef), diverged), (coef, r_coef)
    assert np.all(np.sign(coef[diverged]) == np.sign(r_coef[diverged])) and np.isnan(se[diverged]).all()
    # where R stopped short of -inf its separated rows keep weights ~ e^-16 (Poisson) that move the
    # shared coefficients by ~1e-6: ours are the limit, so those fits agree to 1e-5
    rtol = 1e-5 if diverged.any() else 1e-8
    np.testing.assert_allclose(coef[~diverged], r_coef[~diverged], rtol=rtol, atol=1e-10)
    np.testing.assert_allclose(se[~diverged], r_se[~diverged], rtol=rtol)


def test_cbpp_no_longer_fails_and_matches_r(cbpp_fit):
    cmp = mm.compare_pooling(cbpp_fit)
    ref = REF["cbpp"]
    assert cmp.share_fixed and cmp.scale == "logit" and cmp.separation.empty
    assert isinstance(cmp.complete_fit, GlmFit) and isinstance(cmp.no_pooling_fit, GlmFit)
    _assert_glm(cmp.complete_fit, ref["complete"])
    _assert_glm(cmp.no_pooling_fit, ref["shared"])
    partial = cmp.estimates("partial")
    for level, values in zip(ref["partial"]["levels"], ref["partial"]["values"]):
        np.testing.assert_allclose(partial.loc[level].to_numpy(), values, atol=0.01)
    table = cmp.table
    assert list(table.columns) == ["group", "n", "approach", "term", "estimate", "se"]
    assert len(table) == 15 * (4 + 4 + 4)
    # on the link scale the herd intercepts shrink toward the population intercept
    shrink = cmp.shrinkage
    assert "shrinkage_factor" not in shrink.columns  # no closed form for a GLMM
    assert (np.sign(shrink["population"] - shrink["no_pooling"]) == np.sign(shrink["shift"])).mean() > 0.9


def test_separate_binomial_fits_report_separation_as_infinite(cbpp_fit):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cmp = mm.compare_pooling(cbpp_fit, share_fixed=False)
    messages = [str(w.message) for w in caught if issubclass(w.category, SeparationWarning)]
    assert len(messages) == 1 and "'herd'" in messages[0] and "-inf/+inf" in messages[0]
    for r in REF["cbpp"]["separate_period"]:
        fit = cmp.no_pooling_fit[r["level"]]
        if "error" in r:  # herd 8 was seen in one period only: R's glm stops, ours leaves the periods NA
            assert np.isfinite(fit.coef["(Intercept)"]) and fit.coef.drop("(Intercept)").isna().all()
            continue
        _assert_glm(fit, r)
    sep = cmp.separation
    assert list(sep.columns) == ["group", "term", "n", "mean_response", "estimate", "reason"]
    assert set(sep.query("group == '11'")["term"]) == {"(Intercept)", "period2", "period3", "period4"}
    assert (sep["reason"].str.contains("diverges")).all()


def test_separate_intercepts_are_the_logits_of_the_proportions():
    """y ~ 1 + (1 | herd): each herd's own glm is the logit of its total incidence / size (R's lmList)."""
    cmp = _quiet(
        mm.compare_pooling, "cbind(incidence, size - incidence) ~ 1 + (1 | herd)", dataset("cbpp"), family="binomial"
    )
    assert not cmp.share_fixed
    for r in REF["cbpp"]["separate"]:
        _assert_glm(cmp.no_pooling_fit[r["level"]], r)


def test_poisson_levels_without_any_count_are_minus_infinity(grouse_cmp):
    cmp, caught = grouse_cmp
    ref = REF["grouseticks"]
    totals = dict(zip(ref["totals"]["location"], ref["totals"]["ticks"]))
    zero = sorted(k for k, v in totals.items() if v == 0)
    assert len(caught) == 1 and all(repr(z) in str(caught[0].message) for z in zero)
    sep = cmp.separation
    assert sorted(sep["group"]) == zero and (sep["estimate"] == -np.inf).all()
    assert (sep["reason"] == "every response is 0").all()
    _assert_glm(cmp.no_pooling_fit, ref["shared"])  # R: those levels at ~ -20 with SE ~ 1e4
    _assert_glm(cmp.complete_fit, ref["complete"])
    no = cmp.estimates("no")
    assert (no.loc[zero, "(Intercept)"] == -np.inf).all() and no["YEAR96"].nunique() == 1
    partial = cmp.estimates("partial")
    assert np.isfinite(partial.to_numpy()).all()
    for level, values in zip(ref["partial"]["levels"], ref["partial"]["values"]):
        np.testing.assert_allclose(partial.loc[level].to_numpy(), values, atol=0.01 * 4)
    shrink = cmp.shrinkage.set_index("group")
    assert np.isnan(shrink.loc[zero, "fraction"]).all() and np.isinf(shrink.loc[zero, "shift"]).all()


def test_a_whole_level_at_a_bound_is_left_out_of_the_shared_fit():
    """With every response of level 'z' zero, the other estimates are those of the data without it."""
    data = dataset("cbpp").copy()
    data["herd"] = data["herd"].astype(str)
    zero = data[data["herd"] == "1"].assign(herd="z", incidence=0)
    both = pd.concat([data, zero], ignore_index=True)
    with_zero = _quiet(mm.compare_pooling, CBPP, both, family="binomial")
    without = _quiet(mm.compare_pooling, CBPP, data, family="binomial")
    assert with_zero.estimates("no").loc["z", "(Intercept)"] == -np.inf
    np.testing.assert_allclose(
        with_zero.estimates("no").drop("z").to_numpy(), without.estimates("no").to_numpy(), rtol=1e-9
    )


def test_lines_are_on_the_response_scale():
    rng = np.random.default_rng(21)
    groups = np.repeat(np.arange(12), 20)
    x = np.tile(np.linspace(-1, 1, 20), 12)
    eta = -0.3 + 1.2 * x + rng.normal(0, 0.8, 12)[groups]
    data = pd.DataFrame({"y": rng.binomial(1, 1 / (1 + np.exp(-eta))), "x": x, "g": groups.astype(str)})
    cmp = _quiet(mm.compare_pooling, "y ~ x + (x | g)", data, family="binomial")
    lines = cmp.lines(npoints=5)
    assert {"fitted", "link"} <= set(lines.columns)
    finite = lines.dropna()
    assert ((finite["fitted"] >= 0) & (finite["fitted"] <= 1)).all()
    np.testing.assert_allclose(finite["fitted"], 1 / (1 + np.exp(-finite["link"])), rtol=1e-12)
    partial = lines.query("approach == 'partial'").groupby("group")["link"].first()
    coef = cmp.estimates("partial")
    np.testing.assert_allclose(partial.to_numpy(), (coef["(Intercept)"] - coef["x"]).loc[partial.index], rtol=1e-10)


def test_plots_of_a_glmm_comparison(grouse_cmp, cbpp_fit):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cmp, _ = grouse_cmp
    fig = cmp.plot_shrinkage()
    ax = fig.axes[0]
    assert ax.get_ylabel() == "(Intercept) (log scale)"
    separated = [c for c in ax.collections if c.get_gid() == "separated"]
    assert separated and len(separated[0].get_offsets()) == len(cmp.separation)
    assert len([t for t in ax.texts if t.get_gid() == "separated-arrow"]) == len(cmp.separation)
    plt.close(fig)
    strip = _quiet(mm.compare_pooling, cbpp_fit).plot()
    assert strip.axes[0].get_ylabel() == "(Intercept) estimate (logit scale)"
    plt.close(strip)


def test_cli_pooling_family(tmp_path):
    from mixedmodels.cli import main

    path = tmp_path / "cbpp.csv"
    dataset("cbpp").to_csv(path, index=False)
    out = tmp_path / "shrink.png"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        status = main(
            [
                "pooling",
                CBPP,
                "--data",
                str(path),
                "--factor",
                "herd,period",
                "--family",
                "binomial",
                "--shrinkage-plot",
                str(out),
            ]
        )
    assert status == 0 and out.exists()


def test_errors():
    with pytest.raises(mm.MixedModelsError, match="family"):
        mm.compare_pooling(_quiet(mm.glmer, CBPP, dataset("cbpp")), family="binomial")
    with pytest.raises(mm.MixedModelsError, match="bayes"):
        mm.compare_pooling(CBPP, dataset("cbpp"), family="binomial", method="bayes")
