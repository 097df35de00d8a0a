"""glmer's path after the model frame does each check once and skips work whose answer it knows.

Each shortcut of that path (issue 18, small models' cold time) rests on a fact about what is
skipped; these tests check the facts:

* glmer checks each argument once (formula, data and method before the hand-over to Dask, the
  rest after); a bad argument is still refused by name.  It sets one BLAS thread for a design of
  ``SMALL_DESIGN`` rows or more; the general fit sets it too (then found set), the compiled one-term
  fit, which calls no BLAS, does not;
* a family made without a link checks nothing (None is the link's kind), one with a link does;
* the compiled one-term fit reads its column scale off the term's layout: the model's
  ``theta_scales`` there, exactly; its theta's lower bound is 0, so ``is_singular`` is theta below
  the tolerance;
* ``check_arguments`` skips an accepted None without calling the kind: every kind that allows None
  accepts it in its own check;
* a ``cbind`` of two columns is stacked without ``np.column_stack``: the same array.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels import _threads, _validate
from mixedmodels.design.frame import model_frame
from mixedmodels.design.response import build_response
from mixedmodels.glmm import fit as glmm_fit
from mixedmodels.glmm.model import GeneralizedLinearMixedModel
from mixedmodels.linalg import one_term
from mixedmodels.lmm.results import SINGULAR_TOLERANCE

from .test_one_term import needs_numba

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


def _glmer_quietly(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.glmer(*args, **kwargs)


def _count_limits(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int]]:
    """Entries into glmer's BLAS limit (through ``design_threads_for``) and the general fit's."""
    entered: dict[str, list[int]] = {"glmer": [], "fit": []}
    original = _threads.one_blas_thread

    def counted(name: str):
        def limit():
            entered[name].append(1)
            return original()

        return limit

    monkeypatch.setattr(_threads, "one_blas_thread", counted("glmer"))
    monkeypatch.setattr(glmm_fit, "one_blas_thread", counted("fit"))
    return entered


@needs_numba
def test_glmer_limits_blas_threads_only_where_openblas_could_start_them(monkeypatch: pytest.MonkeyPatch) -> None:
    entered = _count_limits(monkeypatch)
    cbpp = mm.datasets.load("cbpp")  # 56 rows: below SMALL_DESIGN
    assert len(cbpp) < _threads.SMALL_DESIGN <= len(mm.datasets.load("grouseticks"))
    assert _glmer_quietly(CBPP, cbpp, family="binomial").optinfo.optimizer == one_term.COMPILED_NEWTON
    assert entered == {"glmer": [], "fit": []}  # a small design, and the compiled fit calls no BLAS
    _glmer_quietly(CBPP, cbpp, family="binomial", nAGQ=0)  # the general path
    assert entered == {"glmer": [], "fit": [1]}
    _glmer_quietly("TICKS ~ YEAR + (1 | LOCATION)", mm.datasets.load("grouseticks"), family="poisson")
    assert entered == {"glmer": [1], "fit": [1]}  # 403 rows: the design under the limit; the fit compiled
    GeneralizedLinearMixedModel.from_formula(CBPP, cbpp, family="binomial").fit(nAGQ=0)
    assert entered["fit"] == [1, 1]  # a model's general fit sets it itself


def test_glmer_still_refuses_each_bad_argument_by_name() -> None:
    cbpp = mm.datasets.load("cbpp")
    for kwargs, name in [
        ({"family": 3}, "family"),
        ({"nAGQ": -1}, "nAGQ"),
        ({"weights": "size"}, "weights"),
        ({"na_action": 1}, "na_action"),
        ({"settings": "fast"}, "settings"),
        ({"max_memory": [1]}, "max_memory"),
    ]:
        with pytest.raises(mm.MixedModelsError, match=f"^{name}"):
            mm.glmer(CBPP, cbpp, **kwargs)
    with pytest.raises(mm.MixedModelsError, match="^data"):
        mm.glmer(CBPP, {"herd": [1]})
    with pytest.raises(mm.MixedModelsError, match="^formula"):
        mm.glmer(3, cbpp)


def test_a_family_checks_its_link_only_when_given() -> None:
    assert mm.families.Binomial().link.name == "logit"
    assert mm.families.Binomial(link="probit").link.name == "probit"
    with pytest.raises(mm.MixedModelsError, match="^link"):
        mm.families.Binomial(link=3)
    with pytest.raises(mm.MixedModelsError, match="link 'identity' is not available"):
        mm.families.Binomial(link="identity")


@needs_numba
@pytest.mark.parametrize("scale", [1.0, 100.0, 1e-3])
def test_the_one_term_scale_is_the_models_theta_scale(scale: float) -> None:
    cbpp = mm.datasets.load("cbpp").assign(one=scale * np.linspace(0.5, 1.5, 56))
    for formula in [CBPP, "cbind(incidence, size - incidence) ~ period + (0 + one | herd)"]:
        model = GeneralizedLinearMixedModel.from_formula(formula, cbpp, family="binomial")
        assert one_term.one_term_applies(model, 1, "auto")
        assert one_term._arrays(model)[-1] == model.theta_scales[0]  # exactly: the same float
        np.testing.assert_array_equal(model.theta_lower, [0.0])  # so is_singular is theta < the tolerance
        fit = _glmer_quietly(formula, cbpp, family="binomial")
        assert fit.optinfo.optimizer == one_term.COMPILED_NEWTON
        assert fit.is_singular == bool(fit.theta[0] < SINGULAR_TOLERANCE)
        np.testing.assert_array_equal(fit.optinfo.initial[:1], model.theta_start)


def _all_kinds() -> list[_validate.Kind]:
    mm.datasets.load("cbpp")  # (the package's modules declare their kinds when imported)
    kinds = list(_validate.COMMON.values())
    for declared in _validate._DECLARED.values():
        kinds.extend(declared.values())
    return kinds


def test_every_kind_that_allows_none_accepts_it_in_its_check() -> None:
    allowing = [kind for kind in _all_kinds() if kind.allow_none]
    assert len(allowing) > 20
    for kind in allowing:
        assert kind.check(None, "x") is None  # what check_arguments skips


def test_the_merged_kinds_are_the_declared_ones_else_the_common_ones() -> None:
    for code, declared in list(_validate._DECLARED.items()):
        kinds = _validate._kinds_for(code)
        for name in {*declared, *_validate.COMMON}:
            assert kinds.get(name) is (declared.get(name) or _validate.COMMON.get(name))


def test_a_cbind_of_two_columns_is_column_stacks() -> None:
    cbpp = mm.datasets.load("cbpp").assign(fsize=lambda d: d["size"].astype(float))
    frame = model_frame(cbpp, ["incidence", "size", "fsize"])
    stacked = np.column_stack([cbpp["incidence"].to_numpy(float), (cbpp["size"] - cbpp["incidence"]).to_numpy(float)])
    for source in [frame, cbpp]:
        for lhs in ["cbind(incidence, size - incidence)", "cbind(incidence, fsize - incidence)"]:
            out = build_response(lhs, source)
            assert out.dtype == np.float64 and out.flags.c_contiguous
            np.testing.assert_array_equal(out, stacked)
    # a number beside a column is broadcast, as before
    np.testing.assert_array_equal(build_response("cbind(incidence, 1)", frame)[:, 1], np.ones(len(cbpp)))
    with pytest.raises(mm.MixedModelsError, match="one value per row"):
        build_response("cbind(1, 2)", frame)
    assert isinstance(cbpp, pd.DataFrame)  # (the data are not modified)
