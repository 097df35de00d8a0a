"""lmer on Dask (mixedmodels.dask.lmm): the in-memory answers from partitions, on a LocalCluster and locally.

Every case is fitted on Dask's synchronous scheduler and on a real
``distributed.LocalCluster`` (2 worker processes) -- InstEval (73k rows, 8
partitions) on the cluster only, where its partitions really travel -- and
compared with the in-memory fit of the same rows (which the in-memory tests
hold to lme4; fitted once per session, shared with them where the data are a
bundled data set), with the tolerances of ``conftest_dask`` (issue #17's).
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from conftest import dataset, fitted_lmer
from conftest_dask import SCHEDULERS, assert_same_fit, on, partitioned, relative
from mixedmodels.inference.ftests import f_test

dd = pytest.importorskip("dask.dataframe")


def _sleep() -> pd.DataFrame:
    df = dataset("sleepstudy").copy()
    days = df["Days"].astype(int)
    df["w"] = 1.0 + days % 3
    df["off"] = 0.5 * df["Days"]
    df["z"] = np.sin(df["Days"])
    df["Phase"] = pd.Categorical(np.where(days < 5, "early", "late"))
    df["Half"] = np.where(days % 2 == 0, "even", "odd")  # plain text: levels from the values
    df["Id"] = df["Subject"].cat.codes.astype(np.int64) + 100  # a numeric grouping factor
    df["Stage"] = pd.Categorical(np.minimum(days // 3, 2), ordered=True)  # an ordered factor for ar1()
    return df


def _crossed() -> pd.DataFrame:
    """40 users x 12 items, a correlated random slope per item: structured terms in the rest block (item has fewer levels)."""
    rng = np.random.default_rng(17)
    user, item = np.repeat(np.arange(40), 12), np.tile(np.arange(12), 40)
    x = rng.normal(size=user.size)
    b_item = rng.normal(size=(12, 2)) * [1.0, 0.6]
    b_item[:, 1] += 0.5 * b_item[:, 0]
    y = 1 + 0.5 * x + rng.normal(size=40)[user] + b_item[item, 0] + b_item[item, 1] * x + rng.normal(size=user.size)
    return pd.DataFrame({"y": y, "x": x, "user": pd.Categorical(user), "item": pd.Categorical(item)})


def _sleep_r() -> pd.DataFrame:
    """sleepstudy with a dotted column name and a Categorical with its own level order and an unused level."""
    df = dataset("sleepstudy")[["Reaction", "Days", "Subject"]].copy()
    df["Days.sq"] = df["Days"] ** 2
    stage = np.where(df["Days"] < 3, "a", np.where(df["Days"] < 6, "b", "c"))
    df["Fc"] = pd.Categorical(stage, categories=["c", "a", "b", "unused"])
    return df


# name -> (formula, data, partition sizes or a count, in-memory keywords, Dask keywords,
#          the bundled data set whose session-wide in-memory fit is the same fit, or None)
CASES = {
    # 7 partitions, one empty, each holding only some subjects
    "sleepstudy": ("Reaction ~ Days + (Days | Subject)", _sleep, [30, 25, 0, 35, 30, 30, 30], {}, {}, "sleepstudy"),
    "penicillin": ("diameter ~ 1 + (1 | plate) + (1 | sample)", lambda: dataset("Penicillin"), 3, {}, {}, "Penicillin"),
    "pastes": ("strength ~ 1 + (1 | batch/cask)", lambda: dataset("Pastes"), 4, {}, {}, "Pastes"),
    "insteval": (
        "y ~ service + (1 | s) + (1 | d) + (1 | dept:service)",
        lambda: dataset("InstEval"),
        8,
        {},
        {},
        "InstEval",
    ),
    "weights_offset": (
        "Reaction ~ Days + (Days | Subject)",
        _sleep,
        5,
        {"weights": "w", "offset": "off"},
        {"weights": "w", "offset": "off"},
        None,
    ),
    "scale_poly": ("Reaction ~ scale(Days) + poly(z, 2) + (1 + scale(Days) | Subject)", _sleep, 6, {}, {}, None),
    "categorical": ("Reaction ~ Phase * Half + C(Days // 3) + (1 | Id)", _sleep, 4, {}, {}, None),
    # R's formula language: '.', a dotted name, as.numeric() of a factor (a stateful transform)
    "r_syntax": ("Reaction ~ . - Subject - Fc + as.numeric(Fc) + (1 | Subject)", _sleep_r, 3, {}, {}, None),
    # covariance structures (the big term's, then a rest term's: the column scales as each structure wants them)
    "cs": ("Reaction ~ Days + cs(1 + Days | Subject)", _sleep, [30, 25, 0, 35, 30, 30, 30], {}, {}, None),
    "diag": ("Reaction ~ Days + diag(1 + Days | Subject)", _sleep, 4, {}, {}, None),
    "ar1": ("Reaction ~ Days + ar1(0 + Stage | Subject)", _sleep, 5, {}, {}, None),  # one common column scale
    "cs_factor": ("Reaction ~ Days + cs(0 + Stage | Subject)", _sleep, 3, {}, {}, None),
    "diag_rest": ("y ~ x + (1 | user) + diag(1 + x | item)", _crossed, 4, {}, {}, None),
    "cs_rest_weights": (
        "y ~ x + (1 | user) + cs(1 + x | item)",
        lambda: _crossed().assign(w=lambda d: 1.0 + d.index % 3),
        3,
        {"weights": "w"},
        {"weights": "w"},
        None,
    ),
}
ONLY_ON = {
    "insteval": "cluster",
    "r_syntax": "sync",
    "diag": "sync",
    "ar1": "sync",
    "cs_factor": "sync",
    "diag_rest": "sync",
    "cs_rest_weights": "sync",
}  # the rest on both schedulers
RUNS = [
    (name, scheduler) for name in sorted(CASES) for scheduler in SCHEDULERS if ONLY_ON.get(name, scheduler) == scheduler
]


def _memory_kwargs(df: pd.DataFrame, kwargs: dict) -> dict:
    return {k: df[v].to_numpy() for k, v in kwargs.items()}


def _dask_frame(name: str):
    _, data, sizes, _, _, _ = CASES[name]
    df = data()
    return partitioned(df, sizes) if isinstance(sizes, list) else dd.from_pandas(df, npartitions=sizes)


@lru_cache(maxsize=None)
def memory_fit(name: str):
    formula, data, _, memory_kwargs, _, bundled = CASES[name]
    if bundled is not None:
        return fitted_lmer(formula, bundled)
    df = data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.lmer(formula, df, **_memory_kwargs(df, memory_kwargs))


_FITS: dict = {}


@pytest.fixture(scope="session")
def dask_fit(request):
    """The Dask fit of a case on a scheduler, made once per session."""

    def fit(name: str, scheduler: str):
        key = (name, scheduler)
        if key not in _FITS:
            client = request.getfixturevalue("dask_client") if scheduler == "cluster" else None
            formula, _, _, _, dask_kwargs, _ = CASES[name]
            with on(scheduler, client), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _FITS[key] = mm.lmer(formula, _dask_frame(name), **dask_kwargs)
        return _FITS[key]

    return fit


@pytest.mark.parametrize("name, scheduler", RUNS)
def test_dask_fit_equals_memory_fit(name, scheduler, dask_fit):
    fit = dask_fit(name, scheduler)
    assert isinstance(fit, mm.LmerResults) and type(fit).__name__ == "DaskLmerResults"
    assert_same_fit(fit, memory_fit(name))


@pytest.mark.parametrize("name", ["cs", "diag", "ar1", "cs_factor", "diag_rest", "cs_rest_weights"])
def test_structured_terms_keep_their_structure_on_dask(name, dask_fit):
    """Each term's structure reaches the blocks: theta's names and bounds and the column scales are the in-memory ones."""
    fit, memory = dask_fit(name, "sync"), memory_fit(name)
    assert fit.model.theta_names == memory.model.theta_names
    np.testing.assert_array_equal(fit.model.theta_upper, memory.model.theta_upper)
    assert any(lay.structure.name != "us" for lay in fit.model.layouts)
    for ours, theirs in zip(fit.model.layouts, memory.model.layouts):
        assert ours.structure == theirs.structure
        np.testing.assert_allclose(ours.scales, theirs.scales, rtol=1e-12)  # sums of squares in another order
    assert [t.structure for t in fit.model.inputs.terms] == [t.structure for t in memory.model.inputs.terms]


@pytest.mark.parametrize("name", ["cs", "ar1", "diag_rest"])
def test_satterthwaite_with_structured_terms(name, dask_fit):
    """The derivatives go through each structure's lambda (one more pass for the residuals, as without structures)."""
    fit, memory = dask_fit(name, "sync"), memory_fit(name)
    with on("sync"):
        ours = fit.coef_table(ddf="satterthwaite")["df"]
    assert relative(ours, memory.coef_table(ddf="satterthwaite")["df"]) <= 1e-5


