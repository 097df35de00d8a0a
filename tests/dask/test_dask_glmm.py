"""glmer on Dask (mixedmodels.dask.glmm, mixedmodels.dask.pirls): one pass per PIRLS step, the in-memory answers.

Each PIRLS step is one pass, so a Laplace fit of cbpp makes ~270 of them:
milliseconds each on the synchronous scheduler, a scheduler round trip each
on a cluster.  The LocalCluster fits cbpp at nAGQ=1 (both optimization
stages and the Hessian, partitions persisted on the workers and summed
there); the other Laplace fits (VerbAgg's crossed terms, a Poisson fit with
an offset, random slopes and covariance structures) and cbpp at nAGQ=0 run
on the synchronous scheduler.
Tolerances: see ``conftest_dask`` (glmer's beta and SEs are held to what its
own optimizer and finite-difference Hessian determine; nAGQ=0's SEs come
from R_X, as lmer's, and are held to lmer's 1e-5).
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from conftest import dataset
from conftest_dask import assert_same_fit, on, partitioned

dd = pytest.importorskip("dask.dataframe")

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
VERBAGG = "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)"
GLMM_TOLERANCES = dict(beta_se=1e-5, se=1e-3)

# name -> (formula, data, family, nAGQ, partition sizes or a count, Dask keywords)
CASES = {
    "cbpp": (CBPP, "cbpp", "binomial", 1, [20, 0, 15, 21], {}),
    "cbpp_nagq0": (CBPP, "cbpp", "binomial", 0, [20, 0, 15, 21], {}),
    "verbagg": (VERBAGG, "VerbAgg", "binomial", 1, 5, {}),
    "cbpp_poisson_offset": ("incidence ~ period + (1 | herd)", "cbpp", "poisson", 1, 3, {"offset": "logsize"}),
    # random slopes (columns other than an intercept: the workers' z are divided by their scales once) and structures
    "slope": ("y ~ x + (1 + x | g)", "counts", "poisson", 1, 3, {}),
    "diag": ("y ~ x + diag(1 + x | g)", "counts", "poisson", 1, 3, {}),
    "cs": ("y ~ x + cs(1 + x | g)", "counts", "poisson", 1, [100, 0, 120, 80], {}),
}
RUNS = [
    ("cbpp", "sync"),
    ("cbpp", "cluster"),
    ("cbpp_nagq0", "sync"),
    ("verbagg", "sync"),
    ("cbpp_poisson_offset", "sync"),
    ("slope", "sync"),
    ("diag", "sync"),
    ("cs", "sync"),
]


def _counts():
    """Poisson counts of 30 groups x 10 rows with a correlated random intercept and slope."""
    rng = np.random.default_rng(5)
    g = np.repeat(np.arange(30), 10)
    x = rng.normal(size=g.size)
    b = rng.normal(size=(30, 2)) * [0.5, 0.3]
    y = rng.poisson(np.exp(0.5 + 0.3 * x + b[g, 0] + b[g, 1] * x))
    return pd.DataFrame({"y": y, "x": x, "g": pd.Categorical(g)})


def _data(name: str):
    if CASES[name][1] == "counts":
        return _counts()
    df = dataset(CASES[name][1]).copy()
    if name == "cbpp_poisson_offset":
        df["logsize"] = np.log(df["size"])
    return df


@lru_cache(maxsize=None)
def memory_fit(name: str):
    """The in-memory fit of the same rows without the Laplace gradient, as on Dask: the gradient (the
    in-memory default where it applies: BFGS, and the final Newton polish from its differences) reads
    each term's columns row by row, so a fit on Dask has none and uses BOBYQA with a finite-difference
    polish, which stops 1.5e-9 above the optimum in -2 log L on cbpp (theta 1e-5 relative from it).
    What is compared here is the summed blocks, so the optimizer path is the same on both sides."""
    from mixedmodels.glmm.model import GeneralizedLinearMixedModel

    formula, data_name, family, nagq, _, kwargs = CASES[name]
    df = _data(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = GeneralizedLinearMixedModel.from_formula(
            formula, df, family, **{k: df[v].to_numpy() for k, v in kwargs.items()}
        )
        model.__dict__["_laplace_gradient"] = None  # as on Dask (glmm.fit._laplace_gradient's cache): no gradient
        model.__dict__["rows_in_memory"] = False  # ... and no compiled one-term fit (linalg.one_term), as on Dask
        return model.fit(nAGQ=nagq)


_FITS: dict = {}


@pytest.fixture(scope="session")
def dask_fit(request):
    """The Dask fit of a case on a scheduler, made once per session."""

    def fit(name: str, scheduler: str):
        if (name, scheduler) not in _FITS:
            formula, _, family, nagq, sizes, kwargs = CASES[name]
            df = _data(name)
            ddf = partitioned(df, sizes) if isinstance(sizes, list) else dd.from_pandas(df, npartitions=sizes)
            client = request.getfixturevalue("dask_client") if scheduler == "cluster" else None
            with on(scheduler, client), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _FITS[name, scheduler] = mm.dask.glmer(formula, ddf, family=family, nAGQ=nagq, progress=False, **kwargs)
        return _FITS[name, scheduler]

    return fit


@pytest.mark.parametrize("name, scheduler", RUNS)
def test_dask_glmer_equals_memory_glmer(name, scheduler, dask_fit):
    fit, memory = dask_fit(name, scheduler), memory_fit(name)
    assert isinstance(fit, mm.GlmerResults) and type(fit).__name__ == "DaskGlmerResults"
    if CASES[name][3] == 0:  # nAGQ=0: SEs from R_X, as in memory
        assert fit.vcov_method == memory.vcov_method == "RX"
        assert_same_fit(fit, memory)
    else:
        assert fit.vcov_method == memory.vcov_method == "hessian"
        assert_same_fit(fit, memory, **GLMM_TOLERANCES)


def test_tightly_converged_dask_glmer_equals_the_default_memory_glmer():
    """Against the default in-memory fit (the gradient, or the compiled one-term Newton fit, which stops at a
    Newton decrement of 1e-14) the Dask fit differs only by where BOBYQA stops: at lme4's tolerances
    (ftol_abs 1e-8) cbpp's theta is 1e-5 from it (lme4's own, 3e-4); converged tightly, the issue's
    tolerances hold (measured with these partitions: theta 2e-10 relative, beta 1e-7 of its SE).  The SEs come
    from finite-difference Hessians: the compiled fit's central differences agree with Dask's to 2.2e-6, the
    numpy path's forward differences (without numba) to 1.1e-5, their truncation error; hence 2e-5 there."""
    df = dataset("cbpp")
    tight = mm.OptimizerSettings(ftol_abs=0.0, ftol_rel=0.0, xtol_rel=1e-13)  # stops on theta alone
    with on("sync", None), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mm.dask.glmer(CBPP, partitioned(df, [20, 0, 15, 21]), family="binomial", settings=tight, progress=False)
        memory = mm.glmer(CBPP, df, family="binomial")
    assert_same_fit(fit, memory, se=2e-5)


