"""Checks of the public functions' arguments: type and range, each refusal naming the parameter.

A flag read by truthiness turns a typo into a different model (``REML="no"``
is truthy, so it fits REML), and a ``nAGQ`` of ``nan`` or a ``seed`` of
``"a"`` reaches numpy or the optimizer and fails there, far from its cause.
So every public function and every public method of a results object
starts with

    check_arguments(locals())

which checks each argument against its *kind* (:class:`Kind`: a flag, a
whole number in a range, a probability, a seed, a data frame, ...) and
raises a :class:`~mixedmodels.errors.MixedModelsError` that starts with the
parameter's name ("nAGQ must be a whole number from 0 to 100, not nan
(float)").  Only type and range are checked here; what depends on the data
or the model (a column that is missing, a theta of the wrong length) is
checked where it is known.

Where the kinds come from
-------------------------
* :data:`COMMON`: parameters with the same name mean the same thing in every
  function (``level`` is a confidence level in (0, 1), ``seed`` a seed,
  ``weights`` one number per row, ...);
* :func:`argument_kinds`, a decorator next to the function, declares the
  others and any exception to :data:`COMMON`::

      @argument_kinds(nAGQ=Integer(0, 100), family=FAMILY)
      def glmer(formula, data, family="binomial", *, nAGQ=1, ...):
          check_arguments(locals())

  (the decorator only records the kinds: it does not wrap the function, so
  warnings keep pointing at the caller's line).

``tests/test_arguments.py`` enumerates the public API (``mm.__all__``, the
public submodules, the results classes' public methods) and checks that
every parameter has a kind and that a wrongly typed or out-of-range value
is refused by name: a new public function is covered by giving its
parameters kinds (most have them through :data:`COMMON`) and calling
:func:`check_arguments` first thing.
"""

from __future__ import annotations

import glob
import math
import os
import reprlib
import sys
from collections.abc import Mapping
from types import CodeType
from typing import Any, Callable, TypeVar

import numpy as np

from .errors import DataError, FormulaError, MixedModelsError, ModelSpecError

__all__ = [
    "check_bool",
    "check_arguments",
    "argument_kinds",
    "kinds_of",
    "Kind",
    "Flag",
    "Integer",
    "Real",
    "Choice",
    "Text",
    "FormulaText",
    "ReForm",
    "TextList",
    "Frame",
    "PerRow",
    "Seed",
    "Instance",
    "Function",
    "Duck",
    "Dict",
    "Figsize",
    "Axes",
    "Numbers",
    "OneOf",
    "Anything",
    "MemorySize",
    "COMMON",
    "FAMILY",
]

_SHORT = reprlib.Repr()
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlist, _SHORT.maxdict = 40, 40, 4, 4


def _shown(value: Any) -> str:
    """A short repr and the type: ``'no' (str)``, ``nan (float)``."""
    return f"{_SHORT.repr(value)} ({type(value).__name__})"


