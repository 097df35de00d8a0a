"""The worked examples in docs/examples run in fast mode and still make their point.

Each script's ``main(fast=True)`` runs here; the assertions are the claims the example
makes in its docstring (with fixed seeds, so each is deterministic), and where lme4
has the answer, lme4's numbers (tolerances as in tests/lmm/test_model.py).
"""

from __future__ import annotations

import runpy
import sys
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest

from conftest import reference

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"


def example(name: str) -> dict:
    return runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name=f"example_{name}")


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.py")), ids=lambda p: p.stem)
def test_every_example_is_a_script_with_a_fast_mode(path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [str(path), "--help"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(path), run_name="__main__")
    assert exit_info.value.code == 0
    assert "--fast" in capsys.readouterr().out


def test_pooling_three_ways():
    pytest.importorskip("mixedmodels.pooling")
    errors = example("pooling_three_ways")["main"](fast=True)
    alike, different, outlier = errors["alike"], errors["different"], errors["one outlier"]
    assert alike["complete"] < alike["no"] and alike["partial"] < alike["no"]  # alike: pool everything
    assert different["partial"] < different["complete"]                        # different: don't
    assert outlier["partial"] < min(outlier["complete"], outlier["no"])        # partial pooling adapts


def test_sleepstudy_incomplete(tmp_path, capsys):
    pytest.importorskip("mixedmodels.pooling")
    out = tmp_path if find_spec("matplotlib") else None
    result = example("sleepstudy_incomplete")["main"](fast=True, out=out)
    no, partial = result["no"], result["partial"]
    np.testing.assert_allclose(no.loc["308"], [244.19, 21.76], atol=0.005)  # lme4's documentation
    assert np.isnan(no.loc["373", "Days"]) and np.isfinite(partial.loc["373"]).all()
    fraction = result["shrinkage"].query("term == 'Days'").set_index("group")["fraction"]
    assert fraction["374"] > 0.9 and fraction["374"] > fraction.drop(["373", "374"]).max()
    if out is not None:
        assert (tmp_path / "sleepstudy_incomplete_shrinkage.png").exists()
    assert "373" in capsys.readouterr().out


def test_simpsons_paradox():
    slopes = example("simpsons_paradox")["main"](fast=True)
    assert slopes["ols"] > 2.0                     # the between-group trend, ignoring groups
    assert abs(slopes["lmer"] - (-1.0)) < 0.15    # the within-group slope, once groups are modelled
    assert abs(slopes["within"] - (-1.0)) < 0.15 and abs(slopes["between"] - 3.0) < 0.5


def test_crossed_participants_items():
    result = example("crossed_participants_items")["main"](fast=True)
    crossed, no_items, truth = result["crossed"], result["no_items"], result["truth"]
    z = (crossed.fixef - truth.fixef) / crossed.se
    assert np.all(np.abs(z) < 4)
    assert crossed.se["category"] > 2 * no_items.se["category"]  # ignoring items understates the SE
    assert crossed.ngroups == {"participant": 30, "item": 20}


def test_binomial_glmm():
    pytest.importorskip("mixedmodels.glmm")
    result = example("binomial_glmm")["main"](fast=True)
    ref = reference("shared/cbpp_binomial")
    fit = result["cbpp"]
    np.testing.assert_allclose(fit.fixef.to_numpy(), ref["fixef"], atol=0.01 * min(ref["se"]))
    np.testing.assert_allclose(result["odds_ratios"]["odds ratio"], np.exp(fit.fixef))
    accuracy = result["accuracy"]
    assert abs(accuracy.fixef["condition"] - 0.8) < 3.5 * accuracy.se["condition"]


def test_lrt_random_slope():
    result = example("lrt_random_slope")["main"](fast=True)
    ref = reference("shared/sleepstudy_slope_reml")["anova_vs_intercept"]
    np.testing.assert_allclose(result["ml"]["statistic"], ref["Chisq"], rtol=1e-5)
    np.testing.assert_allclose(result["ml"]["p"], ref["p"], rtol=1e-3)
    assert result["ml"]["p_mixture"] < result["ml"]["p"]
    np.testing.assert_allclose(result["anova"]["Chisq"].iloc[1], result["ml"]["statistic"], rtol=1e-6)
    np.testing.assert_allclose(result["ranova"]["LRT"].iloc[1], result["reml"]["statistic"], rtol=1e-6)


def test_type_one_error():
    result = example("type_one_error")["main"](fast=True)
    between = result["between"].table
    assert between.loc["OLS", "ci_low"] > 0.05 and between.loc["OLS", "rate"] > between.loc["lmer", "rate"]
    within = result["within"].table
    assert within.loc["random intercept", "rate"] > within.loc["random slope", "rate"]


def test_teaching_designs():
    tables = example("teaching_designs")["main"](fast=True)
    assert len(tables) == 6
    for name, table in tables.items():
        fixed = table[table.index.str.startswith("fixed")]
        if name != "one outlier":  # the outlier pulls the mean by design
            assert np.all(np.abs(fixed["estimate"] - fixed["truth"]) < 4 * fixed["se"]), name
        resid = table.loc["SD residual"]
        assert abs(resid["estimate"] / resid["truth"] - 1) < 0.15, name  # 3 SEs of an SD from 200 rows
