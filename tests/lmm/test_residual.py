"""Residual structures, nlme's way (issue #19): var_ident() and cor_ar1() against nlme::lme.

References: tests/reference/nlme_residual.json (make_nlme_residual.R, nlme 3.1-162): Orthodont
with varIdent by Sex, sleepstudy / Ovary / BodyWeight with corAR1 within subject, REML and ML,
each with the model without the structure and nlme's LRT between them.  Tolerances are the
issue's: log-likelihood no worse than nlme's by 1e-6 relative, fixed effects within 1 % of their
SE, SDs, sigma, phi and the SD ratios within 1 %.  nlme's ML standard errors use
sigma^2 n / (n - p) where lme4 (and we) use the ML sigma^2, so ML SEs are compared after that
factor; REML SEs directly.
"""

from __future__ import annotations

import importlib.util
import os
import warnings

import numpy as np
import pytest

import mixedmodels as mm
from conftest import fitted_issue19, issue19_dataset, reference

pytestmark = pytest.mark.numerics  # .ci/run runs these again under another BLAS kernel

MODELS = {
    "orthodont_varident": ("distance ~ age + Sex + (1 | Subject)", "Orthodont", dict(weights=mm.var_ident("Sex"))),
    "sleepstudy_ar1": (
        "Reaction ~ Days + (1 | Subject)",
        "sleepstudy",
        dict(correlation=mm.cor_ar1("Days", group="Subject")),
    ),
    "ovary_ar1": (
        "follicles ~ np.sin(2 * np.pi * Time) + np.cos(2 * np.pi * Time) + (1 | Mare)",
        "Ovary",
        dict(correlation=mm.cor_ar1("obs", group="Mare")),
    ),
    "bodyweight_ar1": (
        "weight ~ Time * Diet + (Time | Rat)",
        "BodyWeight",
        dict(correlation=mm.cor_ar1("obs", group="Rat")),
    ),
}
CASES = [(name, reml) for name in MODELS for reml in (True, False)]
REL = 0.01


def _ref(name: str, reml: bool, null: bool = False) -> dict:
    return reference("nlme_residual")["cases"][f"{name}{'_null' if null else ''}_{'reml' if reml else 'ml'}"]


def _fit(name: str, reml: bool, null: bool = False):
    formula, data, kwargs = MODELS[name]
    return fitted_issue19("lmer", formula, data, REML=reml, **({} if null else kwargs))


@pytest.mark.parametrize("name,reml", CASES)
def test_loglik_no_worse_than_nlme(name, reml):
    ref, fit = _ref(name, reml), _fit(name, reml)
    assert fit.loglik >= ref["logLik"] - 1e-6 * abs(ref["logLik"])
    assert fit.npar == ref["df"]
    assert fit.aic == pytest.approx(ref["AIC"], rel=1e-6)


@pytest.mark.parametrize("name,reml", CASES)
def test_fixed_effects_and_standard_errors(name, reml):
    ref, fit = _ref(name, reml), _fit(name, reml)
    se = np.array(ref["se"])
    assert list(fit.fixef_names)[:1] == ref["fixef_names"][:1]
    assert np.all(np.abs(fit.beta - np.array(ref["fixef"])) <= REL * se)
    n, p = fit.nobs, len(fit.beta)
    nlme_scale = 1.0 if reml else np.sqrt(n / (n - p))
    np.testing.assert_allclose(fit.se.to_numpy() * nlme_scale, se, rtol=REL)


@pytest.mark.parametrize("name,reml", CASES)
def test_variance_components_phi_and_ratios(name, reml):
    ref, fit = _ref(name, reml), _fit(name, reml)
    assert fit.sigma == pytest.approx(ref["sigma"], rel=REL)
    for group, random in ref["random"].items():
        cov = fit.covariances[group]
        np.testing.assert_allclose(
            np.sqrt(np.diag(cov)),
            random["stddev"] if isinstance(random["stddev"], list) else [random["stddev"]],
            rtol=REL,
        )
    if ref["phi"] is not None:
        assert fit.phi == pytest.approx(ref["phi"], rel=REL)
        assert fit.residual_params["phi"] == fit.phi
    else:
        assert fit.phi is None
    if ref["var_ratios"] is not None:
        ratios = fit.var_ratios
        assert list(ratios.index) == ref["var_ratios"]["levels"]
        np.testing.assert_allclose(ratios.to_numpy(), ref["var_ratios"]["ratio"], rtol=REL)
        np.testing.assert_allclose(fit.sigma_by_level.to_numpy(), ref["sigma_by_level"]["sigma"], rtol=REL)