def check_bool(value: Any, name: str, *, allow_none: bool = False) -> bool | None:
    """``value`` as a bool if it is one (``bool`` or ``numpy.bool_``), else a MixedModelsError naming ``name``.

    With ``allow_none`` a None (meaning "choose for me") is passed through.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if value is None and allow_none:
        return None
    allowed = "True, False or None" if allow_none else "True or False"
    raise MixedModelsError(f"{name} must be {allowed}, not {_SHORT.repr(value)} ({type(value).__name__})")


# --------------------------------------------------------------------------- kinds
class Kind:
    """What an argument may be.  Subclasses define :meth:`problem` and :attr:`what`.

    ``allow_none``: None is accepted (the parameter's "choose for me").
    :meth:`refused` lists values the kind must refuse (the tests use them
    with randomly drawn ones); :attr:`example` is a value it accepts.
    """

    what = "a value"
    example: Any = None
    error: type[MixedModelsError] = ModelSpecError  # DataError for the data and per-row values

    def __init__(self, *, allow_none: bool = False) -> None:
        self.allow_none = allow_none

    def problem(self, value: Any) -> bool:
        """True when ``value`` (not None) is not of this kind."""
        raise NotImplementedError

    def describe(self) -> str:
        return f"{self.what} or None" if self.allow_none else self.what

    def check(self, value: Any, name: str) -> None:
        """Raise a MixedModelsError naming ``name`` unless ``value`` is of this kind."""
        if value is None:
            if self.allow_none:
                return
            raise self.error(f"{name} must be {self.describe()}, not None")
        if self.problem(value):
            raise self.error(f"{name} must be {self.describe()}, not {_shown(value)}")

    def accepts(self, value: Any) -> bool:
        return (value is None and self.allow_none) or (value is not None and not self.problem(value))

    def refused(self) -> list[Any]:
        """Values of the wrong type or out of range for this kind."""
        return [] if self.allow_none else [None]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()!r})"


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def _is_real(value: Any) -> bool:
    """A real number (int, float, numpy scalar), not a bool."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not _is_bool(value)


def _is_whole(value: Any) -> bool:
    """A whole number: an int, a numpy integer, or an integral finite float (``2.0``)."""
    if isinstance(value, (int, np.integer)) and not _is_bool(value):
        return True
    return isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer()


class Flag(Kind):
    """True or False (numpy's bools too); never a truthy stand-in such as ``"no"`` or 1."""

    what = "True or False"
    example = True

    def problem(self, value: Any) -> bool:
        return not _is_bool(value)

    def describe(self) -> str:
        return "True, False or None" if self.allow_none else self.what

    def refused(self) -> list[Any]:
        return [*super().refused(), "no", "False", 0, 1, 1.0, [True]]


class Integer(Kind):
    """A whole number from ``low`` to ``high`` (either end may be None: unbounded)."""

    def __init__(self, low: int | None = None, high: int | None = None, *, allow_none: bool = False) -> None:
        super().__init__(allow_none=allow_none)
        self.low, self.high = low, high
        if low is not None and high is not None:
            self.what = f"a whole number from {low} to {high}"
        elif low is not None:
            self.what = f"a whole number >= {low}"
        elif high is not None:
            self.what = f"a whole number <= {high}"
        else:
            self.what = "a whole number"
        self.example = low if low is not None else (high if high is not None else 0)

    def problem(self, value: Any) -> bool:
        if not _is_whole(value):
            return True
        return (self.low is not None and value < self.low) or (self.high is not None and value > self.high)

    def refused(self) -> list[Any]:
        out = [*super().refused(), "1", 1.5, math.nan, math.inf, True, [1]]
        if self.low is not None:
            out.append(self.low - 1)
        if self.high is not None:
            out.append(self.high + 1)
        return out


class Real(Kind):
    """A finite real number in a range; ``open`` ends exclude the bound."""

    def __init__(
        self,
        low: float | None = None,
        high: float | None = None,
        *,
        low_open: bool = False,
        high_open: bool = False,
        allow_none: bool = False,
        allow_inf: bool = False,
    ) -> None:
        super().__init__(allow_none=allow_none)
        self.low, self.high, self.low_open, self.high_open = low, high, low_open, high_open
        self.allow_inf = allow_inf
        finite = "a number" if allow_inf else "a finite number"
        if low is not None and high is not None:
            left, right = "(" if low_open else "[", ")" if high_open else "]"
            self.what = f"{finite} in {left}{low:g}, {high:g}{right}"
        elif low is not None:
            self.what = f"{finite} {'>' if low_open else '>='} {low:g}"
        elif high is not None:
            self.what = f"{finite} {'<' if high_open else '<='} {high:g}"
        else:
            self.what = finite
        if low is not None and high is not None:
            self.example = (low + high) / 2
        elif low is not None:
            self.example = low + 1.0
        elif high is not None:
            self.example = high - 1.0
        else:
            self.example = 0.0

    def problem(self, value: Any) -> bool:
        if not _is_real(value) or math.isnan(value) or (math.isinf(value) and not self.allow_inf):
            return True
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return True
        return self.high is not None and (value > self.high or (self.high_open and value == self.high))

    def refused(self) -> list[Any]:
        out = [*super().refused(), "0.5", math.nan, True, [0.5], complex(1, 1)]
        if not self.allow_inf:
            out.append(math.inf)
        if self.low is not None:
            out.append(self.low if self.low_open else self.low - 1.0)
        if self.high is not None:
            out.append(self.high if self.high_open else self.high + 1.0)
        return out


class Choice(Kind):
    """One of a few strings."""

    def __init__(self, *options: str, allow_none: bool = False) -> None:
        super().__init__(allow_none=allow_none)
        self.options = options
        self.what = "one of " + ", ".join(repr(o) for o in options)
        self.example = options[0]

    def problem(self, value: Any) -> bool:
        return not isinstance(value, str) or value not in self.options

    def refused(self) -> list[Any]:
        return [*super().refused(), "no such option", 1, True, list(self.options[:1])]


class Text(Kind):
    """A string (what it may say is checked where it is read: a formula, a column name)."""

    what = "a string"
    example = "x"

    def problem(self, value: Any) -> bool:
        return not isinstance(value, str)

    def refused(self) -> list[Any]:
        return [*super().refused(), 1, 2.5, ["x"], b"x", True]


class FormulaText(Text):
    """A formula (or a fixed-effects part): a string; what it says is read by the formula parser."""

    what = "a formula string such as 'y ~ x + (1 | g)'"
    error = FormulaError


class ReForm(Kind):
    """``re_form``: a formula string, None (all random effects), or lme4's "none" spellings False and NaN (R's NA)."""

    what = "a formula string (e.g. '~0' for none), None for all random effects, or False/NaN for none"
    example = "~0"

    def __init__(self) -> None:
        super().__init__(allow_none=True)

    def problem(self, value: Any) -> bool:
        if isinstance(value, str) or value is False or (_is_bool(value) and not value):
            return False
        return not (isinstance(value, (float, np.floating)) and math.isnan(value))

    def describe(self) -> str:
        return self.what

    def refused(self) -> list[Any]:
        return [True, 1, 2.5, ["~0"], b"~0"]


class TextList(Kind):
    """A string or a list/tuple of strings (names of columns, terms, groups, parameters)."""

    what = "a string or a list of strings"
    example = ["x"]

    def __init__(self, *, allow_none: bool = False, single: bool = True) -> None:
        super().__init__(allow_none=allow_none)
        self.single = single
        if not single:
            self.what = "a list of strings"

    def problem(self, value: Any) -> bool:
        if isinstance(value, str):
            return not self.single
        if not isinstance(value, (list, tuple)) or isinstance(value, Mapping):
            return True
        return not all(isinstance(v, str) for v in value)

    def refused(self) -> list[Any]:
        return [*super().refused(), 1, [1, 2], {"x": 1}, b"x"]


class Frame(Kind):
    """A pandas DataFrame."""

    what = "a pandas DataFrame"
    error = DataError

    def problem(self, value: Any) -> bool:
        pandas = sys.modules.get("pandas")
        return pandas is None or not isinstance(value, pandas.DataFrame)

    @property
    def example(self) -> Any:  # type: ignore[override]
        import pandas as pd

        return pd.DataFrame({"x": [1.0, 2.0]})

    def refused(self) -> list[Any]:
        return [*super().refused(), "data.csv", {"x": [1, 2]}, [[1, 2]], 3]


class FitData(Frame):
    """The data of a fit: a pandas or polars DataFrame, a pyarrow Table, a dask DataFrame, or a path
    or glob of Parquet files (fitted on Dask; remote URLs such as ``s3://...`` are passed on unchecked)."""

    what = "a pandas DataFrame (or a polars or dask DataFrame, a pyarrow Table, or a path or glob of Parquet files)"

    def check(self, value: Any, name: str) -> None:
        if not Frame.problem(self, value):  # a pandas DataFrame, the usual case: no test against os.PathLike's ABC
            return
        if isinstance(value, (str, os.PathLike)) and self.problem(value):
            raise self.error(
                f"{name}: no Parquet data found at {os.fspath(value)!r} (no file matches this path "
                "or glob); pass a DataFrame, or the path of existing Parquet files"
            )
        super().check(value, name)

    def problem(self, value: Any) -> bool:
        if not super().problem(value):  # a pandas DataFrame, the usual case: accepted as below
            return False
        if isinstance(value, (str, os.PathLike)):
            text = os.fspath(value)
            return not isinstance(text, str) or ("://" not in text and not glob.glob(text))
        package = type(value).__module__.split(".")[0]
        name = type(value).__name__
        if package == "polars" or package == "dask":
            return name != "DataFrame"
        if package == "pyarrow":
            return name != "Table"
        return super().problem(value)

    def refused(self) -> list[Any]:
        return [*Kind.refused(self), "no/such/file.parquet", {"x": [1, 2]}, [[1, 2]], 3]


class PerRow(Kind):
    """Numbers, one per row of the data: an array, a Series or a list (the count is checked with the data).

    A string (a column's name) is refused with a hint: pass the column itself.
    """

    what = "numbers, one per row of the data (an array or a Series such as data['w'])"
    error = DataError
    example = [1.0, 1.0]

    def problem(self, value: Any) -> bool:
        if isinstance(value, (str, bytes, Mapping)) or _is_bool(value) or np.isscalar(value):
            return True
        try:
            array = np.asarray(value)
        except Exception:  # noqa: BLE001 - anything numpy cannot take is not numbers
            return True
        if array.dtype == object:
            try:
                array = array.astype(float)
            except (TypeError, ValueError):
                return True
        return array.ndim != 1 or array.dtype.kind not in "iuf"

    def check(self, value: Any, name: str) -> None:
        if isinstance(value, str):
            raise DataError(
                f"{name} must be {self.what}, not the string {value!r}: to use a column, pass data[{value!r}]"
            )
        super().check(value, name)

    def refused(self) -> list[Any]:
        return [*super().refused(), "w", 1.0, {"a": 1}, [["a"]], ["a", "b"], np.ones((2, 2)), True]


class Seed(Kind):
    """A seed for ``numpy.random.default_rng``: a whole number >= 0 or a Generator (None: fresh entropy)."""

    what = "a whole number >= 0 or a numpy Generator"
    example = 1

    def __init__(self, *, allow_none: bool = True, generator: bool = True) -> None:
        super().__init__(allow_none=allow_none)
        self.generator = generator
        if not generator:
            self.what = "a whole number >= 0"

    def problem(self, value: Any) -> bool:
        if self.generator and isinstance(value, np.random.Generator):
            return False
        return not (isinstance(value, (int, np.integer)) and not _is_bool(value) and value >= 0)

    def refused(self) -> list[Any]:
        return [*super().refused(), "a", -1, 1.5, math.nan, True, [1]]


class Instance(Kind):
    """An instance of one of the given classes."""

    def __init__(self, *types: type, what: str | None = None, allow_none: bool = False) -> None:
        super().__init__(allow_none=allow_none)
        self.types = types
        self.what = what or ("a " + " or ".join(t.__name__ for t in types))

    def problem(self, value: Any) -> bool:
        return not isinstance(value, self.types)

    @property
    def example(self) -> Any:  # type: ignore[override]
        first = self.types[0]
        if issubclass(first, np.ndarray):
            return np.zeros((1, 1))
        if first in (list, tuple, dict):
            return first()
        return object.__new__(first)

    def refused(self) -> list[Any]:
        return [*super().refused(), "x", 1, [1]]


class Duck(Kind):
    """An object with the given attributes (for classes of a layer above, which this one cannot import)."""

    def __init__(self, *attributes: str, what: str, allow_none: bool = False) -> None:
        super().__init__(allow_none=allow_none)
        self.attributes, self.what = attributes, what

    def problem(self, value: Any) -> bool:
        return isinstance(value, (str, bytes, int, float, list, dict, tuple)) or not all(
            hasattr(type(value), a) or hasattr(value, a) for a in self.attributes
        )

    @property
    def example(self) -> Any:  # type: ignore[override]
        from types import SimpleNamespace

        return SimpleNamespace(**{a: None for a in self.attributes})

    def refused(self) -> list[Any]:
        return [*super().refused(), "x", 1, [1], {"a": 1}]


class Function(Kind):
    """A callable."""

    what = "a function"
    example = staticmethod(lambda *args, **kwargs: None)

    def problem(self, value: Any) -> bool:
        return not callable(value)

    def refused(self) -> list[Any]:
        return [*super().refused(), "sigma", 1, [len]]


class Dict(Kind):
    """A dict (any Mapping) whose keys are strings, and whose values are of ``values`` (a Kind) if given."""

    def __init__(self, values: Kind | None = None, *, what: str | None = None, allow_none: bool = False) -> None:
        super().__init__(allow_none=allow_none)
        self.values = values
        self.what = what or ("a dict of names -> " + values.what if values is not None else "a dict")
        self.example = {}

    def problem(self, value: Any) -> bool:
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            return True
        return self.values is not None and not all(self.values.accepts(v) for v in value.values())

    def refused(self) -> list[Any]:
        return [*super().refused(), "sum", [("x", "sum")], {1: "x"}, 3]


class Figsize(Kind):
    """A matplotlib figure size: (width, height) in inches, two positive finite numbers."""

    what = "(width, height) in inches, two positive numbers"
    example = (4.0, 3.0)

    def problem(self, value: Any) -> bool:
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            return True
        return not all(_is_real(v) and math.isfinite(v) and v > 0 for v in value)

    def refused(self) -> list[Any]:
        return [*super().refused(), 5, (5,), (-1, 2), (math.nan, 2), "5x3", (1, 2, 3)]


class Axes(Kind):
    """A matplotlib Axes to draw into."""

    what = "a matplotlib Axes"

    def problem(self, value: Any) -> bool:
        return not (hasattr(value, "get_figure") and hasattr(value, "plot") and hasattr(value, "transData"))

    def refused(self) -> list[Any]:
        return [*super().refused(), "ax", 1, [1]]


class Numbers(Kind):
    """A sequence (list, tuple, array) of finite numbers, optionally each in a range and of a given length."""

    def __init__(
        self,
        item: Real | None = None,
        *,
        length: int | None = None,
        min_length: int = 0,
        what: str | None = None,
        allow_none: bool = False,
        scalar: bool = False,
    ) -> None:
        super().__init__(allow_none=allow_none)
        self.item, self.length, self.min_length, self.scalar = item or Real(), length, min_length, scalar
        self.what = what or f"a list of numbers ({self.item.what} each)"
        self.example = [self.item.example] * max(1, length or min_length or 1)

    def problem(self, value: Any) -> bool:
        if self.scalar and _is_real(value):
            return not self.item.accepts(value)
        if isinstance(value, (str, bytes, Mapping)) or np.isscalar(value) or _is_bool(value):
            return True
        try:
            items = list(value)
        except TypeError:
            return True
        if self.length is not None and len(items) != self.length or len(items) < self.min_length:
            return True
        return not all(self.item.accepts(v) for v in items)

    def refused(self) -> list[Any]:
        return [*super().refused(), "1,2", [math.nan], ["a"], {"a": 1}]


class OneOf(Kind):
    """Any of several kinds (e.g. a number or a dict of numbers)."""

    def __init__(self, *kinds: Kind, what: str | None = None, allow_none: bool = False) -> None:
        super().__init__(allow_none=allow_none)
        self.kinds = kinds
        self.what = what or " or ".join(k.what for k in kinds)
        self.example = kinds[0].example

    def problem(self, value: Any) -> bool:
        return not any(k.accepts(value) for k in self.kinds)

    def refused(self) -> list[Any]:
        candidates = [v for k in self.kinds for v in k.refused() if v is not None]
        return [*super().refused(), *[v for v in candidates if self.problem(v)]]


class Anything(Kind):
    """No check here, with the reason (e.g. the value is passed on to a function that checks it).

    The argument tests accept it only where the reason is given.
    """

    what = "anything"

    def __init__(self, reason: str) -> None:
        super().__init__(allow_none=True)
        self.reason = reason

    def problem(self, value: Any) -> bool:
        return False

    def refused(self) -> list[Any]:
        return []


def _family_like(value: Any) -> bool:
    """A family's name or a family object (duck-typed: the families module is a layer above)."""
    return isinstance(value, str) or (hasattr(value, "links") and hasattr(value, "variance"))


class _FamilyKind(Kind):
    what = "a family's name (e.g. 'binomial') or an object from mm.families such as mm.families.Binomial()"
    example = "binomial"

    def problem(self, value: Any) -> bool:
        return not _family_like(value)

    def refused(self) -> list[Any]:
        return [*super().refused(), 1, ["binomial"], {"family": "binomial"}]


FAMILY = _FamilyKind()


FIT = Duck("fixef", "formula", what="a fitted model (from mm.lmer, mm.glmer, mm.lm or mm.glm)")


class MemorySize(Kind):
    """A number of bytes (> 0) or a size such as ``"8GB"``, ``"512 MiB"`` (see :func:`._memory.parse_size`)."""

    what = "a number of bytes or a size such as '8GB'"
    example = "1GB"

    def problem(self, value: Any) -> bool:
        from ._memory import parse_size

        try:
            parse_size(value)
        except (TypeError, ValueError):
            return True
        return False

    def refused(self) -> list[Any]:
        return [*super().refused(), "lots", -1, 0, math.nan, True, [1]]


# Parameters with these names mean the same thing in every public function
# (a function declares an exception with @argument_kinds).
COMMON: dict[str, Kind] = {
    "formula": FormulaText(),
    "data": Frame(),
    "newdata": Frame(allow_none=True),
    "REML": Flag(),
    "weights": PerRow(allow_none=True),
    "offset": PerRow(allow_none=True),
    "contrasts": Dict(Text(), what="a dict of variable -> contrast name, e.g. {'condition': 'sum'}", allow_none=True),
    "family": FAMILY,
    "seed": Seed(),
    "nsim": Integer(1),
    "level": Real(0.0, 1.0, low_open=True, high_open=True),
    "progress": Flag(),
    "use_re": Flag(),
    "allow_new_levels": Flag(),
    "re_form": ReForm(),
    "scaled": Flag(),
    "condvar": Flag(),
    "refit": Flag(),
    "reduce_terms": Flag(),
    "share_fixed": Flag(allow_none=True),
    "prior_only": Flag(),
    "center": Flag(),
    "draws": Integer(1),
    "chains": Integer(1),
    "warmup": Integer(0, allow_none=True),
    "target_accept": Real(0.0, 1.0, low_open=True, high_open=True),
    "max_tree_depth": Integer(1, 30),
    "figsize": Figsize(allow_none=True),
    "ax": Axes(allow_none=True),
    "ncols": Integer(1, allow_none=True),
    "npoints": Integer(2, 100_000),
    "ddf": Text(allow_none=True),  # the spellings ("KR", any case) are read by inference.ddf.normalize_ddf
    "max_memory": MemorySize(allow_none=True),
    "type": Text(),  # which one ("response", "deviance", 3, ...) is read where the choices are known
    "method": Text(),
    "adjust": Text(allow_none=True),
    "prob": Real(0.0, 1.0, low_open=True, high_open=True),
    "alpha": Real(0.0, 1.0, low_open=True, high_open=True),
    "name": Text(),
    "group": Text(allow_none=True),
    "groups": TextList(allow_none=True),
    "terms": TextList(allow_none=True),
    "parameters": TextList(allow_none=True),
    "label_levels": Flag(allow_none=True),
    "label_groups": Flag(allow_none=True),
    "sort": Flag(),
    "absolute": Flag(),
    "fit": FIT,
    "result": FIT,
    "theta": Numbers(min_length=1, what="theta: a list or array of finite numbers"),
    "beta": Numbers(min_length=1, what="a list or array of finite numbers"),
    "start": OneOf(
        Numbers(min_length=1),
        Dict(),
        allow_none=True,
        what="theta (a list or array of finite numbers) or a dict such as {'theta': [...]}",
    ),
    "na_action": Text(),  # the spellings ('omit', 'na.exclude', ...) are read by design.inputs.check_na_action
    "ndraws": Integer(1, allow_none=True),
    "nAGQ": Integer(0),  # above lme4's 100, glmer says so itself ("nAGQ = 101 is more than 100")
    "maxit": Integer(1),
    "tol": Real(0.0, low_open=True),
    "host": Text(),
    "port": Integer(0, 65535),
    "open_browser": Flag(),
    "priors": Dict(allow_none=True),
}


# --------------------------------------------------------------------------- declaring and checking
F = TypeVar("F", bound=Callable[..., Any])

_DECLARED: dict[CodeType, dict[str, Kind]] = {}


def _code_of(func: Any) -> CodeType | None:
    func = getattr(func, "__func__", func)  # classmethod, staticmethod, bound method
    return getattr(func, "__code__", None)


def argument_kinds(**kinds: Kind) -> Callable[[F], F]:
    """Declare the kinds of a function's parameters (those not in :data:`COMMON`, or differing from it).

    Only records them (``func.__parameter_kinds__``); the function itself
    checks its arguments with ``check_arguments(locals())`` first thing.
    """

    def record(func: F) -> F:
        code = _code_of(func)
        if code is None:
            raise TypeError(f"@argument_kinds needs a function, got {func!r}")
        _DECLARED[code] = dict(kinds)
        getattr(func, "__func__", func).__parameter_kinds__ = dict(kinds)
        return func

    return record


def kinds_of(func: Any) -> dict[str, Kind]:
    """The kind of each parameter of ``func`` that has one (declared, else common)."""
    import inspect

    declared = _DECLARED.get(_code_of(func), {})  # type: ignore[arg-type]
    names = [p.name for p in inspect.signature(getattr(func, "__func__", func)).parameters.values()]
    return {name: declared.get(name, COMMON.get(name)) for name in names if name in declared or name in COMMON}


_SKIPPED = ("self", "cls", "__class__")
_MERGED: dict[CodeType, dict[str, Kind]] = {}


def _kinds_for(code: CodeType) -> dict[str, Kind]:
    """The kinds a function's parameters are checked against: :data:`COMMON`'s, with its declared ones in
    their place (merged once per function that declares any, on its first check: one look-up per argument)."""
    merged = _MERGED.get(code)
    if merged is None:
        declared = _DECLARED.get(code)
        if declared is None:
            return COMMON
        merged = _MERGED[code] = {**COMMON, **declared}
    return merged


def check_arguments(arguments: Mapping[str, Any]) -> None:
    """Check a function's arguments (its ``locals()`` before anything else runs) against their kinds.

    The kinds are those declared for the calling function with
    :func:`argument_kinds`, else :data:`COMMON`'s for the name.  A ``*args``
    parameter is checked element by element when its kind is declared.
    Raises a MixedModelsError that starts with the parameter's name.
    """
    caller = sys._getframe(1).f_code
    kinds = _kinds_for(caller)
    varargs = caller.co_varnames[caller.co_argcount + caller.co_kwonlyargcount] if caller.co_flags & 0x04 else None
    for name, value in arguments.items():
        if name in _SKIPPED:
            continue
        kind = kinds.get(name)
        if kind is None:
            continue
        if value is None and kind.allow_none:  # what every kind's check does with None then (tested): nothing
            continue
        if name == varargs:
            for item in value:
                kind.check(item, name)
        else:
            kind.check(value, name)
