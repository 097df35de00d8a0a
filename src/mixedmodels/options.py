"""Package-wide settings, as R's ``options()``: today the contrasts every fitter uses by default.

R scripts often start with ``options(contrasts = c("contr.sum", "contr.poly"))`` so that every
factor in every model is sum-coded; the same in Python::

    >>> import mixedmodels as mm
    >>> mm.options(contrasts=("sum", "poly"))           # from now on; returns the old settings
    {'contrasts': ('treatment', 'poly')}
    >>> with mm.option_context(contrasts=("contr.helmert", "contr.poly")):
    ...     m = mm.lm("Reaction ~ DayF", data)            # Helmert coding inside the block only

``contrasts`` is a pair ``(unordered, ordered)``: the coding of unordered factors (strings,
booleans, unordered categoricals) and of ordered categoricals, by R's names (``"contr.sum"``)
or short ones (``"sum"``): ``treatment`` (R's default for unordered factors), ``sum``,
``helmert``, ``poly`` (R's default for ordered factors) and ``SAS``.  As in R, a model's own
``contrasts=`` argument and ``C(f, contr.sum)`` in a formula override the setting for their
factor, and a fitted model keeps the coding it was fitted with (new data for ``predict`` are
coded the same way whatever the setting is then).  The setting is read when a model matrix is
built -- by ``lm``, ``glm``, ``lmer``, ``glmer``, ``mm.bayes``, the pooling comparisons and the
power simulations alike.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ._validate import check_arguments
from .errors import ModelSpecError

__all__ = ["options", "option_context", "get_option", "CONTRAST_NAMES"]

# canonical contrast names (design/contrasts.py maps each to its coding)
CONTRAST_NAMES = ("treatment", "sum", "helmert", "poly", "sas")
_DEFAULTS: dict[str, Any] = {"contrasts": ("treatment", "poly")}
_current: dict[str, Any] = dict(_DEFAULTS)


def _contrast(spec: Any, which: str) -> str:
    key = spec.lower().removeprefix("contr.") if isinstance(spec, str) else None
    if key not in CONTRAST_NAMES:
        raise ModelSpecError(
            f"unknown contrasts {spec!r} for {which} factors in options(contrasts=...); use one of "
            "'contr.treatment', 'contr.sum', 'contr.helmert', 'contr.poly', 'contr.SAS' (or without 'contr.')"
        )
    return key


def _check_contrasts(value: Any) -> tuple[str, str]:
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) != 2:
        raise ModelSpecError(
            f"contrasts must be a pair (unordered, ordered) as in R, e.g. ('contr.sum', 'contr.poly'); got {value!r}"
        )
    return _contrast(value[0], "unordered"), _contrast(value[1], "ordered")


_CHECKS = {"contrasts": _check_contrasts}


def _validated(settings: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(settings) - set(_CHECKS))
    if unknown:
        raise ModelSpecError(f"unknown option(s) {unknown}; mixedmodels has {sorted(_CHECKS)}")
    return {name: _CHECKS[name](value) for name, value in settings.items()}


def options(**settings: Any) -> dict[str, Any]:
    """Read or change package-wide settings, as R's ``options()``.

    Parameters
    ----------
    contrasts : pair of str, optional
        ``(unordered, ordered)`` factor codings, e.g. ``("contr.sum", "contr.poly")``.
        ``None`` restores the default ``("treatment", "poly")``.

    Returns
    -------
    dict
        Without arguments, every current setting; with arguments, the previous values of the
        settings changed (so ``mm.options(**old)`` restores them).
    """
    if not settings:
        return dict(_current)
    new = _validated({k: _DEFAULTS.get(k) if v is None else v for k, v in settings.items()})
    old = {name: _current[name] for name in new}
    _current.update(new)
    return old


def get_option(name: str) -> Any:
    """The current value of one setting (``"contrasts"``)."""
    check_arguments(locals())
    if name not in _current:
        raise ModelSpecError(f"unknown option {name!r}; mixedmodels has {sorted(_current)}")
    return _current[name]


def current_contrasts() -> tuple[str, str]:
    """The ``contrasts`` setting, for the design code: :func:`get_option` without checking its argument
    (a fit reads it twice; each check costs more than the read)."""
    return _current["contrasts"]


@contextmanager
def option_context(**settings: Any) -> Iterator[dict[str, Any]]:
    """Change settings inside a ``with`` block only; they are restored on leaving it, errors included.

    >>> with mm.option_context(contrasts=("sum", "poly")):
    ...     m = mm.lmer("Reaction ~ Phase + (1 | Subject)", data)   # Phase1: sum coding
    """
    old = options(**settings)
    try:
        yield dict(_current)
    finally:
        _current.update(old)
