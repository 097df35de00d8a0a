"""Every public function refuses wrongly typed or out-of-range arguments by name (issue 22, item 8).

The public API is enumerated, not listed: the callables in ``mm.__all__``,
the ``__all__`` of its public submodules (``mm.plots``, ``mm.bayes``, ...),
the constructors and public methods of the public classes, and the public
methods of every results class they return (found through the return
annotations, recursively: ``lmer`` -> ``LmerResults`` -> ``LmerSummary``).

For each callable, every parameter must have a kind (:mod:`mixedmodels._validate`:
declared with ``@argument_kinds`` next to the function, or common to every
function with that parameter name), and a value the kind refuses -- drawn by
hypothesis from the kind's own list of bad values and from a pool of
wrongly typed values -- must raise a MixedModelsError whose message starts
with the parameter's name.  The call is made with valid examples of the
other arguments (and, for a method, an instance that is never touched: the
arguments are checked before anything else).

A new public function is covered by giving each parameter a kind (the
common names -- ``data``, ``level``, ``seed``, ``weights``... -- have one
already) and calling ``check_arguments(locals())`` first thing; forgetting
either fails here.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import types
import warnings
from typing import Any, Callable

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import mixedmodels as mm
from mixedmodels import _validate
from mixedmodels._validate import Anything, Kind, kinds_of

# Classes users do not construct (the library makes them); their public methods are still tested.
MADE_BY_THE_LIBRARY = {
    "LinearMixedModel",
    "GeneralizedLinearMixedModel",
    "LmerResults",
    "GlmerResults",
    "GlmResponse",
    "Link",
    "BayesModel",
    "BayesResults",
}
# Parameters that may go unchecked, with the reason (each entry is a decision, not a gap).
_SKIP_FUNCTIONS = {
    "mm.datasets.list": "no parameters",
}


def _all_modules() -> dict[str, types.ModuleType]:
    """Every importable module of the package (optional extras that are missing are skipped)."""
    out = {}
    for info in pkgutil.walk_packages(mm.__path__, "mixedmodels."):
        try:
            out[info.name] = importlib.import_module(info.name)
        except ImportError:
            continue
    return out


def _classes_by_name() -> dict[str, type]:
    out: dict[str, type] = {}
    for module in _all_modules().values():
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and obj.__module__.startswith("mixedmodels") and not name.startswith("_"):
                out.setdefault(name, obj)
    return out


def _returned_classes(func: Callable, classes: dict[str, type]) -> list[type]:
    """Classes of the package named in ``func``'s return annotation."""
    annotation = inspect.signature(func).return_annotation
    if annotation is inspect.Signature.empty:
        return []
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    return [classes[name] for name in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text) if name in classes]


def _own_methods(cls: type) -> dict[str, Any]:
    """Public methods defined on ``cls`` or its package bases (not pandas', not object's)."""
    out = {}
    for klass in reversed(cls.__mro__):
        if not klass.__module__.startswith("mixedmodels"):
            continue
        for name, member in vars(klass).items():
            if name.startswith("_"):
                continue
            if isinstance(member, (staticmethod, classmethod)) or inspect.isfunction(member):
                out[name] = (klass, member)
    return out


# The evaluators' inner loops: called by the optimizer at every step with objects the model itself
# made (a factorization, a PIRLS solution); a check there costs microseconds per evaluation and once
# refused a valid factor type (a dense factor of a small model).  Users call objective(theta) and
# deviance(theta, beta), which are checked.
_INNER_LOOPS = {
    "LinearMixedModel.objective_from",
    "GeneralizedLinearMixedModel.laplace_value",
    "GeneralizedLinearMixedModel.agq_value",
    "GeneralizedLinearMixedModel.sigma_at",
}

_RESULT_NAME = re.compile(r"(Result|Results|Summary|Comparison|Means)$")
# modules of value classes (a family, a prior): constructors only, their methods are inner loops
_VALUE_CLASSES = ("mixedmodels.families", "mixedmodels.bayes.priors")
# (and the Dask passes' per-partition pieces: PartSummary, PassResult are summed by the reductions)
_INTERNAL_STAGES = (
    "mixedmodels.linalg",
    "mixedmodels.design",
    "mixedmodels.formula",
    "mixedmodels.dask.metadata",
    "mixedmodels.dask.pirls",
)


