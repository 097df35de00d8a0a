"""Model-formula handling: lme4's random-effects ("bar") syntax on top of formulaic.

:func:`parse_formula` splits ``"y ~ x + (1 + x | g)"`` into the response, the
fixed-effects text (for formulaic) and expanded :class:`RandomTerm` objects.
"""

from __future__ import annotations

from .bars import ParsedFormula, RandomTerm, parse_formula, random_terms_text

__all__ = ["ParsedFormula", "RandomTerm", "parse_formula", "random_terms_text"]
