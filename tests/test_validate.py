"""Boolean parameters are booleans (issue 22, item 4).

Read by truthiness, ``REML="no"`` fitted REML, ``REML=None`` ML and
``allow_new_levels="no"`` meant True.  Every boolean parameter of the public
fitting, prediction, simulation and inference functions now accepts
``True``/``False`` (and numpy's bools) and refuses anything else with a
MixedModelsError that names the parameter.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels._validate import check_bool

from conftest import dataset, fitted_lmer

SLEEP = "Reaction ~ Days + (Days | Subject)"
BAD_FLAGS = ["no", "False", None, 0, 1, 1.0, np.array([True]), [True]]


def test_check_bool_accepts_python_and_numpy_bools():
    assert check_bool(True, "x") is True and check_bool(np.False_, "x") is False
    assert check_bool(np.bool_(True), "x") is True
    assert check_bool(None, "x", allow_none=True) is None
    with pytest.raises(mm.MixedModelsError, match=r"flag must be True or False, not 'no' \(str\)"):
        check_bool("no", "flag")
    with pytest.raises(mm.MixedModelsError, match="flag must be True, False or None, not 1"):
        check_bool(1, "flag", allow_none=True)


def _sleep_fit():
    return fitted_lmer(SLEEP, "sleepstudy")


def _lm_fit():
    return mm.lm("Reaction ~ Days", dataset("sleepstudy"))


def _glmer_fit():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", dataset("cbpp"))


# (label, parameter, call taking the value); each call refuses a non-bool before any work
CALLS = [
    ("lmer", "REML", lambda v: mm.lmer(SLEEP, dataset("sleepstudy"), REML=v)),
    (
        "LinearMixedModel.from_formula",
        "REML",
        lambda v: mm.LinearMixedModel.from_formula(SLEEP, dataset("sleepstudy"), REML=v),
    ),
    ("LmResults.loglik_at", "REML", lambda v: _lm_fit().loglik_at(REML=v)),
    ("predict", "allow_new_levels", lambda v: _sleep_fit().predict(allow_new_levels=v)),
    ("residuals", "scaled", lambda v: _sleep_fit().residuals(scaled=v)),
    ("glmer residuals", "scaled", lambda v: _glmer_fit().residuals(scaled=v)),
    ("ranef", "condvar", lambda v: _sleep_fit().ranef(condvar=v)),
    ("predict", "se_fit", lambda v: _sleep_fit().predict(se_fit=v)),
    ("confint", "old_names", lambda v: _sleep_fit().confint(method="wald", old_names=v)),
    ("fixef", "add_dropped", lambda v: _sleep_fit().fixef(add_dropped=v)),
    ("bootstrap", "use_re", lambda v: mm.bootstrap(_sleep_fit(), lambda m: m.sigma, nsim=1, use_re=v)),
    ("bootstrap", "progress", lambda v: mm.bootstrap(_sleep_fit(), lambda m: m.sigma, nsim=1, progress=v)),
    ("confint boot", "progress", lambda v: _sleep_fit().confint(method="boot", nsim=1, progress=v)),
    ("profile", "progress", lambda v: _sleep_fit().profile(progress=v)),
    ("anova", "refit", lambda v: mm.anova(_lm_fit(), _sleep_fit(), refit=v)),
    ("ranova", "reduce_terms", lambda v: mm.ranova(_sleep_fit(), reduce_terms=v)),
    ("power", "progress", lambda v: mm.power({"n_groups": 4, "n_obs": 3}, "y ~ x", "x", nsim=1, progress=v)),
]


@pytest.mark.parametrize("label,name,call", CALLS, ids=[f"{c[0]}-{c[1]}" for c in CALLS])
@pytest.mark.parametrize("value", BAD_FLAGS, ids=repr)
def test_non_boolean_flags_are_refused_by_name(label, name, call, value):
    with pytest.raises(mm.MixedModelsError, match=rf"^{name} must be True or False"):
        call(value)


# flags where None means "choose for me" (the default)
OPTIONAL_CALLS = [
    ("simulate", "use_re", lambda v: _sleep_fit().simulate(use_re=v, seed=1)),
    ("compare_pooling", "share_fixed", lambda v: mm.compare_pooling(_sleep_fit(), share_fixed=v)),
]


@pytest.mark.parametrize("label,name,call", OPTIONAL_CALLS, ids=[f"{c[0]}-{c[1]}" for c in OPTIONAL_CALLS])
@pytest.mark.parametrize("value", [v for v in BAD_FLAGS if v is not None], ids=repr)
def test_optional_flags_refuse_non_booleans_by_name(label, name, call, value):
    with pytest.raises(mm.MixedModelsError, match=rf"^{name} must be True, False or None"):
        call(value)


def test_reml_flag_values_that_used_to_be_misread(sleepstudy):
    """``REML="no"`` used to fit REML and ``REML=None`` ML; numpy's bools mean what they say."""
    for value in ("no", None):
        with pytest.raises(mm.MixedModelsError, match="REML"):
            mm.lmer(SLEEP, sleepstudy, REML=value)
    ml = mm.lmer(SLEEP, sleepstudy, REML=np.False_)
    assert ml.REML is False and isinstance(ml.REML, bool)
    assert ml.objective == pytest.approx(fitted_lmer(SLEEP, "sleepstudy", REML=False).objective, rel=1e-10)


def test_allow_new_levels_no_is_refused_not_true():
    new = pd.DataFrame({"Days": [1.0], "Subject": ["NEW"]})
    with pytest.raises(mm.MixedModelsError, match="allow_new_levels must be True or False"):
        _sleep_fit().predict(new, allow_new_levels="no")
    with pytest.raises(mm.DataError, match="NEW"):  # False really is False
        _sleep_fit().predict(new, allow_new_levels=np.False_)


def test_bayes_flags_are_refused_by_name():
    pytest.importorskip("numpyro")
    from mixedmodels import bayes

    sleep = dataset("sleepstudy")
    for name in ("progress", "prior_only", "center"):
        with pytest.raises(mm.MixedModelsError, match=f"^{name} must be True or False"):
            bayes.lmer(SLEEP, sleep, **{name: "no"})
        with pytest.raises(mm.MixedModelsError, match=f"^{name} must be True or False"):
            bayes.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", dataset("cbpp"), **{name: None})
    prior = bayes.lmer("Reaction ~ Days + (1 | Subject)", sleep, prior_only=True, draws=5, chains=1, seed=1)
    calls = {
        "use_re": [
            lambda v: prior.predict(use_re=v),
            lambda v: prior.posterior_predict(use_re=v),
            lambda v: prior.posterior_epred(use_re=v),
        ],
        "draws": [lambda v: prior.ranef(draws=v)],
        "share_fixed": [lambda v: mm.compare_pooling(prior, method="bayes", share_fixed=v)],
    }
    for name, funcs in calls.items():
        for func in funcs:
            with pytest.raises(mm.MixedModelsError, match=f"^{name} must be True(,| or) False"):
                func("yes")
    with pytest.raises(mm.MixedModelsError, match="^log_likelihood must be True, False or None"):
        prior.to_idata(log_likelihood="yes")
