"""F tests per fixed-effect term: lmerTest's ``anova(m)`` (type III by default).

For each term a hypothesis matrix ``L`` (rows: contrasts of beta) is built as
lmerTest builds it, and ``L beta = 0`` is tested with

    Satterthwaite:  F = (L b)' (L C L')^-1 (L b) / q,  computed through the
                    eigen-decomposition ``L C L' = P D P'`` as q one-df
                    t-tests ``t_m = (P'L b)_m / sqrt(d_m)`` with df ``nu_m``;
                    the denominator df is ``2E / (E - q)``, ``E = sum nu_m / (nu_m - 2)``
                    (all ``nu_m > 2``; else 2; equal nu_m give their mean).
    Kenward-Roger:  F_u from the adjusted covariance, scaled by ``lambda`` and
                    with df ``m`` (Kenward & Roger 1997, as pbkrtest's KRmodcomp).

``Sum Sq = F_u q sigma^2`` and ``Mean Sq = F_u sigma^2`` (unscaled F).

Hypotheses
----------
Type I (sequential): the rows of the term's columns in ``U`` of the
Doolittle (LDU) decomposition of ``X'X`` (lmerTest's type I).
Type III (lmerTest's ``get_contrasts_type3``, SAS-style): with the
treatment-coded design ``X`` and the over-parameterised design ``X_rd``
(indicators for every level of every factor in each term), ``K = (X^+ X_rd)'``;
for terms in decreasing order of interaction, the term's columns of ``K`` are
replaced by their residuals on the columns of the terms that contain it
(containment needs the same numeric variables); the rows of ``K`` named like
the columns of ``X`` give the hypothesis, mapped back to the model's own
contrasts by ``X^+ X_model``.  Models with one term use type I, as lmerTest.

The rows enter only through ``X'X`` (type I) and the R of a QR decomposition
of ``[X_trt, X, 1, X_rd]`` (type III: ``X_trt^+ B`` is the least-squares
solution on R, and ``X_trt``'s aliased columns are found by lme4's rule on
its block of R), read through :class:`FrameColumns`; a fit whose rows are
elsewhere (on Dask) offers the same methods and forms R where the rows are.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..design.checks import independent_columns
from ..design.fixed import DesignMatrix, build_design
from ..errors import MixedModelsError
from ..fitted import Fit, MixedFit, is_generalized, is_mixed
from ..tables import r_table
from .ddf import contrast_matrix, kenward_roger, normalize_ddf, satterthwaite


__all__ = ["anova_table", "f_test", "fixed_terms", "term_hypotheses", "FixedTerm", "FrameColumns"]

_COLUMNS = ["Sum Sq", "Mean Sq", "NumDF", "DenDF", "F value", "Pr(>F)"]
_MATRIX_CALLS = re.compile(r"^(scale|poly|ns|bs|cbind|center)\(")


@dataclass(frozen=True)
class FixedTerm:
    """One term of the fixed-effects formula.

    Attributes
    ----------
    label : str
        R's term label (``Days``, ``Phase:Days``, ``I(Days**2)``).
    columns : tuple of int
        Columns of X that belong to the term (aliased columns excluded).
    factors : tuple of str
        The term's variables as written (``Phase``, ``scale(Days)``).
    numeric : tuple of str
        Factors R counts as numeric vectors (not factors, not matrices such as scale()).
    """

    label: str
    columns: tuple[int, ...]
    factors: tuple[str, ...]
    numeric: tuple[str, ...]

    @property
    def order(self) -> int:
        return len(self.factors)


def fixed_terms(design: DesignMatrix) -> tuple[list[FixedTerm], bool]:
    """The terms of a fixed-effects design (intercept and offsets excluded) and whether it has an intercept.

    Reads the formulaic spec the design was built from.
    """
    spec = design._spec
    if spec is None:
        raise MixedModelsError("this design matrix was not built from a formula; its terms are unknown")
    spellings = spec.materializer_params.get("spellings", {}) if spec.materializer_params else {}
    categorical = {f.expr for f in spec.factor_contrasts}
    position = {full: j for j, full in enumerate(design._columns)}
    terms, has_intercept, pos = [], False, 0
    for entry in spec.structure:
        full = range(pos, pos + len(entry.columns))
        pos += len(entry.columns)
        exprs = [f.expr for f in entry.term.factors]
        if str(entry.term) == "1":
            has_intercept = True
            continue
        if len(exprs) == 1 and exprs[0].startswith("offset("):
            continue
        written = tuple(spellings.get(e, e) for e in exprs)
        numeric = tuple(w for e, w in zip(exprs, written) if e not in categorical and not _MATRIX_CALLS.match(w))
        cols = tuple(position[i] for i in full if i in position)
        terms.append(FixedTerm(":".join(written), cols, written, numeric))
    return terms, has_intercept


# --- hypotheses -----------------------------------------------------------------------------


def _zapsmall(x: np.ndarray, digits: int = 7) -> np.ndarray:
    """R's zapsmall: round to ``digits`` significant digits of the largest entry."""
    mx = np.max(np.abs(x)) if x.size else 0.0
    if not mx > 0:
        return x
    return np.round(x, max(0, digits - int(np.ceil(np.log10(mx)))))


