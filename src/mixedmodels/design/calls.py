"""Simple numeric calls of columns (``np.sin(2 * np.pi * Time)``, ``log(n)``), evaluated by NumPy directly.

formulaic evaluates a term such as ``np.sin(2 * np.pi * Time)`` or
``offset(log(n))`` as Python code on the data columns (integer columns as
float64, :func:`~.values.formula_data`), with NumPy's functions
(:data:`~.transforms.CONTEXT`: ``log`` is ``np.log``, ``I(x)`` is ``x``,
``offset(x)`` is ``x`` as float64).  For the product path (:mod:`.products`)
this module recognizes the stateless part of that language and evaluates it
on float64 arrays in the same order of operations, so the values are
formulaic's to the bit:

* column names (ASCII identifiers, not the names of formula functions) and
  numbers;
* ``+``, ``-``, ``*``, ``/``, ``**`` and unary ``-``/``+``;
* ``np.sin``, ``np.cos``, ``np.tan``, ``np.log``, ``np.log2``, ``np.log10``,
  ``np.log1p``, ``np.exp``, ``np.expm1``, ``np.sqrt``, ``np.abs`` with one
  argument, the same functions of :data:`~.transforms.CONTEXT` by their bare
  names (``log``, ``exp``, ``sqrt``, ...), ``np.pi`` and ``np.e``;
* ``I(...)`` around all of it.

Anything else (keywords, other functions, stateful transforms such as
``scale``, comparisons, text) is not recognized (None), and formulaic builds
the term.
"""

from __future__ import annotations

import ast
import functools
import keyword
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from .transforms import RESERVED

__all__ = ["NumericCall", "numeric_call", "FUNCTION_ROOTS"]

_FUNCTIONS: dict[str, Callable] = {
    name: getattr(np, name)
    for name in ("sin", "cos", "tan", "log", "log2", "log10", "log1p", "exp", "expm1", "sqrt", "abs")
}
_BARE = ("log", "log2", "log10", "log1p", "exp", "expm1", "sqrt", "abs")  # CONTEXT's NumPy functions
_CONSTANTS = {"pi": np.pi, "e": np.e}
_OPERATORS: dict[type, Callable] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable] = {ast.USub: operator.neg, ast.UAdd: operator.pos}

# Names a recognized call may read as functions or namespaces: a data column so named shadows them.
FUNCTION_ROOTS = frozenset({"np", "I", "offset", *_BARE})


@dataclass(frozen=True)
class NumericCall:
    """A recognized numeric expression of columns.

    Attributes
    ----------
    expr : str
        formulaic's code for it (its factor's ``expr``).
    variables : tuple of str
        The columns it reads, in order of first use.
    offset : bool
        Whether it is ``offset(...)``.
    """

    expr: str
    variables: tuple[str, ...]
    offset: bool
    _tree: ast.expr

    def evaluate(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """Its float64 values, given each variable as a float64 array (non-finite values are kept)."""
        with np.errstate(all="ignore"):
            values = _evaluate(self._tree, columns)
        return np.asarray(values, dtype=np.float64)


@functools.lru_cache(maxsize=512)
def numeric_call(expr: str) -> NumericCall | None:
    """``expr`` (a formula factor's Python code) as a :class:`NumericCall`, or None when not recognized."""
    try:
        tree = ast.parse(expr, mode="eval").body
    except SyntaxError:
        return None
    offset = _is_call_of(tree, "offset")
    if offset or _is_call_of(tree, "I"):
        tree = tree.args[0]  # type: ignore[attr-defined]
    names: dict[str, None] = {}
    if not _recognized(tree, names) or not names:
        return None
    return NumericCall(expr, tuple(names), offset, tree)


def _is_call_of(node: ast.expr, name: str) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == name
        and len(node.args) == 1
        and not node.keywords
    )


def _function(node: ast.expr) -> Callable | None:
    """The NumPy function a call's ``func`` names, or None."""
    if isinstance(node, ast.Name) and node.id in _BARE:
        return _FUNCTIONS[node.id]
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "np":
        return _FUNCTIONS.get(node.attr)
    return None


def _recognized(node: ast.expr, names: dict[str, None]) -> bool:
    """Whether ``node`` is in the recognized language; collects the column names into ``names``."""
    if isinstance(node, ast.Name):
        if not _column_name(node.id):
            return False
        names[node.id] = None
        return True
    if isinstance(node, ast.Constant):
        return type(node.value) in (int, float)
    if isinstance(node, ast.Attribute):
        return isinstance(node.value, ast.Name) and node.value.id == "np" and node.attr in _CONSTANTS
    if isinstance(node, ast.BinOp):
        return type(node.op) in _OPERATORS and _recognized(node.left, names) and _recognized(node.right, names)
    if isinstance(node, ast.UnaryOp):
        return type(node.op) in _UNARY and _recognized(node.operand, names)
    if isinstance(node, ast.Call):
        return (
            _function(node.func) is not None
            and len(node.args) == 1
            and not node.keywords
            and _recognized(node.args[0], names)
        )
    return False


def _column_name(name: str) -> bool:
    return name.isidentifier() and name.isascii() and not keyword.iskeyword(name) and name not in RESERVED


def _evaluate(node: ast.expr, columns: Mapping[str, np.ndarray]):
    """The value of a recognized ``node``, in Python's order of operations (as formulaic's eval)."""
    if isinstance(node, ast.Name):
        return columns[node.id]
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Attribute):
        return _CONSTANTS[node.attr]
    if isinstance(node, ast.BinOp):
        return _OPERATORS[type(node.op)](_evaluate(node.left, columns), _evaluate(node.right, columns))
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_evaluate(node.operand, columns))
    assert isinstance(node, ast.Call)
    function = _function(node.func)
    assert function is not None
    return function(_evaluate(node.args[0], columns))
