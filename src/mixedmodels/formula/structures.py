"""Covariance-structure wrappers around random-effects terms: ``diag(1 + x | g)`` and friends.

glmmTMB and lme4 2.0 write a term's covariance structure as a function
around the bar term:

* ``us(1 + x | g)`` -- unstructured, the same as ``(1 + x | g)``;
* ``diag(1 + x | g)`` -- independent effects (``||`` keeps lme4 1.1's meaning);
* ``cs(0 + f | g)`` -- a variance per column and one common correlation;
* ``ar1(0 + f | g)`` -- one variance and an AR(1) correlation over the
  levels of an ordered factor.

:func:`structure_call` recognises such a call and returns the name and the
bar term inside it; :mod:`.bars` expands that term as usual and records the
name on each :class:`~.bars.RandomTerm`.  Whether the columns suit the
structure (``cs`` needs two or more, ``ar1`` an ordered factor) is checked
when the design is built, where the data are known.
"""

from __future__ import annotations

import re

__all__ = ["STRUCTURE_NAMES", "structure_call"]

STRUCTURE_NAMES = ("us", "diag", "cs", "ar1")
_CALL = re.compile(r"^(?P<name>[A-Za-z_][\w.]*)\s*\((?P<inner>.*)\)$", re.DOTALL)


def structure_call(term: str, has_bar) -> tuple[str, str] | None:
    """``("diag", "(1 + x | g)")`` for ``"diag(1 + x | g)"``; None for any other term.

    ``has_bar(text)`` says whether ``text`` has a top-level ``|`` (the
    caller's scanner, which knows about quotes and brackets); a call of one
    of these names without a bar inside (``diag(x)`` in the fixed part) is
    not a structure.
    """
    match = _CALL.match(term.strip())
    if match is None or match["name"] not in STRUCTURE_NAMES:
        return None
    inner = match["inner"].strip()
    if not has_bar(inner):
        return None
    return match["name"], f"({inner})"
