"""The public API as a user's type checker sees it (checked by mypy in .ci/lint, run by
tests/test_public_api.py so that it stays true).

Each line uses a public name the way the documentation does and states the type the user
gets. mypy reports a line whose name is missing, whose call does not match the signature, or
whose result is not what the annotation says; errors inside the package are not reported here
(``follow_imports = "silent"``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

import mixedmodels as mm


def fit_and_read() -> mm.LmerResults:
    sleep: pd.DataFrame = mm.datasets.load("sleepstudy")
    names: list[str] = mm.datasets.list()
    assert "sleepstudy" in names
    m: mm.LmerResults = mm.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    ml: mm.LmerResults = mm.lmer(
        "Reaction ~ Days + (Days | Subject)", sleep, REML=False, settings=mm.OptimizerSettings()
    )
    fixef: pd.Series = m.fixef
    se: pd.Series = m.se
    vcov: pd.DataFrame = m.vcov
    sigma: float = m.sigma
    theta: np.ndarray = m.theta
    varcorr: pd.DataFrame = m.varcorr
    ranef: dict[str, pd.DataFrame] = m.ranef(condvar=True)
    coef: dict[str, pd.DataFrame] = m.coef()
    fitted: pd.Series = m.fitted
    residuals: pd.Series = m.residuals(type="pearson")
    criteria: list[float] = [m.loglik, m.aic, m.bic, m.deviance, ml.objective]
    counts: list[int] = [m.nobs, m.npar, m.df_resid, *m.ngroups.values()]
    singular: bool = m.is_singular
    table: pd.DataFrame = m.coef_table(ddf="satterthwaite")
    ftests: pd.DataFrame = m.anova()
    intervals: pd.DataFrame = m.confint(method="wald")
    predicted: pd.Series | pd.DataFrame = m.predict(sleep.head(3), re_form="~0")
    simulated: pd.DataFrame = m.simulate(nsim=2, seed=1)
    same_subjects: pd.DataFrame = m.simulate(nsim=2, seed=1, re_form=None)
    print(m.summary(ddf="kenward-roger"))
    del fixef, se, vcov, sigma, theta, varcorr, ranef, coef, fitted, residuals, criteria, counts, singular
    del table, ftests, intervals, predicted, simulated, same_subjects
    return m


def the_pipeline() -> None:
    sleep = mm.datasets.load("sleepstudy")
    model: mm.LinearMixedModel = mm.LinearMixedModel.from_formula("Reaction ~ Days + (Days | Subject)", sleep)
    value: float = model.objective(model.theta_start)
    result: mm.LmerResults = model.fit()
    again: mm.LmerResults = model.results_at(result.theta)
    del value, again


def generalized() -> None:
    cbpp = mm.datasets.load("cbpp")
    g: mm.GlmerResults = mm.glmer(
        "cbind(incidence, size - incidence) ~ period + (1 | herd)",
        cbpp,
        family=mm.families.Binomial(link="logit"),
        nAGQ=1,
    )
    g_model = mm.GeneralizedLinearMixedModel.from_formula(
        "cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family="binomial"
    )
    family: mm.families.Family = g.family
    print(g.summary(), g_model.fit().deviance, family)
    complete = mm.glm("cbind(incidence, size - incidence) ~ period", cbpp, family="binomial")
    print(mm.anova(complete, g))


def structured_models() -> None:
    sleep = mm.datasets.load("sleepstudy")
    sleep["DayPair"] = pd.Categorical(sleep["Days"] // 2, ordered=True)
    a: mm.LmerResults = mm.lmer("Reaction ~ Days + ar1(0 + DayPair | Subject)", sleep)
    r: mm.LmerResults = mm.lmer(
        "Reaction ~ Days + (1 | Subject)", sleep, correlation=mm.cor_ar1("Days", group="Subject")
    )
    h: mm.LmerResults = mm.lmer(
        "distance ~ age + Sex + (1 | Subject)", mm.datasets.load("Orthodont"), weights=mm.var_ident("Sex")
    )
    phi: float | None = r.phi
    ratios: pd.Series | None = h.var_ratios
    nb: mm.GlmerResults = mm.glmer_nb("TICKS ~ YEAR + cHEIGHT + (1 | BROOD)", mm.datasets.load("grouseticks"))
    known: mm.GlmerResults = mm.glmer(
        "TICKS ~ YEAR + cHEIGHT + (1 | BROOD)",
        mm.datasets.load("grouseticks"),
        family=mm.families.NegativeBinomial(theta=2.0),
    )
    print(a.summary(), phi, ratios, nb.family, known.npar)


def inference(m: mm.LmerResults) -> None:
    sleep = mm.datasets.load("sleepstudy")
    m0: mm.LmerResults = mm.lmer("Reaction ~ Days + (1 | Subject)", sleep)
    lrt: pd.DataFrame = mm.anova(m0, m)
    random_terms: pd.DataFrame = mm.ranova(m)
    statistic: Callable[[mm.LmerResults], pd.Series] = lambda fit: fit.fixef  # noqa: E731
    boot = mm.bootstrap(m, statistic, nsim=3, seed=1, progress=False)
    days = sleep.assign(DayF=sleep["Days"].astype("category"))
    means = mm.emmeans(mm.lmer("Reaction ~ DayF + (1 | Subject)", days), "DayF")
    pairs: pd.DataFrame = mm.contrast(means, "pairwise")
    pooled = mm.lm("Reaction ~ Days", sleep)
    print(lrt, random_terms, boot, means, pairs, mm.anova(pooled, m))


def pooling_and_pictures(m: mm.LmerResults) -> None:
    cmp = mm.compare_pooling("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
    long_table: pd.DataFrame = cmp.table
    shrinkage: pd.DataFrame = cmp.shrinkage
    figures = [cmp.plot(), cmp.plot_shrinkage(), mm.plots.caterpillar(m), mm.plots.diagnostics(m)]
    del long_table, shrinkage, figures


def r_habits() -> None:
    old: dict[str, object] = mm.options(contrasts=("contr.sum", "contr.poly"))
    mm.options(**old)
    with mm.option_context(contrasts=("sum", "poly")) as now:
        fit = mm.lm("Reaction ~ Days", mm.datasets.load("sleepstudy"))
    coding: tuple[str, str] = mm.get_option("contrasts")
    print(now, fit, coding)


def classroom_pictures(m: mm.LmerResults) -> None:
    sleep = mm.datasets.load("sleepstudy")
    panels = mm.plots.by_group(sleep, "Days", "Reaction", "Subject", smooth="lowess", fit=m)
    xs, smooth = mm.plots.lowess(sleep["Days"], sleep["Reaction"], f=2 / 3, iter=3)
    glmm = mm.compare_pooling(
        "cbind(incidence, size - incidence) ~ period + (1 | herd)", mm.datasets.load("cbpp"), family="binomial"
    )
    separated: pd.DataFrame = glmm.separation
    print(panels, xs.shape, smooth.shape, separated)


def planning() -> None:
    data: pd.DataFrame = mm.simulate_design(
        n_groups=10, n_obs=4, between={"condition": ["A", "B"]}, group_sd=1.0, sigma=1.0, seed=1
    )
    design = dict(n_groups=10, n_obs=4, between={"condition": ["A", "B"]}, group_sd=1.0, sigma=1.0)
    result = mm.power(
        design, {"lmer": "y ~ condition + (1 | participant)"}, test="conditionB", nsim=2, seed=1, progress=False
    )
    print(data.shape, result)


def explorer() -> None:
    demo: dict[str, object] = mm.explore.shrinkage_demo(mm.explore.ExploreParams(sigma_u=0.2))
    del demo


def errors() -> None:
    problems: tuple[type[Exception], ...] = (mm.MixedModelsError, mm.FormulaError, mm.DataError, mm.ModelSpecError)
    warnings: tuple[type[Warning], ...] = (
        mm.MixedModelsWarning,
        mm.SingularFitWarning,
        mm.ConvergenceWarning,
        mm.RankDeficiencyWarning,
        mm.ScaleWarning,
    )
    version: str = mm.__version__
    del problems, warnings, version


def bayesian() -> None:  # typed, not run by the tests (sampling takes a while)
    sleep = mm.datasets.load("sleepstudy")
    b = mm.bayes.lmer(
        "Reaction ~ Days + (Days | Subject)",
        sleep,
        draws=200,
        chains=2,
        seed=1,
        priors={"fixef": mm.priors.Normal(0, 1000), "sd": mm.priors.HalfCauchy(0, 100)},
    )
    print(b.summary())
    complete = mm.bayes.lm(
        "Reaction ~ Days",
        sleep,
        draws=200,
        chains=2,
        seed=1,
        priors={"fixef": mm.priors.Normal(0, 1000), "sigma": mm.priors.HalfCauchy(0, 100)},
    )
    taught = mm.bayes.lmer(
        "Reaction ~ Days + (1 | Subject)", sleep, priors={"sd": mm.priors.Fixed(1000)}, parametrization="auto"
    )
    print(complete.hdi(), taught.coef())


def main() -> None:
    m = fit_and_read()
    the_pipeline()
    generalized()
    structured_models()
    inference(m)
    pooling_and_pictures(m)
    r_habits()
    classroom_pictures(m)
    planning()
    explorer()
    errors()