def test_r_syntax_reads_as_in_memory(dask_fit):
    fit = dask_fit("r_syntax", "sync")
    assert list(fit.fixef.index) == ["(Intercept)", "Days", "Days.sq", "as.numeric(Fc)"]


def test_partitions_with_missing_levels_and_an_empty_one_give_lme4s_levels(dask_fit):
    fit = dask_fit("sleepstudy", "sync")
    assert fit.ranef()["Subject"].index.tolist() == memory_fit("sleepstudy").ranef()["Subject"].index.tolist()
    assert _dask_frame("sleepstudy").npartitions == 7


def test_one_or_two_passes_build_the_model(dask_fit):
    """Known categories and plain numeric columns: pass 1 folded into pass 2 (.fused); C() needs pass 1 first."""
    assert dask_fit("penicillin", "sync").data_passes == 1
    assert "pass 1" not in dask_fit("penicillin", "sync").model.seconds
    assert dask_fit("categorical", "sync").data_passes == 2


def test_summary_is_the_in_memory_summary(dask_fit):
    """Small data: even the residual quantiles are exact, so the whole text is lme4's layout with our numbers."""
    fit, memory = dask_fit("sleepstudy", "sync"), memory_fit("sleepstudy")
    with on("sync"):
        assert str(fit.summary()) == str(memory.summary())
        assert str(fit.summary(ddf="satterthwaite")) == str(memory.summary(ddf="satterthwaite"))


