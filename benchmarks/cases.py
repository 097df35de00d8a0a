"""The benchmark cases: data, the lme4 formula, and how each other tool states the same model.

Every tool fits the same model to the same rows.  Where a tool's formula
language cannot say something (``cbind()`` responses, ``scale()``, ``a/b``),
the data get an equivalent precomputed column and that tool a rewritten
formula; where a tool cannot express the model at all, its entry is a string
giving the reason, reported as "n/a".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pandas as pd

from synthetic import crossed, nested

__all__ = ["Case", "CASES", "load", "selected"]

_SM_CROSSED = (
    "crossed factors only as variance components inside one all-data group "
    "(a dense n x q design): not attempted at this size"
)
_SM_GLMM = "statsmodels has no maximum-likelihood (Laplace) GLMM, only variational Bayes"


@dataclass(frozen=True)
class Case:
    """One model on one data set.

    ``formula`` is the lme4 formula (used by lme4 and mixedmodels); ``glmm``
    and ``mixedlm`` override it for those packages; ``statsmodels`` is either
    keyword arguments for ``smf.mixedlm`` (with ``groups`` and ``vc`` naming
    columns) or the reason it is n/a.  ``weights`` names a column of prior
    weights for tools given a proportion response instead of ``cbind()``.
    """

    name: str
    data: str
    formula: str
    family: str = "gaussian"
    large: bool = False
    glmm: str | None = None
    mixedlm: str | None = None
    statsmodels: dict | str = _SM_CROSSED
    weights: str | None = None
    note: str = ""

    @property
    def kind(self) -> str:
        return "lmer" if self.family == "gaussian" else "glmer"

    def formula_for(self, tool: str) -> str:
        return getattr(self, tool, None) or self.formula


_CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
_VERBAGG = "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)"
_GROUSE = "TICKS ~ YEAR + sHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)"

CASES: dict[str, Case] = {
    c.name: c
    for c in [
        Case(
            "sleepstudy",
            "sleepstudy",
            "Reaction ~ Days + (Days | Subject)",
            statsmodels={"formula": "Reaction ~ Days", "groups": "Subject", "re_formula": "~Days"},
        ),
        Case(
            "penicillin",
            "Penicillin",
            "diameter ~ 1 + (1 | plate) + (1 | sample)",
            statsmodels={"formula": "diameter ~ 1", "groups": "_one", "vc": ["plate", "sample"]},
        ),
        Case(
            "pastes",
            "Pastes",
            "strength ~ 1 + (1 | batch/cask)",
            statsmodels={"formula": "strength ~ 1", "groups": "batch", "vc": ["cask"]},
        ),
        Case("insteval", "InstEval", "y ~ service + (1 | s) + (1 | d) + (1 | dept:service)"),
        Case(
            "cbpp",
            "cbpp",
            _CBPP,
            family="binomial",
            glmm="prop ~ period + (1 | herd)",
            mixedlm="prop ~ period + (1 | herd)",
            weights="size",
            statsmodels=_SM_GLMM,
            note="glmm and mixedlm: proportion response with weights = size (same likelihood as cbind)",
        ),
        Case(
            "grouseticks",
            "grouseticks",
            _GROUSE,
            family="poisson",
            statsmodels=_SM_GLMM,
            note="sHEIGHT = scale(HEIGHT), precomputed",
        ),
        Case(
            "verbagg",
            "VerbAgg",
            _VERBAGG,
            family="binomial",
            glmm=_VERBAGG.replace("r2 ~", "r2n ~"),
            mixedlm=_VERBAGG.replace("r2 ~", "r2n ~"),
            statsmodels=_SM_GLMM,
            note="glmm and mixedlm: r2n = (r2 == 'Y') as 0/1",
        ),
        Case(
            "crossed_100k",
            "crossed_100k",
            "y ~ x + (1 + x | subject) + (1 | item)",
            note="synthetic: 100,000 rows, 1,000 subjects x 200 items",
        ),
        Case(
            "nested_50k",
            "nested_50k",
            "y ~ x + (1 | outer/inner)",
            glmm="y ~ x + (1 | outer) + (1 | outer:inner)",
            mixedlm="y ~ x + (1 | outer) + (1 | outer:inner)",
            statsmodels={"formula": "y ~ x", "groups": "outer", "vc": ["inner"]},
            note="synthetic: 50,000 rows, 10,000 inner groups in 100 outer",
        ),
        Case(
            "crossed_1m",
            "crossed_1m",
            "y ~ x + (1 + x | subject) + (1 | item)",
            large=True,
            note="synthetic: 1,000,000 rows, 10,000 subjects x 2,000 items",
        ),
        Case(
            "nested_500k",
            "nested_500k",
            "y ~ x + (1 | outer/inner)",
            large=True,
            glmm="y ~ x + (1 | outer) + (1 | outer:inner)",
            mixedlm="y ~ x + (1 | outer) + (1 | outer:inner)",
            statsmodels={"formula": "y ~ x", "groups": "outer", "vc": ["inner"]},
            note="synthetic: 500,000 rows, 100,000 inner groups in 1,000 outer",
        ),
    ]
}

_SYNTHETIC: dict[str, Callable[[], pd.DataFrame]] = {
    "crossed_100k": lambda: crossed(100_000, 1_000, 200).data,
    "nested_50k": lambda: nested(50_000, 10_000, 100).data,
    "crossed_1m": lambda: crossed().data,
    "nested_500k": lambda: nested().data,
}


def load(case: Case) -> pd.DataFrame:
    """The case's data, with the extra columns the rewritten formulas use."""
    if case.data in _SYNTHETIC:
        return _SYNTHETIC[case.data]()
    import mixedmodels as mm

    df = mm.datasets.load(case.data)
    if case.data == "cbpp":
        df["prop"] = df["incidence"] / df["size"]
        df["size"] = df["size"].astype(float)
    elif case.data == "grouseticks":
        height = df["HEIGHT"].astype(float)
        df["sHEIGHT"] = (height - height.mean()) / height.std()
    elif case.data == "VerbAgg":
        df["r2n"] = (df["r2"] == "Y").astype(float)
    elif case.data == "Penicillin":
        df["_one"] = 1
    return df


def selected(names: str | None, large: bool) -> list[Case]:
    """Cases named in a comma-separated list (default: all, the large ones only with ``large``)."""
    if names:
        unknown = [n for n in names.split(",") if n not in CASES]
        if unknown:
            raise SystemExit(f"unknown case(s) {unknown}; choose from {', '.join(CASES)}")
        return [CASES[n] for n in names.split(",")]
    return [c for c in CASES.values() if large or not c.large]


def factor_levels(df: pd.DataFrame) -> dict[str, list[str]]:
    """Level lists of the categorical columns (R gets the same factor levels)."""
    return {
        col: [str(v) for v in df[col].cat.categories]
        for col in df.columns
        if isinstance(df[col].dtype, pd.CategoricalDtype)
    }


def ordered_columns(df: pd.DataFrame) -> list[str]:
    return [col for col in df.columns if isinstance(df[col].dtype, pd.CategoricalDtype) and df[col].cat.ordered]