def _doolittle_upper(xtx: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """``t(L)`` of the unpivoted LU (Doolittle) factorisation ``X'X = L U``; tiny entries zeroed."""
    p = xtx.shape[0]
    lower, upper = np.eye(p), np.zeros((p, p))
    for i in range(p):
        upper[i, :] = xtx[i, :] - lower[i, :i] @ upper[:i, :]
        for j in range(i + 1, p):
            value = xtx[j, i] - lower[j, :i] @ upper[:i, i]
            lower[j, i] = 0.0 if abs(upper[i, i]) < eps else value / upper[i, i]
    lower[np.abs(lower) < eps] = 0.0
    return lower.T


def _type1(xtx: np.ndarray, terms: list[FixedTerm], has_intercept: bool) -> dict[str, np.ndarray]:
    p = xtx.shape[0]
    if p == 1 and has_intercept:
        return {t.label: np.zeros((0, 1)) for t in terms}
    full = np.ones((1, 1)) if p == 1 else _doolittle_upper(xtx)
    return {t.label: full[list(t.columns)] for t in terms}


def _contains(inner: FixedTerm, outer: FixedTerm) -> bool:
    """lmerTest's containment: inner's variables are a proper subset of outer's, same numerics."""
    a, b = set(inner.factors), set(outer.factors)
    return a <= b and bool(b - a) and set(inner.numeric) == set(outer.numeric)


class FrameColumns:
    """The model frame's columns as the hypotheses read them: designs built on the frame, and their products.

    A fit whose rows are not in memory (on Dask) offers the same three
    methods through ``model.hypothesis_columns()``, computing the products
    where the rows are.
    """

    def __init__(self, result: Fit):
        self.inputs = result.model.inputs

    def design(self, rhs: str, contrasts: dict[str, str] | None = None) -> DesignMatrix:
        """The design of ``rhs`` (all its columns, none dropped) on the model frame."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return build_design(rhs, self.inputs.frame, contrasts)

    def r_factor(self, designs: list[DesignMatrix]) -> np.ndarray:
        """The R of a QR decomposition of the designs' columns side by side (every row of the frame)."""
        return np.linalg.qr(np.column_stack([d.matrix for d in designs]), mode="r")

    def fixed_crossproduct(self) -> np.ndarray:
        """``X'X`` of the model's fixed-effects columns."""
        x = self.inputs.fixed.matrix
        return x.T @ x


def _hypothesis_columns(result: Fit) -> Any:
    own = getattr(result.model, "hypothesis_columns", None)  # a fit on Dask: products formed on the workers
    return own() if callable(own) else FrameColumns(result)


def _solve(r: np.ndarray, a: list[int], b: list[int]) -> np.ndarray:
    """``A^+ B`` for columns ``a`` (full column rank) and ``b`` of the matrix whose QR has this ``R``."""
    return np.linalg.lstsq(r[:, a], r[:, b], rcond=None)[0]


def _type3(result: Fit, design: DesignMatrix, columns: Any, has_intercept: bool) -> dict[str, np.ndarray]:
    """lmerTest's type III hypotheses, from the R of a QR of ``[X_trt, X, 1, X_rd]`` (one pass on Dask).

    ``X_trt`` is the design with treatment contrasts (its aliased columns
    dropped by lme4's rule on its block of R), ``X_rd`` the over-parameterised
    design of every term of ``X_trt``; ``X_trt^+ B`` is the least-squares
    solution on the R factor, as on the rows.
    """
    contrasts = {f.expr: "treatment" for f in design._spec.factor_contrasts}
    trt_all = columns.design(result.model.inputs.formula.fixed, contrasts)
    all_terms, _ = fixed_terms(trt_all)
    blocks = [trt_all, design, columns.design("1")] + [columns.design("0 + " + t.label) for t in all_terms]
    r = columns.r_factor(blocks)
    starts = np.cumsum([0] + [len(b.column_names) for b in blocks])
    ntrt = len(trt_all.column_names)
    keep = independent_columns(r[:, :ntrt])  # lme4's rule on X_trt's own R (its leading block)
    x_trt = trt_all.keep_columns(keep)
    trt_terms, _ = fixed_terms(x_trt)
    rd_cols, rd_names = ([int(starts[2])], ["(Intercept)"]) if has_intercept else ([], [])
    block_of = {t.label: i for i, t in enumerate(all_terms, start=3)}
    for term in trt_terms:
        i = block_of[term.label]
        rd_cols.extend(range(starts[i], starts[i + 1]))
        rd_names.extend(blocks[i].column_names)
    _warn_missing_cells(r, rd_cols, rd_names)
    k = _zapsmall(_solve(r, keep, rd_cols).T)  # rows: over-parameterised effects, columns: X_trt
    for term in sorted(trt_terms, key=lambda t: -t.order):
        containing = [c for other in trt_terms if _contains(term, other) for c in other.columns]
        if containing and term.columns:
            basis, target = k[:, containing], k[:, list(term.columns)]
            coef = np.linalg.lstsq(basis, target, rcond=None)[0]
            k[:, list(term.columns)] = _zapsmall(target - basis @ coef)
    index = {name: i for i, name in enumerate(rd_names)}
    missing = [n for n in x_trt.column_names if n not in index]
    if missing:
        raise MixedModelsError(
            f"cannot build type III hypotheses: columns {missing} keep contrasts fixed inside the formula "
            "(C(...)); pass them as lmer(..., contrasts={'variable': 'sum'}) instead, or use type=1"
        )
    k = k[[index[n] for n in x_trt.column_names]]
    to_model = _zapsmall(_solve(r, keep, list(range(starts[1], starts[2]))))
    out = {}
    for term in trt_terms:
        hyp = k[:, list(term.columns)].T
        hyp = hyp[np.abs(hyp).sum(axis=1) > 1e-8]
        out[term.label] = hyp @ to_model
    return out


def _warn_missing_cells(r: np.ndarray, cols: list[int], names: list[str]) -> None:
    """lmerTest's warning for over-parameterised columns without a row (an all-zero column has a zero column of R)."""
    empty = [n for n, j in zip(names, cols) if not np.any(r[:, j])]
    if empty:
        warnings.warn(f"Missing cells for: {', '.join(empty)}. Interpret type III hypotheses with care.", stacklevel=4)


def term_hypotheses(result: Fit, type: int | str = 3) -> dict[str, np.ndarray]:
    """Hypothesis matrices ``L`` (rows x fixed effects) per fixed-effect term, as lmerTest builds them.

    ``type`` is 3/"III" (default; SAS-style, as lmerTest's anova) or 1/"I" (sequential).
    """
    kind = {"3": 3, "iii": 3, "1": 1, "i": 1}.get(str(type).strip().lower())
    if kind is None:
        raise MixedModelsError(f"unknown anova type {type!r}; use 3 ('III') or 1 ('I')")
    design = result.model.inputs.fixed
    terms, has_intercept = fixed_terms(design)
    columns = _hypothesis_columns(result)
    if kind == 1 or design.matrix.shape[1] <= 1 or len(terms) <= 1:
        return _type1(columns.fixed_crossproduct(), terms, has_intercept)
    return _type3(result, design, columns, has_intercept)


# --- tests ------------------------------------------------------------------------------------


def _nu_to_ddf(nu: np.ndarray, tol: float = 1e-8) -> float:
    """Denominator df of an F test from the df of its q orthogonal t-tests (lmerTest's rule)."""
    if len(nu) == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < tol):
        return float(np.mean(nu))
    if np.any(nu <= 2):
        return 2.0
    e = float(np.sum(nu / (nu - 2.0)))
    return 2.0 * e / (e - len(nu))