def test_summary_of_many_rows_says_its_residual_quantiles_are_approximate(dask_fit, dask_client):
    """InstEval's 73k rows overflow the sketch: the quartiles are within the sketch's rank error (0.05 %) of the exact ones."""
    fit, memory = dask_fit("insteval", "cluster"), memory_fit("insteval")
    with on("cluster", dask_client):
        quantiles, approximate = fit.summary().residual_quantiles()
        text = str(fit.summary())
    assert approximate and "Scaled residuals (approximate quantiles):" in text
    exact = np.sort(memory.residuals("pearson", scaled=True).to_numpy())
    assert quantiles[0] == pytest.approx(exact[0], rel=1e-6) and quantiles[-1] == pytest.approx(exact[-1], rel=1e-6)
    ranks = np.searchsorted(exact, quantiles[1:-1]) / exact.size
    assert np.all(np.abs(ranks - [0.25, 0.5, 0.75]) <= 1e-3)  # rank error 5e-4, and ties in the exact residuals


def test_satterthwaite_df_and_f_tests(dask_fit):
    """Satterthwaite's derivatives come from the blocks and one pass for the residuals: the in-memory df."""
    fit, memory = dask_fit("categorical", "sync"), memory_fit("categorical")
    with on("sync"):
        ours, theirs = fit.coef_table(ddf="satterthwaite"), memory.coef_table(ddf="satterthwaite")
        assert relative(ours["df"], theirs["df"]) <= 1e-5
        assert relative(ours["Pr(>|t|)"], theirs["Pr(>|t|)"]) <= 1e-4
        names = list(memory.fixef.index)
        L = np.eye(len(names))[[j for j, n in enumerate(names) if n.startswith("C(")]]  # the C(Days // 3) effects
        f_ours, f_theirs = f_test(fit, L), f_test(memory, L)
        assert relative(f_ours[["F value", "DenDF"]], f_theirs[["F value", "DenDF"]]) <= 1e-5
    assert fit.model.data_passes == 3


