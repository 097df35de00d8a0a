"""Model-formula handling: lme4's random-effects ("bar") syntax and R's spellings on top of formulaic.

:func:`parse_formula` splits ``"y ~ x + (1 + x | g)"`` into the response, the
fixed-effects text (for formulaic) and expanded :class:`RandomTerm` objects
(:mod:`.bars`).  :mod:`.rsyntax` turns R's spellings (``Sepal.Length``,
``as.numeric(f)``, ``raw = TRUE``, ``Q("my days")``, ``.``, ``re.form = ~ 1 | g``)
into the text formulaic and the bar parser read.
"""

from __future__ import annotations

from .bars import ParsedFormula, RandomTerm, parse_formula, random_terms_text
from .rsyntax import expand_dot, has_dot, is_plain_name, quote_name, to_formulaic, with_bar_parentheses

__all__ = [
    "ParsedFormula",
    "RandomTerm",
    "parse_formula",
    "random_terms_text",
    "to_formulaic",
    "expand_dot",
    "has_dot",
    "quote_name",
    "is_plain_name",
    "with_bar_parentheses",
]