def _row(f_unscaled: float, ndf: float, ddf: float, sigma: float, scale: float = 1.0) -> dict[str, float]:
    mean_sq = f_unscaled * sigma**2
    f_value = f_unscaled * scale
    return {
        "Sum Sq": mean_sq * ndf,
        "Mean Sq": mean_sq,
        "NumDF": ndf,
        "DenDF": ddf,
        "F value": f_value,
        "Pr(>F)": float(stats.f.sf(f_value, ndf, ddf)),
    }


def _satterthwaite_test(result: Fit, L: np.ndarray, eps: float = np.sqrt(np.finfo(float).eps)) -> dict[str, float]:
    sat = satterthwaite(result)
    beta = result.fixef.to_numpy(dtype=float)
    values, vectors = np.linalg.eigh(L @ sat.vcov @ L.T)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    keep = values > max(eps * values[0], 0.0)
    q = int(keep.sum())
    if q == 0:
        return dict.fromkeys(_COLUMNS, np.nan)
    rotated = vectors[:, keep].T @ L
    t2 = (rotated @ beta) ** 2 / values[keep]
    return _row(float(t2.sum() / q), q, _nu_to_ddf(sat.df(rotated)), result.sigma)


def _row_basis(L: np.ndarray) -> np.ndarray:
    """A full-row-rank matrix with the same row space (the test does not depend on the basis)."""
    if np.linalg.matrix_rank(L) == L.shape[0]:
        return L
    u, s, vt = np.linalg.svd(L, full_matrices=False)
    return vt[s > s[0] * 1e-10]