@pytest.mark.parametrize("name, scheduler", [("categorical", "sync"), ("scale_poly", "cluster")])
def test_f_tests_per_term_are_the_in_memory_ones(name, scheduler, dask_fit, request):
    """lmerTest's anova: type III's hypotheses from one pass (R of [X_trt, X, 1, X_rd]), type I's from pass 2's X'X.

    Tolerances: the F statistics and sums of squares follow beta and vcov
    (1e-5, conftest_dask), the df and p-values Satterthwaite's df (as in
    coef_table: 1e-5 and 1e-4); the hypotheses themselves are rounded to 7
    digits (lmerTest's zapsmall) on both paths.
    """
    fit, memory = dask_fit(name, scheduler), memory_fit(name)
    client = request.getfixturevalue("dask_client") if scheduler == "cluster" else None
    for kind in (3, 1):
        passes = fit.model.data_passes
        with on(scheduler, client), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours = fit.anova(type=kind)
            theirs = memory.anova(type=kind)
        assert fit.model.data_passes - passes == (1 if kind == 3 else 0) + (passes < 3)  # + Satterthwaite's once
        assert list(ours.index) == list(theirs.index) and ours.attrs["heading"] == theirs.attrs["heading"]
        assert ours["NumDF"].tolist() == theirs["NumDF"].tolist()
        for column, rel in [("Sum Sq", 1e-5), ("Mean Sq", 1e-5), ("F value", 1e-5), ("DenDF", 1e-5), ("Pr(>F)", 1e-4)]:
            assert relative(ours[column], theirs[column]) <= rel, column


def test_type_iii_with_a_missing_cell_warns_and_tests_as_in_memory():
    """An empty Phase x Half cell: X is rank deficient (one more pass for lme4's rule), X_rd has an all-zero column."""
    df = _sleep()
    df = df[~((df["Phase"] == "late") & (df["Half"] == "odd"))].reset_index(drop=True)
    formula = "Reaction ~ Phase * Half + (1 | Subject)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.RankDeficiencyWarning)
        memory = mm.lmer(formula, df)
        with on("sync"):
            fit = mm.lmer(formula, dd.from_pandas(df, npartitions=3))
    tables = []
    for model in (memory, fit):
        with on("sync"), pytest.warns(UserWarning, match=r"Missing cells for: Phaselate:Halfodd\."):
            tables.append(model.anova())
    ours, theirs = tables[1], tables[0]
    assert list(ours.index) == list(theirs.index) == ["Phase", "Half"]  # the aliased interaction has no row
    assert relative(ours["F value"], theirs["F value"]) <= 1e-5


def test_satterthwaite_on_the_cluster(dask_fit, dask_client):
    fit, memory = dask_fit("weights_offset", "cluster"), memory_fit("weights_offset")
    with on("cluster", dask_client):
        assert relative(fit.coef_table(ddf="satterthwaite")["df"], memory.coef_table(ddf="satterthwaite")["df"]) <= 1e-5