def public_api() -> dict[str, tuple[Callable, type | None, Callable]]:
    """label -> (callable to call, class for methods or None, the function whose kinds apply).

    Methods are enumerated for the classes in ``mm.__all__`` (the models and
    their results) and for every class a public callable returns (results
    objects); for the value classes of the submodules (families, priors,
    ``ExploreParams``) only the constructor is public API: their methods
    (``variance(mu)``, ``logpdf(x)``) are the library's inner loops.
    """
    classes = _classes_by_name()
    found: dict[str, tuple[Callable, type | None, Callable]] = {}
    queue: list[tuple[str, Any, bool]] = []
    # results objects by name, also those only returned by unannotated methods (m.profile(), m.summary())
    queue.extend(
        (name, cls, True)
        for name, cls in classes.items()
        if _RESULT_NAME.search(name) and not cls.__module__.startswith(_INTERNAL_STAGES)
    )
    for name in mm.__all__:
        obj = getattr(mm, name)
        if isinstance(obj, types.ModuleType):
            queue.extend((f"mm.{name}.{n}", getattr(obj, n), False) for n in getattr(obj, "__all__", []))
        else:
            queue.append((f"mm.{name}", obj, True))
    seen: dict[type, bool] = {}  # class -> its methods enumerated
    while queue:
        label, obj, with_methods = queue.pop(0)
        if inspect.isclass(obj):
            if issubclass(obj, BaseException) or not obj.__module__.startswith("mixedmodels"):
                continue
            if obj not in seen and obj.__name__ not in MADE_BY_THE_LIBRARY and label.startswith("mm."):
                found[label] = (obj, None, obj)
            if (
                not with_methods
                or seen.get(obj)
                or obj.__module__ in _VALUE_CLASSES
                or getattr(obj, "_is_protocol", False)
            ):
                seen.setdefault(obj, False)
                continue
            seen[obj] = True
            for method_name, (owner, member) in _own_methods(obj).items():
                if f"{obj.__name__}.{method_name}" in _INNER_LOOPS:
                    continue
                func = member.__func__ if isinstance(member, (staticmethod, classmethod)) else member
                bound = getattr(obj, method_name) if isinstance(member, (staticmethod, classmethod)) else None
                found[f"{obj.__name__}.{method_name}"] = (bound or func, None if bound else obj, func)
                queue.extend((cls.__name__, cls, True) for cls in _returned_classes(func, classes))
        elif callable(obj) and not isinstance(obj, types.ModuleType):
            found[label] = (obj, None, obj)
            try:
                queue.extend((cls.__name__, cls, True) for cls in _returned_classes(obj, classes))
            except (TypeError, ValueError):
                pass
    return found


API = public_api()


def _signature_parameters(target: Callable) -> list[inspect.Parameter]:
    params = list(inspect.signature(target).parameters.values())
    return [p for p in params if p.name not in ("self", "cls") and p.kind is not p.VAR_KEYWORD]


def _kinds(target: Callable) -> dict[str, Kind]:
    if inspect.isclass(target):
        init = getattr(target, "__post_init__", None) or target.__init__
        return {**kinds_of_class(target, init)}
    return kinds_of(target)


def kinds_of_class(cls: type, init: Callable) -> dict[str, Kind]:
    declared = getattr(init, "__parameter_kinds__", {})
    names = [p.name for p in inspect.signature(cls).parameters.values()]
    return {n: declared.get(n, _validate.COMMON.get(n)) for n in names if n in declared or n in _validate.COMMON}


def test_the_enumeration_finds_the_api():
    """The walk reaches the fitters, the results' methods and the submodules' functions."""
    for label in (
        "mm.lmer",
        "mm.glmer",
        "LmerResults.predict",
        "GlmerResults.simulate",
        "LmResults.predict",
        "mm.plots.caterpillar",
        "mm.datasets.load",
        "mm.explore.serve",
        "mm.OptimizerSettings",
        "BootstrapResult.confint",
        "MarginalMeans.contrast",
    ):
        assert label in API, label


def test_every_parameter_has_a_kind():
    missing = []
    for label, (call, owner, target) in sorted(API.items()):
        kinds = _kinds(target)
        for p in _signature_parameters(target if not inspect.isclass(target) else target):
            if p.name not in kinds or kinds[p.name] is None:
                missing.append(f"{label}({p.name})")
    assert not missing, "parameters without a kind (declare them with @argument_kinds): " + ", ".join(missing)


def test_unchecked_parameters_say_why():
    for label, (call, owner, target) in API.items():
        for name, kind in _kinds(target).items():
            if isinstance(kind, Anything):
                assert kind.reason and len(kind.reason) > 10, f"{label}({name})"


# a pool of wrongly typed values, mixed with each kind's own refusals
_POOL = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.binary(max_size=4),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.just(object()),
    st.just(complex(1, 2)),
    st.just(np.array([[1.0, 2.0]])),
    st.just(pd.Series(["a"])),
)


def _example_arguments(target: Callable, kinds: dict[str, Kind]) -> tuple[list, dict]:
    args, kwargs = [], {}
    for p in _signature_parameters(target):
        if p.kind is p.VAR_POSITIONAL:
            continue
        if p.default is not inspect.Parameter.empty:
            continue
        value = kinds[p.name].example
        if p.kind is p.KEYWORD_ONLY:
            kwargs[p.name] = value
        else:
            args.append(value)
    return args, kwargs


def _call_with(label: str, name: str, value: Any) -> None:
    call, owner, target = API[label]
    kinds = _kinds(target)
    args, kwargs = _example_arguments(target, kinds)
    params = {p.name: p for p in _signature_parameters(target)}
    p = params[name]
    if p.kind is p.VAR_POSITIONAL:
        args = [*args, value]
    elif p.kind is p.KEYWORD_ONLY or p.default is not inspect.Parameter.empty:
        kwargs[name] = value
    else:
        positional = [
            q.name
            for q in params.values()
            if q.kind in (q.POSITIONAL_ONLY, q.POSITIONAL_OR_KEYWORD) and q.default is inspect.Parameter.empty
        ]
        args[positional.index(name)] = value
    if owner is not None:
        args = [object.__new__(owner), *args]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        call(*args, **kwargs)


CASES = sorted(
    (label, name)
    for label, (_, _, target) in API.items()
    for name, kind in _kinds(target).items()
    if kind is not None and not isinstance(kind, Anything)
)


@pytest.mark.parametrize("label,name", CASES, ids=[f"{a}-{b}" for a, b in CASES])
def test_refuses_wrong_arguments_by_name(label, name):
    kind = _kinds(API[label][2])[name]

    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
    @given(value=st.one_of(st.sampled_from(kind.refused() or [None]), _POOL))
    def refused(value):
        if kind.accepts(value):
            return
        with pytest.raises(mm.MixedModelsError, match=rf"^{re.escape(name)}\b"):
            _call_with(label, name, value)

    refused()