@pytest.mark.parametrize("name,reml", CASES)
def test_fitted_and_residuals(name, reml):
    """Fitted values (level 1), response, pearson (over sigma delta_s) and normalized residuals (nlme's)."""
    ref, fit = _ref(name, reml), _fit(name, reml)
    k = len(ref["fitted_head"])
    scale = np.abs(np.array(ref["resid_head"])).max()
    np.testing.assert_allclose(fit.fitted.to_numpy()[:k], ref["fitted_head"], rtol=0, atol=REL * scale)
    np.testing.assert_allclose(fit.residuals().to_numpy()[:k], ref["resid_head"], rtol=0, atol=REL * scale)
    pearson = np.array(ref["resid_pearson_head"])
    np.testing.assert_allclose(
        fit.residuals("pearson", scaled=True).to_numpy()[:k], pearson, atol=REL * np.abs(pearson).max()
    )
    normalized = np.array(ref["resid_normalized_head"])
    np.testing.assert_allclose(
        fit.residuals("normalized", scaled=True).to_numpy()[:k], normalized, atol=REL * np.abs(normalized).max()
    )


@pytest.mark.parametrize("name,reml", CASES)
def test_anova_with_and_without_the_structure(name, reml):
    """nlme's LRT: REML fits with equal fixed effects compared on REML, ML fits on ML (BIC aside:
    nlme's REML BIC uses log(n - p), lme4's log(n))."""
    table = reference("nlme_residual")["anova"][f"{name}_{'reml' if reml else 'ml'}"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no refit message: nlme's comparison
        out = mm.anova(without=_fit(name, reml, null=True), with_structure=_fit(name, reml))
    np.testing.assert_array_equal(out["npar"].to_numpy(), table["df"])
    assert ("compared on their REML likelihoods" in repr(out)) == reml
    np.testing.assert_allclose(out["logLik"].to_numpy(), table["logLik"], rtol=1e-6)
    assert out["Chisq"].iloc[1] == pytest.approx(table["L.Ratio"][1], rel=1e-4)
    assert out["Pr(>Chisq)"].iloc[1] == pytest.approx(table["p-value"][1], rel=1e-3)


def test_null_models_are_lme4s():
    """Without a structure the same models are lme4's (nlme's REML likelihood is lme4's)."""
    for name in MODELS:
        for reml in (True, False):
            ref = _ref(name, reml, null=True)
            assert _fit(name, reml, null=True).loglik == pytest.approx(ref["logLik"], abs=1e-5)


def test_reml_comparison_with_different_fixed_effects_warns_as_nlme():
    data = issue19_dataset("Orthodont")
    small = mm.lmer("distance ~ age + (1 | Subject)", data, weights=mm.var_ident("Sex"))
    big = _fit("orthodont_varident", True)
    with pytest.warns(mm.MixedModelsWarning, match="REML comparisons are not meaningful"):
        mm.anova(small, big, refit=False)
    with pytest.warns(mm.MixedModelsWarning, match="refitting model"):
        refitted = mm.anova(small, big)
    assert refitted["logLik"].iloc[1] == pytest.approx(_ref("orthodont_varident", False)["logLik"], abs=1e-6)


def test_summary_reports_the_structure():
    text = str(_fit("orthodont_varident", True).summary())
    assert "different standard deviations per level of Sex (varIdent)" in text
    assert "  Male Female\n 1.0000 0.4541" in text
    assert "Phi: 0.6531" in str(_fit("sleepstudy_ar1", True).summary())


def test_simulated_residuals_have_the_ar1_correlation():
    fit = _fit("sleepstudy_ar1", True)
    sims = fit.simulate(nsim=4000, seed=3, use_re=True).to_numpy() - fit.fitted.to_numpy()[:, None]
    days = issue19_dataset("sleepstudy")["Days"].to_numpy()
    lag1 = [np.corrcoef(sims[(days == d)].ravel(), sims[(days == d + 1)].ravel())[0, 1] for d in range(9)]
    # 18 x 4000 pairs per lag: Monte Carlo SD of a correlation ~ 0.005
    assert np.mean(lag1) == pytest.approx(fit.phi, abs=0.02)
    assert np.std(sims) == pytest.approx(fit.sigma, rel=0.02)


def test_bootstrap_and_ranova_keep_the_structure():
    fit = _fit("sleepstudy_ar1", True)
    boot = mm.bootstrap(fit, lambda f: np.array([f.phi]), nsim=3, seed=1, progress=False)
    assert np.all(np.isfinite(boot.replicates)) and boot.replicates.shape == (3, 1)
    with pytest.raises(mm.ModelSpecError, match="residual structure"):
        mm.ranova(fit)


def _check_blocks_against_dense(fit, weights):
    """The model's blocks equal [Z X y]' W^1/2 C^-1 W^1/2 [Z X y] formed from the dense AR(1) correlation C."""
    inputs = fit.model.inputs
    days = issue19_dataset("sleepstudy")["Days"].to_numpy()
    subject = inputs.terms[0].refs
    corr = np.where(np.equal.outer(subject, subject), fit.phi ** np.abs(np.subtract.outer(days, days)), 0.0)
    m = np.column_stack(
        [inputs.terms[0].z[:, [0]] * (subject[:, None] == np.arange(18)), inputs.fixed.matrix, inputs.y]
    )
    m = m * np.sqrt(weights)[:, None]
    direct = m.T @ np.linalg.solve(corr, m)
    cp, scale = fit.model.crossprods, fit.model.layouts[0].scales[0]
    np.testing.assert_allclose(cp.a11[:, 0, 0] * scale**2, np.diag(direct)[:18], rtol=1e-10)
    np.testing.assert_allclose(cp.a22, direct[18:, 18:], rtol=1e-10)
    np.testing.assert_allclose(
        np.asarray(cp.a21) * scale, direct[18:, :18], rtol=1e-10, atol=1e-9 * np.abs(direct).max()
    )


def test_stored_blocks_are_the_weighted_cross_products():
    """The combined pieces are the cross-products under R^-1 (also with prior weights, which scale
    the rows first), and no stored piece has a dimension of length n: an evaluation adds up
    blocks and never touches n-sized arrays."""
    fit = _fit("sleepstudy_ar1", True)
    _check_blocks_against_dense(fit, np.ones(fit.nobs))
    blocks = fit.model.residual.blocks
    m, q = fit.model.crossprods.a22.shape[0], fit.model.layouts[0].size
    assert blocks.packed.shape == (blocks.npieces, q + m * q + m * m)  # no dimension of length n
    assert fit.model.rebuild().objective(fit.theta) == pytest.approx(fit.objective, rel=1e-10)
    w = 1.0 + (issue19_dataset("sleepstudy")["Days"].to_numpy() % 3)
    weighted = mm.lmer(
        "Reaction ~ Days + (1 | Subject)",
        issue19_dataset("sleepstudy"),
        weights=w,
        correlation=mm.cor_ar1("Days", group="Subject"),
    )
    _check_blocks_against_dense(weighted, w)
    assert weighted.optinfo.converged and 0 < weighted.phi < 1


# --- bad input ----------------------------------------------------------------------------------


def _sleep(**changes):
    data = issue19_dataset("sleepstudy").copy()
    for column, values in changes.items():
        data[column] = values
    return data


@pytest.mark.parametrize(
    "data,correlation,message",
    [
        (
            lambda: _sleep(
                Days=np.where(issue19_dataset("sleepstudy")["Days"] == 9, 10.0, issue19_dataset("sleepstudy")["Days"])
            ),
            mm.cor_ar1("Days", group="Subject"),
            r"group '308' has a gap or unequal spacing \(times 0, 1, 2, 3, 4, 5, 6, 7",
        ),
        (
            lambda: _sleep(Days=issue19_dataset("sleepstudy")["Days"] * 0.5),
            mm.cor_ar1("Days", group="Subject"),
            r"group '308' has a gap or unequal spacing",
        ),
        (
            lambda: _sleep(Days=np.minimum(issue19_dataset("sleepstudy")["Days"], 8)),
            mm.cor_ar1("Days", group="Subject"),
            r"group '308' repeats a time",
        ),
        (
            lambda: _sleep(g=np.arange(180).astype(str)),
            mm.cor_ar1("Days", group="g"),
            r"cor_ar1\(group='g'\): group '0' has one time point \(and 179 more groups\)",
        ),
        (
            lambda: _sleep(pair=(issue19_dataset("sleepstudy").index // 20).astype(str)),
            mm.cor_ar1(None, group="pair"),
            r"group '0' spans several levels of 'Subject' in the random-effects term \(1 \| Subject\)",
        ),
    ],
)
def test_bad_correlation_groups_are_named(data, correlation, message):
    with pytest.raises(mm.ModelSpecError, match=message):
        mm.lmer("Reaction ~ Days + (1 | Subject)", data(), correlation=correlation)


def test_one_lone_group_and_infinite_times_are_named():
    """One group with a single row is named alone (no "and n more"); an infinite time is a DataError."""
    data = _sleep(g=np.where(np.arange(180) == 0, "lone", issue19_dataset("sleepstudy")["Subject"].astype(str)))
    with pytest.raises(mm.ModelSpecError, match=r"group 'lone' has one time point; an AR\(1\) correlation needs"):
        mm.lmer("Reaction ~ Days + (1 | Subject)", data, correlation=mm.cor_ar1("Days", group="g"))
    days = issue19_dataset("sleepstudy")["Days"].to_numpy(dtype=float)
    with pytest.raises(mm.DataError, match=r"the time column 't' has infinite values"):
        mm.lmer(
            "Reaction ~ Days + (1 | Subject)",
            _sleep(t=np.where(np.arange(180) == 5, np.inf, days)),
            correlation=mm.cor_ar1("t", group="Subject"),
        )


def test_ar1_alone_pieces_are_all_rows_inner_rows_and_consecutive_pairs():
    """AR(1) without strata stores M'M (all rows, as the dense [Z X y] itself: the same bits as its rows'
    copy), the inner rows (neither a group's first nor its last time) and every consecutive pair; rows
    shuffled so that the model's order is not the time order."""
    from mixedmodels.linalg import weighted_blocks

    data = issue19_dataset("sleepstudy").sample(frac=1.0, random_state=3)
    model = mm.LinearMixedModel.from_formula(
        "Reaction ~ Days + (1 | Subject)", data, correlation=mm.cor_ar1("Days", group="Subject")
    )
    everything, inner, pairs = model.residual.structure.pieces
    days, subject = data["Days"].to_numpy(), data["Subject"].astype(str).to_numpy()
    assert (everything.kind, inner.kind, pairs.kind) == ("all", "interior", "pair")
    np.testing.assert_array_equal(everything.rows, np.arange(180))
    np.testing.assert_array_equal(inner.rows, np.flatnonzero((days > 0) & (days < 9)))
    assert np.all(subject[pairs.rows] == subject[pairs.partner]) and np.all(days[pairs.partner] == days[pairs.rows] + 1)
    assert pairs.rows.size == 180 - 18
    m = np.random.default_rng(0).normal(size=(180, 7))
    copied = m[np.arange(180)]
    assert np.array_equal(weighted_blocks._dense_gram(m, everything), copied.T @ copied)


def test_var_ident_with_one_level_and_bad_arguments():
    data = _sleep(one=["a"] * 180)
    with pytest.raises(mm.ModelSpecError, match=r"var_ident\('one'\) needs at least two levels"):
        mm.lmer("Reaction ~ Days + (1 | Subject)", data, weights=mm.var_ident("one"))
    with pytest.raises(mm.ModelSpecError, match="cor_ar1\\(\\) needs group="):
        mm.cor_ar1("Days", group=None)
    with pytest.raises(mm.DataError, match="'nope'"):
        mm.lmer("Reaction ~ Days + (1 | Subject)", data, weights=mm.var_ident("nope"))
    with pytest.raises(mm.ModelSpecError, match="correlation= takes mm.cor_ar1"):
        mm.lmer("Reaction ~ Days + (1 | Subject)", data, correlation="AR1")


def test_kenward_roger_and_satterthwaite_refuse_residual_structures():
    fit = _fit("orthodont_varident", True)
    for ddf in ("kenward-roger", "satterthwaite"):
        with pytest.raises(mm.MixedModelsError, match="residual structure"):
            fit.coef_table(ddf=ddf)


def test_both_structures_together_give_the_gaussian_likelihood():
    """var_ident and cor_ar1 together (R = D C D, lag pairs across strata): the ML log-likelihood at
    the estimates equals the multivariate normal density of y formed densely, and the fit is at
    least as good as either structure alone (nested models)."""
    from scipy import stats

    data = issue19_dataset("sleepstudy")
    both = mm.lmer(
        "Reaction ~ Days + (1 | Subject)",
        data,
        REML=False,
        weights=mm.var_ident("Phase3"),
        correlation=mm.cor_ar1("Days", group="Subject"),
    )
    inputs = both.model.inputs
    subject = inputs.terms[0].refs
    days = data["Days"].to_numpy()
    delta = both.var_ratios.to_numpy()[both.model.residual.structure.strata]
    corr = np.where(np.equal.outer(subject, subject), both.phi ** np.abs(np.subtract.outer(days, days)), 0.0)
    z = (subject[:, None] == np.arange(18)).astype(float)
    cov = both.sigma**2 * (np.outer(delta, delta) * corr) + both.covariances["Subject"][0, 0] * z @ z.T
    dense = stats.multivariate_normal(inputs.fixed.matrix @ both.beta, cov).logpdf(inputs.y)
    assert both.loglik == pytest.approx(dense, abs=1e-6)
    assert both.npar == 2 + 1 + 1 + 2 + 1  # fixed effects, theta, sigma, two SD ratios, phi
    assert both.loglik >= _fit("sleepstudy_ar1", False).loglik - 1e-6


def test_influence_and_prediction_intervals_refuse_residual_structures():
    """Leverages, deletion refits and a new row's residual SD assume independent residuals with
    prior weights: refused clearly rather than computed wrongly."""
    fit = _fit("orthodont_varident", True)
    for call in (fit.hatvalues, fit.cooks_distance, fit.rstudent, lambda: fit.influence(group="Subject")):
        with pytest.raises(mm.MixedModelsError, match="residual structure"):
            call()
    with pytest.raises(mm.ModelSpecError, match="prediction intervals are not available"):
        fit.predict(issue19_dataset("Orthodont").head(), interval="prediction")
    confidence = fit.predict(issue19_dataset("Orthodont").head(), interval="confidence")
    assert np.all(confidence["lower"] < confidence["fit"])


GRADIENT_MODELS = {
    **MODELS,
    "sleepstudy_both_cs": (
        "Reaction ~ Days + cs(0 + Phase3 | Subject)",
        "sleepstudy",
        dict(weights=mm.var_ident("Phase3"), correlation=mm.cor_ar1("Days", group="Subject")),
    ),
}


def _central_differences(function, y: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """Fourth-order central differences of ``function`` at ``y``, one row per coordinate."""
    return np.array(
        [
            (8 * (function(y + e) - function(y - e)) - (function(y + 2 * e) - function(y - 2 * e))) / 12 / h
            for e in np.eye(y.size) * h
        ]
    )


def _model(name: str, reml: bool, models: dict | None = None):
    formula, data, kwargs = (GRADIENT_MODELS if models is None else models)[name]
    return mm.LinearMixedModel.from_formula(formula, issue19_dataset(data), REML=reml, **kwargs)


def _points(model) -> list[np.ndarray]:
    """Two points (scaled theta, then the residual parameters) inside the bounds where the derivatives are checked."""
    lower, upper = model.theta_lower, model.theta_upper
    theta = np.where(np.isfinite(upper), 0.3, np.where(lower == 0, 0.8, 0.1))
    scaled = model.crossprods.to_scaled_theta(theta)
    rhos = (0.2 + 0.1 * np.arange(model.residual.nparams), -0.4 * np.ones(model.residual.nparams))
    return [np.concatenate([scaled, rho]) for rho in rhos]


@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
@pytest.mark.parametrize("name", sorted(GRADIENT_MODELS))
def test_dense_residual_gradient_equals_finite_differences(name, reml):
    """The gradient over (scaled theta, log delta, atanh phi) against fourth-order central differences
    (step 1e-4: truncation ~1e-16 f^(5), rounding ~1e-13 |f| / 1e-4; bound as in
    tests/linalg/test_gradient.py), at two points; the dense objective equals the blocked one."""
    from mixedmodels.lmm.residual import DenseResidualObjective, _blocked_objective

    model = _model(name, reml)
    dense = DenseResidualObjective.build(model)
    assert dense is not None
    for y in _points(model):
        expected = _central_differences(dense.value, y)
        value = dense.value(y)
        assert value == pytest.approx(_blocked_objective(model)(y), rel=1e-12)
        tolerance = 2e-8 * (abs(value) + 1) + 1e-6 * np.abs(expected)
        np.testing.assert_array_less(np.abs(dense.gradient(y) - expected), tolerance)


HESSIAN_MODELS = {
    **MODELS,
    "sleepstudy_both_slopes": (
        "Reaction ~ Days + (Days | Subject)",
        "sleepstudy",
        dict(weights=mm.var_ident("Phase3"), correlation=mm.cor_ar1("Days", group="Subject")),
    ),
}


@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
@pytest.mark.parametrize("name", sorted(HESSIAN_MODELS))
def test_dense_residual_hessian_equals_differences_of_the_gradient(name, reml):
    """The exact Hessian over (scaled theta, log delta, atanh phi) against fourth-order central
    differences of the analytic gradient (itself checked above; step 1e-4: truncation ~1e-16 g^(5),
    rounding ~1e-12 |f| / 1e-4), at two points; its gradient is the gradient's.  Three SD ratios and
    phi together (sleepstudy_both_slopes) exercise every second derivative of the coefficients."""
    from mixedmodels.lmm.residual import DenseResidualObjective

    model = _model(name, reml, HESSIAN_MODELS)
    dense = DenseResidualObjective.build(model)
    assert dense is not None and dense.has_hessian
    for y in _points(model):
        expected = _central_differences(dense.gradient, y)
        value = dense.value(y)
        gradient, hessian = dense.derivatives(y)
        np.testing.assert_allclose(gradient, dense.gradient(y), rtol=1e-10, atol=1e-9 * (abs(value) + 1))
        np.testing.assert_allclose(hessian, hessian.T, rtol=0, atol=1e-10 * np.abs(hessian).max())
        tolerance = 1e-7 * (abs(value) + 1) + 1e-6 * np.abs(expected)
        np.testing.assert_array_less(np.abs(hessian - expected), tolerance)


@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
@pytest.mark.parametrize("name", sorted(HESSIAN_MODELS))
def test_compiled_derivatives_equal_numpys(name, reml, monkeypatch):
    """The derivatives' kernels (linalg/_residual_kernels.py: their Python bodies, and compiled where
    numba is installed) give the numpy path's gradient, Hessian and ``M`` over (scaled theta, the
    directions ``dA / d rho``), to rounding (1e-11 of the largest entry: the same products summed in
    another order)."""
    from mixedmodels.linalg import _residual_kernels as kernels
    from mixedmodels.lmm import residual
    from scipy.linalg import lapack

    model = _model(name, reml, HESSIAN_MODELS)
    dense = residual.DenseResidualObjective.build(model)
    y = _points(model)[0]
    dense.value(y)
    system, factor, rho = dense.system, dense._last[1], dense._last[2]
    directions = np.ascontiguousarray(dense.structure.coefficient_jacobian(rho).T @ dense.pieces)
    monkeypatch.setattr(residual, "compiled_piece_derivatives", lambda: None)
    expected = residual._piece_derivatives(system, factor, reml, model.n_likelihood, directions, dense.pieces)
    size = dense.size
    stacked = directions.reshape(-1, size, size)
    inverse = lapack.dtrtri(factor.lower, lower=1)[0]
    nlead, dof = (size - 1, model.n_likelihood - system.nfixef) if reml else (system.nre, model.n_likelihood)
    pairs = kernels.position_pairs(dense.pieces.reshape(-1, size, size), system.rows)
    positions = (system.rows, system.cols, system.index, pairs)
    args = (inverse, factor.a, factor.lam, stacked, positions, (system.ntheta, system.nre, nlead), float(dof))
    found = [kernels.piece_derivatives(*args)]
    if _numba_used():
        compiled = kernels.compiled_piece_derivatives()
        assert compiled is not None
        found.append(kernels.piece_derivatives(*args, compiled))
    for result in found:
        for got, want in zip(result, expected):
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-11 * np.abs(want).max())


def _numba_used() -> bool:
    return importlib.util.find_spec("numba") is not None and os.environ.get("MIXEDMODELS_NO_NUMBA", "") in ("", "0")


@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
@pytest.mark.parametrize("name", sorted(HESSIAN_MODELS))
def test_compiled_objective_and_derivatives_equal_numpys(name, reml):
    """The compiled Newton loop's objective and derivatives (linalg/_residual_kernels.py: residual_value,
    residual_derivatives; their Python bodies, and compiled where numba is installed) are the numpy path's
    (DenseResidualObjective.value and derivatives) at two points, to rounding: the value to 1e-12
    relative, the gradient and Hessian to 1e-9 of their largest entry (a Cholesky and a triangular
    inverse in loops against LAPACK's, whose rounding the derivatives' differences of large terms carry)."""
    from mixedmodels.linalg import _residual_kernels as kernels
    from mixedmodels.lmm.residual import DenseResidualObjective

    model = _model(name, reml, HESSIAN_MODELS)
    dense = DenseResidualObjective.build(model)
    arguments = dense.kernel_arguments()
    bodies = [(kernels.residual_value, kernels.residual_derivatives)]
    if _numba_used():
        assert kernels.compiled_residual_newton() is not None
        from mixedmodels.linalg.jit import jit

        bodies.append((jit(kernels.residual_value), jit(kernels.residual_derivatives)))
    points = _points(model)
    batch = DenseResidualObjective.build(model).values(points)  # the start's candidates in one call
    np.testing.assert_allclose(batch, [dense.value(y) for y in points], rtol=1e-12)
    for y in points:
        value = dense.value(y)
        gradient, hessian = dense.derivatives(y)
        for value_of, derivatives_of in bodies:
            found, a, lam, lower, _, info = value_of(*arguments, y)
            assert info == 0 and found == pytest.approx(value, rel=1e-12)
            got_gradient, got_hessian, info = derivatives_of(a, lam, lower, arguments[0], *arguments[1:], y)
            assert info == 0
            np.testing.assert_allclose(got_gradient, gradient, rtol=0, atol=1e-9 * np.abs(gradient).max())
            np.testing.assert_allclose(got_hessian, hessian, rtol=0, atol=1e-9 * np.abs(hessian).max())


@pytest.mark.parametrize("name,reml", CASES)
def test_compiled_newton_loop_equals_pythons(name, reml):
    """The compiled Newton loop (DenseResidualObjective.newton_loop) takes the Python loop's steps from the
    same start: the same evaluation and derivative counts and code, the optimum to 1e-9 in -2 log L and
    1e-5 in the coordinates (Newton's last step is ~1e-7; the two paths' rounding differs by ~1e-15)."""
    from mixedmodels.lmm import residual
    from mixedmodels.optim import OptimizerSettings, minimize_newton

    if not _numba_used():
        pytest.skip("numba is not installed: no compiled loop")
    formula, data, kwargs = MODELS[name]
    model = mm.LinearMixedModel.from_formula(formula, issue19_dataset(data), REML=reml, **kwargs)
    dense = residual.DenseResidualObjective.build(model)
    _, x0, _ = residual._starting_point(model, dense.value, dense)
    settings = OptimizerSettings()
    python = minimize_newton(dense.value, dense.derivatives, x0, settings)
    loop = dense.newton_loop()
    assert loop is not None
    compiled = minimize_newton(dense.value, dense.derivatives, x0, settings, loop=loop)
    assert (compiled.feval, compiled.return_code) == (python.feval, python.return_code)
    assert compiled.fmin == pytest.approx(python.fmin, abs=1e-9)
    np.testing.assert_allclose(compiled.final, python.final, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name,reml", CASES)
def test_newton_reaches_bobyqas_optimum_or_better(name, reml):
    """Residual structures on dense systems with unstructured terms are fitted by Newton's method
    with the exact Hessian; BOBYQA's optimum is not better by more than the optimizers' tolerance
    (ftol_abs 1e-6), and the estimates agree (to the precision the optimizers stop at)."""
    fit = _fit(name, reml)
    assert fit.optinfo.optimizer.startswith("Newton") and fit.optinfo.converged
    formula, data, kwargs = MODELS[name]
    model = mm.LinearMixedModel.from_formula(formula, issue19_dataset(data), REML=reml, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bobyqa = model.fit(settings=mm.OptimizerSettings(optimizer="bobyqa"))
    assert bobyqa.optinfo.optimizer == "NLopt LN_BOBYQA"
    assert -2 * fit.loglik <= -2 * bobyqa.loglik + 1e-6
    np.testing.assert_allclose(fit.model.residual.params, bobyqa.model.residual.params, rtol=2e-3)
    np.testing.assert_allclose(fit.theta, bobyqa.theta, rtol=2e-3, atol=1e-3)


def test_optimizer_choice_for_residual_structures():
    """Newton (the default with unstructured terms) and BFGS reach the same optimum; Newton is refused
    where a structured term has no second derivatives, and BFGS is that model's default."""
    formula, data, kwargs = MODELS["sleepstudy_ar1"]
    model = mm.LinearMixedModel.from_formula(formula, issue19_dataset(data), **kwargs)
    newton = model.fit(settings=mm.OptimizerSettings(optimizer="newton"))
    bfgs = model.fit(settings=mm.OptimizerSettings(optimizer="bfgs"))
    assert newton.optinfo.optimizer.startswith("Newton") and bfgs.optinfo.optimizer.startswith("BFGS")
    assert -2 * newton.loglik <= -2 * bfgs.loglik + 1e-6
    structured = _model("sleepstudy_both_cs", True)
    with pytest.raises(mm.ModelSpecError, match="exact Hessian"):
        structured.fit(settings=mm.OptimizerSettings(optimizer="newton"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert structured.fit().optinfo.optimizer.startswith("BFGS")


def test_dense_objective_is_infinite_where_phi_rounds_to_one():
    """atanh phi = 25 rounds to phi = 1 (tanh(25) == 1.0 in floating point), where R is singular: the
    objective is +inf there (BFGS's line search backs off) rather than a division by zero."""
    from mixedmodels.lmm.residual import DenseResidualObjective

    model = _model("sleepstudy_ar1", True)
    dense = DenseResidualObjective.build(model)
    y = np.concatenate([model.crossprods.to_scaled_theta(model.theta_start), [25.0]])
    assert dense.value(y) == np.inf
    assert np.isnan(dense.gradient(y)).all()
    assert np.isfinite(dense.value(np.concatenate([y[:-1], [3.0]])))


@pytest.mark.parametrize("name", ["orthodont_varident", "sleepstudy_both_slopes"])
def test_stratum_least_squares_equal_lstsq(name):
    """The SD ratios' moment start: each stratum's residual sum of squares and rank by elimination
    (linalg/_residual_kernels.least_squares_rss: its Python body, and compiled where numba is installed)
    equal np.linalg.lstsq's (the rank exactly, the sum of squares to 1e-9 relative: lstsq's SVD rounds to
    ~1e-12 of y'y here)."""
    from mixedmodels.linalg import _residual_kernels as kernels
    from mixedmodels.lmm import residual

    model = _model(name, True, HESSIAN_MODELS)
    dense = residual.DenseResidualObjective.build(model)
    bodies = [kernels.least_squares_rss]
    if _numba_used():
        bodies.append(kernels.compiled_least_squares_rss())
    for piece, flat in zip(dense.structure.pieces, dense.pieces):
        if piece.kind != "all":
            continue
        a = flat.reshape(dense.size, dense.size)
        coef, _, rank, _ = np.linalg.lstsq(a[:-1, :-1], a[:-1, -1], rcond=None)
        for body in bodies:
            rss, found = body(a, residual._COLLINEAR)
            assert found == rank
            assert rss == pytest.approx(a[-1, -1] - coef @ a[:-1, -1], rel=1e-9)