def test_anova_between_dask_fits(dask_fit):
    """Likelihood-ratio tests refit by ML from the same blocks (no pass) and check the responses by their sums."""
    small, big = dask_fit("pastes", "sync"), None
    formula = "strength ~ 1 + (1 | batch)"
    with on("sync"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        big = small
        small = mm.lmer(formula, dd.from_pandas(dataset("Pastes"), npartitions=3))
        ours = mm.anova(small, big)
        theirs = mm.anova(mm.lmer(formula, dataset("Pastes")), memory_fit("pastes"))
    assert relative(ours["logLik"], theirs["logLik"]) <= 1e-10
    assert abs(ours["Pr(>Chisq)"].iloc[1] / theirs["Pr(>Chisq)"].iloc[1] - 1) <= 1e-5


def test_anova_between_dask_fits_with_other_fixed_effects_refits_ml_without_a_pass(dask_fit):
    """REML fits with different fixed effects: the ML refit works on the same blocks (no pass); refit=False warns as nlme."""
    big, memory_big = dask_fit("sleepstudy", "sync"), memory_fit("sleepstudy")
    formula = "Reaction ~ 1 + (Days | Subject)"
    with on("sync"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        small = mm.lmer(formula, _dask_frame("sleepstudy"))
        memory_small = mm.lmer(formula, _sleep())
    passes = (small.model.data_passes, big.model.data_passes)
    with on("sync"), pytest.warns(mm.MixedModelsWarning, match="refitting model"):
        ours = mm.anova(small, big)
    with pytest.warns(mm.MixedModelsWarning, match="refitting model"):
        theirs = mm.anova(memory_small, memory_big)
    assert (small.model.data_passes, big.model.data_passes) == passes
    assert relative(ours["logLik"], theirs["logLik"]) <= 1e-10
    assert relative(ours["Pr(>Chisq)"].iloc[1:], theirs["Pr(>Chisq)"].iloc[1:]) <= 1e-5
    with on("sync"), pytest.warns(mm.MixedModelsWarning, match="REML comparisons are not meaningful"):
        unrefitted = mm.anova(small, big, refit=False)
    assert relative(unrefitted["logLik"], [small.loglik, big.loglik]) <= 1e-12


def test_anova_refuses_fits_of_different_responses(dask_fit):
    with on("sync"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        other = mm.lmer("Days ~ 1 + (1 | Subject)", _dask_frame("sleepstudy"))
        with pytest.raises(mm.MixedModelsError, match="different response"):
            mm.anova(dask_fit("sleepstudy", "sync"), other)


@pytest.mark.parametrize("ddf", ["kenward-roger", "KR"])
def test_kenward_roger_is_refused(dask_fit, ddf):
    fit = dask_fit("sleepstudy", "sync")
    for call in (lambda: fit.coef_table(ddf=ddf), lambda: fit.summary(ddf=ddf), lambda: fit.anova(ddf=ddf)):
        with pytest.raises(mm.NotOnDaskError, match="Kenward-Roger"):
            call()


def test_what_needs_the_rows_in_memory_says_so(dask_fit):
    fit = dask_fit("sleepstudy", "sync")
    for needs_rows in (
        lambda: mm.ranova(fit),
        lambda: mm.bootstrap(fit, lambda refit: refit.fixef, nsim=2, progress=False),
        lambda: fit.confint(),
        lambda: mm.emmeans(fit, "Days"),
    ):
        with pytest.raises(mm.NotOnDaskError, match="a fit on Dask keeps the rows of the data on the workers"):
            needs_rows()
    with pytest.raises(mm.NotOnDaskError, match="this needs the response in memory"):
        np.asarray(fit.model.inputs.y)
    assert fit.confint(method="wald").loc["Days"].notna().all()


# --- lazy row-level outputs -------------------------------------------------------------------
@pytest.mark.parametrize("name", ["weights_offset", "categorical"])
def test_fitted_and_residuals_are_lazy_and_match(name, dask_fit):
    fit, memory = dask_fit(name, "sync"), memory_fit(name)
    fitted = fit.fitted
    assert type(fitted).__module__.startswith("dask")
    with on("sync"):
        computed = fitted.compute()
        assert computed.index.tolist() == memory.fitted.index.tolist()  # the data's own row labels
        np.testing.assert_allclose(computed.to_numpy(), memory.fitted.to_numpy(), rtol=1e-7)
        for kind in ("response", "pearson"):
            for scaled in (False, True):
                ours = fit.residuals(kind, scaled=scaled).compute().to_numpy()
                theirs = memory.residuals(kind, scaled=scaled).to_numpy()
                np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5 * np.abs(theirs).max())


def test_predictions_for_the_fit_pandas_and_dask_newdata(dask_fit):
    fit, memory = dask_fit("categorical", "sync"), memory_fit("categorical")
    new = _sleep().iloc[::7]
    with on("sync"):
        for re_form in (None, "~0", "~ (1 | Id)"):
            np.testing.assert_allclose(
                fit.predict(re_form=re_form).compute().to_numpy(), memory.predict(re_form=re_form).to_numpy(), rtol=1e-7
            )
            pandas_new = fit.predict(new, re_form=re_form)
            assert isinstance(pandas_new, pd.Series) and pandas_new.index.equals(new.index)
            np.testing.assert_allclose(
                pandas_new.to_numpy(), memory.predict(new, re_form=re_form).to_numpy(), rtol=1e-7
            )
            lazy = fit.predict(dd.from_pandas(new, npartitions=3), re_form=re_form).compute()
            np.testing.assert_allclose(lazy.to_numpy(), pandas_new.to_numpy(), rtol=1e-12)
        with pytest.raises(mm.DataError, match="not in the fitted data"):
            fit.predict(new.assign(Id=1))


def test_prediction_intervals_for_pandas_newdata_and_what_is_refused(dask_fit):
    """se_fit and intervals read vcov and the conditional covariances only: the in-memory numbers for pandas rows."""
    fit, memory = dask_fit("sleepstudy", "sync"), memory_fit("sleepstudy")
    new = _sleep().iloc[::17]
    for options in ({"se_fit": True}, {"interval": "prediction", "level": 0.9}, {"re_form": "~0", "se_fit": True}):
        ours, theirs = fit.predict(new, **options), memory.predict(new, **options)
        pd.testing.assert_index_equal(ours.index, theirs.index)
        np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(), rtol=1e-5)
    with pytest.raises(mm.NotOnDaskError, match=r"predict\(se_fit=\)"):
        fit.predict(se_fit=True)
    with pytest.raises(mm.NotOnDaskError, match=r"simulate\(newparams=\)"):
        fit.simulate(newparams={"sigma": 30.0})


def test_predictions_read_the_offset_column_of_newdata(dask_fit):
    fit, memory = dask_fit("weights_offset", "sync"), memory_fit("weights_offset")
    new = _sleep().iloc[:20]
    with on("sync"):
        ours = fit.predict(new)
    np.testing.assert_allclose(ours.to_numpy(), memory.predict(new, offset=new["off"].to_numpy()).to_numpy(), rtol=1e-7)


def test_simulate_is_lazy_reproducible_and_centred_on_the_fit(dask_fit):
    fit = dask_fit("sleepstudy", "sync")
    with on("sync"):
        sims = fit.simulate(nsim=40, seed=3)
        first, again = sims.compute(), fit.simulate(nsim=40, seed=3).compute()
        conditional = fit.simulate(nsim=200, seed=4, use_re=True).compute()
        fitted = fit.fitted.compute()
    assert list(first.columns) == [f"sim_{i}" for i in range(1, 41)] and first.index.equals(fitted.index)
    pd.testing.assert_frame_equal(first, again)
    # with the modes fixed only the residual noise varies: 200 draws put the mean within 4 sigma / sqrt(200) of fitted
    assert np.all(np.abs(conditional.mean(axis=1) - fitted) <= 4 * fit.sigma / np.sqrt(200))


def test_fits_on_the_cluster_give_lazy_outputs_there(dask_fit, dask_client):
    fit, memory = dask_fit("sleepstudy", "cluster"), memory_fit("sleepstudy")
    with on("cluster", dask_client):
        np.testing.assert_allclose(fit.fitted.compute().to_numpy(), memory.fitted.to_numpy(), rtol=1e-7)


# --- data sources -------------------------------------------------------------------------
def test_a_parquet_glob_is_read_with_dask(tmp_path):
    df = dataset("sleepstudy")
    with on("sync"):
        dd.from_pandas(df, npartitions=3).to_parquet(tmp_path / "sleep")
        fit = mm.lmer("Reaction ~ Days + (Days | Subject)", str(tmp_path / "sleep" / "*.parquet"))
    assert_same_fit(fit, mm.lmer("Reaction ~ Days + (Days | Subject)", df))


def test_a_path_without_parquet_data_is_a_data_error(tmp_path):
    with pytest.raises(mm.DataError, match="no Parquet data"):
        mm.lmer("y ~ x + (1 | g)", str(tmp_path / "nothing" / "*.parquet"))


def test_weights_must_be_a_column_on_dask():
    with on("sync"), pytest.raises(mm.DataError, match="name of a column"):
        mm.lmer("Reaction ~ Days + (1 | Subject)", _dask_frame("sleepstudy"), weights=np.ones(180))


def test_weights_as_a_dask_series_lined_up_with_the_data():
    df = _sleep()
    ddf = dd.from_pandas(df, npartitions=4)
    with on("sync"):
        fit = mm.lmer("Reaction ~ Days + (Days | Subject)", ddf[["Reaction", "Days", "Subject"]], weights=ddf["w"])
    assert_same_fit(fit, mm.lmer("Reaction ~ Days + (Days | Subject)", df, weights=df["w"].to_numpy()))


def test_import_mixedmodels_and_a_fit_in_memory_do_not_import_dask():
    """Neither dask nor mixedmodels.dask's modules are imported until a fit on Dask is asked for."""
    code = (
        "import sys, mixedmodels as mm; "
        "mm.lmer('Reaction ~ Days + (1 | Subject)', mm.datasets.load('sleepstudy')); mm.glmer; "
        "loaded = [m for m in sys.modules if m.split('.')[0] == 'dask' or m.startswith('mixedmodels.dask')]; "
        "import mixedmodels.dask; "
        "loaded += [m for m in sys.modules if m.split('.')[0] == 'dask']; print(loaded)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_aliased_columns_are_dropped_as_in_memory_with_one_more_pass():
    """A nearly rank-deficient X (here exactly: scale(Days) and poly's first column) gets a QR pass for lme4's rule."""
    formula = "Reaction ~ scale(Days) + poly(Days, 2) + (1 | Subject)"
    df = _sleep()
    with pytest.warns(mm.RankDeficiencyWarning, match=r"poly\(Days, 2\)1") as memory_warnings:
        memory = mm.lmer(formula, df)
    with on("sync"), pytest.warns(mm.RankDeficiencyWarning) as dask_warnings:
        fit = mm.lmer(formula, dd.from_pandas(df, npartitions=4))
    message = [str(w.message) for w in memory_warnings if issubclass(w.category, mm.RankDeficiencyWarning)]
    assert [str(w.message) for w in dask_warnings if issubclass(w.category, mm.RankDeficiencyWarning)] == message
    assert fit.model.inputs.dropped_columns == memory.model.inputs.dropped_columns == ("poly(Days, 2)1",)
    assert_same_fit(fit, memory)


def test_start_and_na_action_as_in_memory():
    """lme4's start= reaches the optimizer on Dask too; na_action='exclude' (NaN-padded row outputs) is refused."""
    df = dataset("sleepstudy")
    formula = "Reaction ~ Days + (Days | Subject)"
    start = {"theta": [0.9, 0.05, 0.2]}
    memory = mm.lmer(formula, df, start=start)
    with on("sync"):
        fit = mm.lmer(formula, dd.from_pandas(df, npartitions=3), start=start, na_action="na.omit")
        np.testing.assert_array_equal(fit.optinfo.initial, memory.optinfo.initial)
        assert_same_fit(fit, memory)
        with pytest.raises(mm.NotOnDaskError, match="na_action='exclude'"):
            mm.lmer(formula, dd.from_pandas(df, npartitions=3), na_action="exclude")
        with pytest.raises(mm.ModelSpecError, match="na_action must be"):
            mm.glmer(
                "cbind(incidence, size - incidence) ~ period + (1 | herd)",
                dd.from_pandas(dataset("cbpp"), npartitions=2),
                family="binomial",
                na_action="pass",
            )