def _kenward_roger_test(result: Fit, L: np.ndarray) -> dict[str, float]:
    kr = kenward_roger(result)
    L = _row_basis(L)
    lb = L @ result.fixef.to_numpy(dtype=float)
    q = L.shape[0]
    f_unscaled = float(lb @ np.linalg.solve(L @ kr.vcov_adjusted @ L.T, lb)) / q
    ddf, scale = kr.adjustment(L)
    return _row(f_unscaled, q, ddf, result.sigma, scale)


def f_test(result: MixedFit, L: Any, ddf: str = "satterthwaite") -> pd.Series:
    """F test of ``L beta = 0`` (lmerTest's ``contestMD``): Sum Sq, Mean Sq, NumDF, DenDF, F value, Pr(>F)."""
    method = normalize_ddf(ddf)
    if method is None:
        raise MixedModelsError("f_test needs ddf='satterthwaite' or 'kenward-roger'")
    L = contrast_matrix(result, L)
    if L.shape[0] == 0 or not np.any(L):
        return pd.Series(dict.fromkeys(_COLUMNS, np.nan))
    row = _kenward_roger_test(result, L) if method == "kenward-roger" else _satterthwaite_test(result, L)
    return pd.Series(row)[_COLUMNS]


def anova_table(result: MixedFit, ddf: str = "satterthwaite", type: int | str = 3) -> pd.DataFrame:
    """F tests per fixed-effect term with lmerTest's defaults (type III, Satterthwaite).

    Returns a DataFrame (an :class:`~mixedmodels.tables.RTable`, printed as
    lmerTest prints it) indexed by term with columns Sum Sq, Mean Sq, NumDF,
    DenDF, F value, Pr(>F); ``attrs["heading"]`` holds lmerTest's title.
    ``ddf`` is ``"satterthwaite"`` or ``"kenward-roger"`` ("KR"); ``type`` 3 or 1.
    A term whose columns were all dropped as aliased has no row, as in
    lme4's ``anova`` (lmerTest prints an empty one).
    """
    method = normalize_ddf(ddf)
    if method is None:
        raise MixedModelsError("anova F tests need ddf='satterthwaite' or 'kenward-roger'")
    if not is_mixed(result) or is_generalized(result):
        raise MixedModelsError("term-wise F tests are for lmer fits; compare nested models with mm.anova(m0, m1)")
    hypotheses = term_hypotheses(result, type)
    rows = {label: f_test(result, L, method) for label, L in hypotheses.items() if L.size}
    table = pd.DataFrame(rows).T.reindex(columns=_COLUMNS) if rows else pd.DataFrame(columns=_COLUMNS)
    kind = "III" if str(type).strip().lower() in ("3", "iii") else "I"
    name = "Satterthwaite's" if method == "satterthwaite" else "Kenward-Roger's"
    heading = f"Type {kind} Analysis of Variance Table with {name} method"
    table.attrs["heading"] = heading
    return r_table(table, [heading])