def test_passes_are_counted_one_per_pirls_step(dask_fit):
    fit = dask_fit("cbpp", "sync")
    assert fit.data_passes > 100  # two optimization stages and a Hessian, each evaluation a PIRLS run


def test_deviance_summary_and_lazy_outputs(dask_fit):
    fit, memory = dask_fit("cbpp", "sync"), memory_fit("cbpp")
    assert abs(fit.deviance / memory.deviance - 1) <= 1e-8
    with on("sync"):
        assert str(fit.summary()) == str(memory.summary())
        np.testing.assert_allclose(fit.fitted.compute().to_numpy(), memory.fitted.to_numpy(), rtol=1e-6)
        np.testing.assert_allclose(
            fit.linear_predictor.compute().to_numpy(), memory.linear_predictor.to_numpy(), rtol=1e-6
        )
        for kind in ("deviance", "pearson", "working", "response"):
            np.testing.assert_allclose(
                fit.residuals(kind).compute().to_numpy(), memory.residuals(kind).to_numpy(), rtol=1e-5, atol=1e-8
            )
        new = _data("cbpp").iloc[::5]
        np.testing.assert_allclose(
            fit.predict(new, type="link").to_numpy(), memory.predict(new, type="link").to_numpy(), rtol=1e-6
        )


def test_simulated_counts_are_whole_numbers_within_the_trials(dask_fit):
    fit = dask_fit("cbpp", "sync")
    with on("sync"):
        sims = fit.simulate(nsim=5, seed=1).compute()
    size = _data("cbpp")["size"].to_numpy()[:, None]
    assert np.all(sims.to_numpy() == np.round(sims.to_numpy())) and np.all((sims >= 0) & (sims <= size))


def test_progress_bar_counts_the_passes(capsys):
    with on("sync"):
        mm.dask.glmer(CBPP, dd.from_pandas(dataset("cbpp"), npartitions=2), nAGQ=0, progress=True)
    assert "data passes" in capsys.readouterr().err


def test_what_glmer_on_dask_does_not_do():
    ddf = dd.from_pandas(dataset("cbpp"), npartitions=2)
    with on("sync"):
        with pytest.raises(mm.NotOnDaskError, match="Gauss-Hermite"):
            mm.glmer(CBPP, ddf, family="binomial", nAGQ=5)
        with pytest.raises(mm.NotOnDaskError, match="binomial and Poisson"):
            mm.glmer("size ~ period + (1 | herd)", ddf, family="Gamma")
        with pytest.warns(mm.MixedModelsWarning, match="linear mixed model"):
            fit = mm.glmer("size ~ period + (1 | herd)", ddf, family="gaussian")
    assert type(fit).__name__ == "DaskLmerResults"


def test_start_reaches_the_fit_as_in_memory():
    df = dataset("cbpp")
    start = {"theta": [0.5], "fixef": [-1.4, -1.0, -1.1, -1.6]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        memory = mm.glmer(CBPP, df, family="binomial", nAGQ=0, start=start)
        with on("sync"):
            fit = mm.glmer(CBPP, dd.from_pandas(df, npartitions=2), family="binomial", nAGQ=0, start=start)
    np.testing.assert_array_equal(fit.optinfo.initial, memory.optinfo.initial)
    assert_same_fit(fit, memory)
