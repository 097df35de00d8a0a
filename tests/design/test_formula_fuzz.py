"""Property test: R-style formula text, however garbled, fits or raises a MixedModelsError.

The pieces are the new spellings (names with dots, backticks, Q(), TRUE/NULL, keyword
arguments, splines, factor(), as.numeric(), '.') glued at random with operators and brackets.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

import mixedmodels as mm

DATA = pd.DataFrame(
    {
        "y": np.arange(12.0) % 5 + 1,
        "x.a": np.arange(12.0),
        "my x": np.arange(12.0) ** 0.5,
        "g": list("abc") * 4,
        "f": pd.Categorical(list("uv") * 6),
    }
)
PIECES = [
    "y",
    "x.a",
    "`my x`",
    "Q('my x')",
    "g",
    "f",
    "~",
    " + ",
    " - ",
    ":",
    "*",
    "(",
    ")",
    "1",
    "0",
    ".",
    "TRUE",
    "NULL",
    "poly(",
    "ns(",
    "bs(",
    "factor(",
    "as.numeric(",
    "scale(",
    ", ",
    "df = ",
    "raw = ",
    "center=",
    "Boundary.knots = c(",
    "|",
    "`",
    "'",
    '"',
    "^2",
    "2",
    "offset(",
    "I(",
    "**",
    "log(",
    "Q(",
    "x.a.b",
    ".x",
    "np.log(",
    "knots = ",
]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=12), st.booleans())
def test_garbled_r_formulas_fit_or_raise_mixedmodels_errors(pieces, mixed):
    formula = "y ~ " + "".join(pieces)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            (mm.lmer if mixed else mm.lm)(formula, DATA)
        except mm.MixedModelsError:
            pass
