"""Estimated marginal means and their contrasts (R's emmeans).

The reference grid crosses the levels of every factor in the fixed-effects
formula; numeric covariates sit at their mean (or at values given in
``at``).  With ``x_g`` the model-matrix row of grid point ``g`` (built by
replaying the fit's formula, so ``scale()`` and contrasts match), the
marginal mean of a cell ``c`` of the ``specs`` (and ``by``) factors averages
the grid points in it with equal weights:

    l_c = mean_{g in c} x_g,    emmean_c = l_c' beta,    SE_c = sqrt(l_c' V l_c).

``V`` and the df come from :func:`mixedmodels.inference.ddf.contrast_se_df`:
for lmer fits Kenward-Roger by default (the adjusted ``V``, as emmeans uses
pbkrtest), Satterthwaite on request; the residual df for models without
random effects; ``inf`` (z tests) for GLMMs.  Confidence limits are
``emmean +- t_{df, (1 + level)/2} SE``.

Contrasts ``k' emmean`` (e.g. all pairwise differences) are again linear
functions ``(K L) beta`` with their own df; Tukey's adjustment uses the
studentized range: ``p = P(Q_{k, df} > |t| sqrt(2))`` for ``k`` means.
"""

from __future__ import annotations

import itertools
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..design.values import level_label
from ..design.fixed import build_design
from ..design.frame import required_variables
from ..errors import MixedModelsError
from ..fitted import Fit, is_generalized, is_mixed
from .ddf import contrast_se_df, normalize_ddf
from .kenward_roger import MAX_RANDOM_EFFECTS
from .._validate import Dict, Duck, OneOf, Text, TextList, check_arguments, argument_kinds

__all__ = ["emmeans", "contrast", "MarginalMeans"]

_METHOD = OneOf(Text(), Dict(), what="a method's name ('pairwise', ...) or a dict {name: coefficients}")

_ADJUST = ("tukey", "bonferroni", "holm", "sidak", "fdr", "none")


# --- the model's pieces (duck-typed: lmer, glmer, lm, glm results) -------------------------


def _inputs(result: Fit) -> Any:
    model = getattr(result, "model", None)
    inputs = getattr(model, "inputs", None) or getattr(result, "inputs", None)
    if inputs is None or getattr(inputs, "fixed", None) is None:
        raise MixedModelsError(f"emmeans needs a fitted model with a formula; got {type(result).__name__}")
    return inputs


def _default_ddf(result: Fit) -> str | None:
    """emmeans' default for lmer: Kenward-Roger; Satterthwaite when KR would be too large."""
    if not is_mixed(result) or is_generalized(result):
        return None
    nre = sum(t.nlevels * t.ncols for t in result.terms)
    if not result.REML or nre > MAX_RANDOM_EFFECTS:
        return "satterthwaite"
    return "kenward-roger"


# --- the reference grid ---------------------------------------------------------------------


def _is_factor(values: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype)


def _levels(values: pd.Series) -> list:
    """Observed levels in R's order: Categorical order, else sorted unique values."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        used = set(values.dropna().unique())
        return [c for c in values.cat.categories if c in used]
    if pd.api.types.is_bool_dtype(values.dtype):
        return [v for v in (False, True) if v in set(values)]
    return sorted(values.dropna().unique().tolist())


_FACTOR_CALL = re.compile(r"(?:factor|as_factor|C)\((\w+)[,)]")


def _categorical_exprs(design: Any) -> set[str]:
    """The design's categorical factors; a variable made one in the formula (``factor(Days)``) counts too, as in emmeans."""
    spec = getattr(design, "_spec", None)
    exprs = {f.expr for f in spec.factor_contrasts} if spec is not None else set()
    return exprs | {m.group(1) for e in exprs if (m := _FACTOR_CALL.match(e))}


@dataclass
class _Grid:
    """Reference grid: one row per combination of factor levels, covariates fixed."""

    data: pd.DataFrame
    factors: dict[str, list]
    covariates: dict[str, float] = field(default_factory=dict)


def _reference_grid(inputs: Any, at: Mapping[str, Any] | None) -> _Grid:
    frame = inputs.frame
    variables = sorted(required_variables(inputs.formula.fixed))
    coded = _categorical_exprs(inputs.fixed)
    at = dict(at or {})
    unknown = [k for k in at if k not in variables]
    if unknown:
        raise MixedModelsError(f"'at' names {unknown}, which are not fixed-effect variables ({', '.join(variables)})")
    factors: dict[str, list] = {}
    covariates: dict[str, Any] = {}
    for name in variables:
        column = frame[name]
        if _is_factor(column) or name in coded:
            levels = _levels(column)
            if name in at:
                chosen = list(np.atleast_1d(at[name]))
                bad = [v for v in chosen if level_label(v) not in {level_label(x) for x in levels}]
                if bad:
                    raise MixedModelsError(f"'at' gives level(s) {bad} of {name!r}, which has levels {levels}")
                levels = [x for x in levels if level_label(x) in {level_label(v) for v in chosen}]
            factors[name] = levels
        else:
            covariates[name] = at.get(name, float(column.mean()))
    grid = _expand(frame, factors, covariates)
    return _Grid(grid, factors, covariates)


def _expand(frame: pd.DataFrame, factors: dict[str, list], covariates: dict[str, Any]) -> pd.DataFrame:
    """All level combinations, the first factor varying fastest (emmeans' order)."""
    names = list(factors)
    combos = list(itertools.product(*[factors[n] for n in reversed(names)]))
    data = {}
    for i, name in enumerate(reversed(names)):
        values = [c[i] for c in combos]
        dtype = frame[name].dtype
        data[name] = (
            pd.Categorical(values, categories=dtype.categories, ordered=dtype.ordered)
            if isinstance(dtype, pd.CategoricalDtype)
            else values
        )
    grid = pd.DataFrame(data, index=range(max(len(combos), 1)))
    for name, value in covariates.items():
        values = np.atleast_1d(value)
        if values.size != 1:
            grid = grid.loc[grid.index.repeat(values.size)].reset_index(drop=True)
            grid[name] = np.tile(values, len(grid) // values.size)
        else:
            grid[name] = float(values[0])
    return grid[[n for n in frame.columns if n in grid.columns]]


# --- specs ----------------------------------------------------------------------------------


def _parse_specs(specs: Any, by: Any) -> tuple[list[str], list[str]]:
    """``"a"``, ``["a", "b"]``, ``"~ a * b"``, ``"~ a | b"``, ``"~ 1"`` -> (spec variables, by variables)."""
    by_list = [by] if isinstance(by, str) else list(by or [])
    if isinstance(specs, str):
        text = specs.strip().lstrip("~").strip()
        if "|" in text:
            text, extra = text.split("|", 1)
            by_list += [v for v in re.split(r"[*+:]", extra) if v.strip()]
        names = [v.strip() for v in re.split(r"[*+:]", text) if v.strip()]
    else:
        names = [str(v).strip() for v in specs]
    names = [] if names in (["1"], []) else names
    return names, [b.strip() for b in by_list]


def _check_names(names: list[str], grid: _Grid, inputs: Any) -> None:
    known = list(grid.factors) + list(grid.covariates)
    for name in names:
        if name not in known:
            raise MixedModelsError(
                f"{name!r} is not a variable of the fixed-effects formula {inputs.formula.fixed!r}; "
                f"choose from {', '.join(known) or '(none)'}"
            )


# --- linear functions -----------------------------------------------------------------------


def _cell_matrix(x_grid: np.ndarray, grid: pd.DataFrame, keys: list[str], cells: pd.DataFrame) -> np.ndarray:
    """Equal-weight averages of the grid rows in each cell."""
    if not keys:
        return x_grid.mean(axis=0, keepdims=True)
    labels = grid[keys].map(level_label) if hasattr(grid, "map") else grid[keys].applymap(level_label)
    out = []
    for _, cell in cells.iterrows():
        mask = np.ones(len(grid), dtype=bool)
        for k in keys:
            mask &= (labels[k] == level_label(cell[k])).to_numpy()
        out.append(x_grid[mask].mean(axis=0))
    return np.array(out)


def _cells(grid: _Grid, keys: list[str]) -> pd.DataFrame:
    """Combinations of the key variables' values, first varying fastest."""
    values = {k: grid.factors[k] if k in grid.factors else list(np.atleast_1d(grid.covariates[k])) for k in keys}
    combos = list(itertools.product(*[values[k] for k in reversed(keys)]))
    return pd.DataFrame({k: [c[len(keys) - 1 - i] for c in combos] for i, k in enumerate(keys)})


def _estimability(inputs: Any, grid: pd.DataFrame, weights: np.ndarray) -> np.ndarray:
    """False for cells that are not estimable when X lost aliased columns (emmeans' nonEst)."""
    if not getattr(inputs, "dropped_columns", ()):
        return np.ones(weights.shape[0], dtype=bool)
    params = inputs.fixed._spec.materializer_params or {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = build_design(inputs.formula.fixed, inputs.frame, params.get("contrasts"))
    _, s, vt = np.linalg.svd(full.matrix, full_matrices=True)
    null = vt[int(np.sum(s > s[0] * 1e-8)) :].T
    rows = weights @ full.for_newdata(grid)
    return np.all(np.abs(rows @ null) <= 1e-8 * np.maximum(1.0, np.abs(rows).max(axis=1, keepdims=True)), axis=1)


# --- results --------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class MarginalMeans:
    """Estimated marginal means; ``.frame`` is the table, ``.contrast()`` compares them.

    Attributes
    ----------
    frame : DataFrame
        specs and by columns, ``emmean``, ``SE``, ``df``, ``lower.CL``, ``upper.CL``
        (``asymp.LCL``/``asymp.UCL`` when df is infinite).
    L : ndarray
        One row of fixed-effect coefficients per marginal mean.
    """

    frame: pd.DataFrame
    L: np.ndarray
    result: Fit = field(repr=False)
    specs: tuple[str, ...]
    by: tuple[str, ...]
    ddf: str | None
    level: float
    offset: np.ndarray | None = field(default=None, repr=False)

    @argument_kinds(method=_METHOD)
    def contrast(
        self, method: str | Mapping[str, Sequence[float]] = "pairwise", adjust: str | None = None
    ) -> pd.DataFrame:
        """Contrasts of the means within each ``by`` group; see :func:`contrast`."""
        check_arguments(locals())
        return contrast(self, method, adjust)

    def pairs(self, adjust: str = "tukey") -> pd.DataFrame:
        """All pairwise differences (emmeans' ``pairs``), Tukey-adjusted by default."""
        check_arguments(locals())
        return contrast(self, "pairwise", adjust)

    def to_frame(self) -> pd.DataFrame:
        return self.frame.copy()

    def __getitem__(self, key):
        return self.frame[key]

    def __len__(self) -> int:
        return len(self.frame)

    def __repr__(self) -> str:
        method = {
            None: "asymptotic" if np.isinf(self.frame["df"]).all() else "residual",
            "satterthwaite": "Satterthwaite",
            "kenward-roger": "Kenward-Roger",
        }[self.ddf]
        return f"{self.frame.to_string(index=False)}\n\nDegrees-of-freedom method: {method}\nConfidence level used: {self.level}"

    def _repr_html_(self) -> str:
        return self.frame.to_html(index=False)


@argument_kinds(specs=TextList(), by=TextList(allow_none=True), at=Dict(allow_none=True))
def emmeans(
    result: Fit,
    specs: Any,
    by: Any = None,
    level: float = 0.95,
    ddf: str | None = "default",
    at: Mapping[str, Any] | None = None,
) -> MarginalMeans:
    """Estimated marginal means (R's ``emmeans(m, specs, by)``), equal weights over other factors.

    Parameters
    ----------
    result : fitted model
        lmer results (also lm/glm/glmer results: residual df, or z for GLMs).
    specs : str or list
        ``"condition"``, ``["a", "b"]``, ``"~ a * b"``, ``"~ a | b"`` or ``"~ 1"`` (grand mean).
    by : str or list, optional
        Variables whose levels define separate groups (also ``"~ a | b"``).
    level : float
        Confidence level of the intervals.
    ddf : str, optional
        ``"kenward-roger"`` (default for REML lmer fits, as emmeans), ``"satterthwaite"``,
        or None / ``"asymptotic"`` for z-based intervals.
    at : dict, optional
        Covariate values (instead of their means) or a subset of factor levels.

    Returns
    -------
    MarginalMeans
    """
    check_arguments(locals())
    if not 0 < level < 1:
        raise MixedModelsError(f"level must be between 0 and 1, got {level}")
    method = (
        _default_ddf(result) if ddf == "default" else (None if str(ddf).lower() == "asymptotic" else normalize_ddf(ddf))
    )
    inputs = _inputs(result)
    names, by_names = _parse_specs(specs, by)
    grid = _reference_grid(inputs, at)
    _check_names(names + by_names, grid, inputs)
    keys = names + [b for b in by_names if b not in names]
    cells = _cells(grid, keys)
    x_grid = inputs.fixed.for_newdata(grid.data)
    L = _cell_matrix(x_grid, grid.data, keys, cells)
    offset = None
    off = inputs.fixed.offset_for_newdata(grid.data)
    if off is not None:
        offset = _cell_matrix(off[:, None], grid.data, keys, cells)[:, 0]
    frame = _summarize(result, L, offset, method, level)
    if getattr(inputs, "dropped_columns", ()):
        weights = _cell_matrix(np.eye(len(grid.data)), grid.data, keys, cells)
        ok = _estimability(inputs, grid.data, weights)
        frame.loc[~ok, frame.columns] = np.nan
    labels = cells if keys else pd.DataFrame({"1": ["overall"]})
    table = pd.concat([_label_frame(labels), frame], axis=1)
    return MarginalMeans(table, L, result, tuple(names), tuple(by_names), method, level, offset)


def _label_frame(cells: pd.DataFrame) -> pd.DataFrame:
    """Level columns as ordered Categoricals of R's labels."""
    out = {}
    for name in cells.columns:
        labels = [level_label(v) for v in cells[name]]
        out[name] = pd.Categorical(labels, categories=list(dict.fromkeys(labels)))
    return pd.DataFrame(out)


def _summarize(result: Fit, L: np.ndarray, offset: np.ndarray | None, ddf: str | None, level: float) -> pd.DataFrame:
    est = L @ result.fixef.to_numpy(dtype=float)
    if offset is not None:
        est = est + offset
    se, df = contrast_se_df(result, L, ddf)
    crit = stats.t.ppf(0.5 + level / 2.0, df)
    lo, hi = ("asymp.LCL", "asymp.UCL") if np.all(np.isinf(df)) else ("lower.CL", "upper.CL")
    return pd.DataFrame({"emmean": est, "SE": se, "df": df, lo: est - crit * se, hi: est + crit * se})


# --- contrasts ------------------------------------------------------------------------------


def _is_numeric_label(labels: list[str]) -> bool:
    try:
        [float(v) for v in labels]
    except ValueError:
        return False
    return True


def _level_names(emm: MarginalMeans) -> list[str]:
    """emmeans' labels: numeric-looking levels get the variable name; +-*/ get parentheses."""
    parts = []
    for name in emm.specs:
        labels = [str(v) for v in emm.frame[name]]
        parts.append([name + v for v in labels] if _is_numeric_label(labels) else labels)
    joined = [" ".join(p) for p in zip(*parts)] if parts else ["overall"] * len(emm.frame)
    return [f"({v})" if re.search(r"[-+/*]", v) else v for v in joined]


def _contrast_coefficients(method: Any, labels: list[str]) -> tuple[np.ndarray, list[str], bool]:
    """(coefficients k x n, names, is-pairwise) for a contrast method on n means."""
    n = len(labels)
    if isinstance(method, Mapping):
        coef = np.array([np.asarray(v, dtype=float) for v in method.values()])
        if coef.shape[1] != n:
            raise MixedModelsError(f"each custom contrast needs {n} coefficients (one per mean), got {coef.shape[1]}")
        return coef, [str(k) for k in method], False
    pairs = list(itertools.combinations(range(n), 2))
    if method == "pairwise":
        rows = [(i, j) for i, j in pairs]
    elif method == "revpairwise":
        rows = [(j, i) for i, j in sorted(pairs, key=lambda ij: (ij[1], ij[0]))]
    elif method == "trt.vs.ctrl":
        rows = [(i, 0) for i in range(1, n)]
    elif method == "eff":
        coef = np.eye(n) - 1.0 / n
        return coef, [f"{v} effect" for v in labels], False
    else:
        raise MixedModelsError(
            f"unknown contrast method {method!r}; use 'pairwise', 'revpairwise', 'trt.vs.ctrl', 'eff' "
            "or a dict of coefficient vectors"
        )
    coef = np.zeros((len(rows), n))
    for r, (i, j) in enumerate(rows):
        coef[r, i], coef[r, j] = 1.0, -1.0
    return coef, [f"{labels[i]} - {labels[j]}" for i, j in rows], method in ("pairwise", "revpairwise")


def _adjust(p: np.ndarray, t: np.ndarray, df: np.ndarray, method: str, nmeans: int) -> np.ndarray:
    """Multiplicity-adjusted p-values within one family."""
    m = len(p)
    if method == "none" or m <= 1 and method != "tukey":
        return p
    if method == "tukey":
        if nmeans <= 2:  # the studentized range of two means is |t| sqrt(2): the t test itself
            return p
        return np.minimum(stats.studentized_range.sf(np.abs(t) * np.sqrt(2.0), nmeans, df), 1.0)
    if method == "bonferroni":
        return np.minimum(p * m, 1.0)
    if method == "sidak":
        return 1.0 - (1.0 - p) ** m
    order = np.argsort(p)
    ranked = p[order]
    if method == "holm":
        adj = np.maximum.accumulate(np.minimum((m - np.arange(m)) * ranked, 1.0))
    else:  # fdr (Benjamini-Hochberg)
        adj = np.minimum.accumulate((m / np.arange(m, 0, -1) * ranked[::-1]))[::-1]
        adj = np.minimum(adj, 1.0)
    out = np.empty(m)
    out[order] = adj
    return out


@argument_kinds(emm=Duck("frame", "contrast", what="marginal means (from mm.emmeans)"), method=_METHOD)
def contrast(
    emm: MarginalMeans, method: str | Mapping[str, Sequence[float]] = "pairwise", adjust: str | None = None
) -> pd.DataFrame:
    """Contrasts of marginal means within each ``by`` group (emmeans' ``contrast``).

    ``method``: ``"pairwise"`` (``a - b`` for every pair, emmeans' order), ``"revpairwise"``,
    ``"trt.vs.ctrl"`` (each level minus the first), ``"eff"`` (each minus the average), or a
    dict ``{name: coefficients}``.  ``adjust``: ``"tukey"`` (default for pairwise, as emmeans),
    ``"bonferroni"``, ``"holm"``, ``"sidak"``, ``"fdr"`` or ``"none"``; the defaults for the
    other methods are ``"sidak"`` (trt.vs.ctrl; emmeans uses its ``dunnettx``
    approximation), ``"fdr"`` (eff) and ``"none"`` (custom).

    Returns a DataFrame with contrast, the by columns, estimate, SE, df, t.ratio
    (z.ratio when df is infinite) and p.value.
    """
    check_arguments(locals())
    if not isinstance(emm, MarginalMeans):
        raise MixedModelsError("contrast() takes the result of mm.emmeans(...)")
    if adjust is None:
        adjust = {"pairwise": "tukey", "revpairwise": "tukey", "trt.vs.ctrl": "sidak", "eff": "fdr"}.get(
            method if isinstance(method, str) else "", "none"
        )
    adjust = str(adjust).lower()
    if adjust not in _ADJUST:
        raise MixedModelsError(f"unknown adjust {adjust!r}; use one of {', '.join(_ADJUST)}")
    groups = _by_groups(emm)
    names = _level_names(emm)
    pieces = []
    for rows, by_values in groups:
        coef, labels, pairwise = _contrast_coefficients(method, [names[i] for i in rows])
        how = adjust
        if how == "tukey" and not pairwise:
            warnings.warn("Tukey's adjustment is for pairwise comparisons; using 'sidak' instead", stacklevel=2)
            how = "sidak"
        pieces.append(_contrast_family(emm, coef @ emm.L[rows], labels, by_values, how, len(rows)))
    return pd.concat(pieces, ignore_index=True)


def _by_groups(emm: MarginalMeans) -> list[tuple[list[int], dict[str, str]]]:
    if not emm.by:
        return [(list(range(len(emm.frame))), {})]
    keys = emm.frame[list(emm.by)].astype(str)
    groups: dict[tuple, list[int]] = {}
    for i, row in enumerate(keys.itertuples(index=False)):
        groups.setdefault(tuple(row), []).append(i)
    return [(rows, dict(zip(emm.by, key))) for key, rows in groups.items()]


def _contrast_family(
    emm: MarginalMeans, L: np.ndarray, labels: list[str], by_values: dict[str, str], adjust: str, nmeans: int
) -> pd.DataFrame:
    est = L @ emm.result.fixef.to_numpy(dtype=float)
    se, df = contrast_se_df(emm.result, L, emm.ddf)
    t = est / se
    p = 2.0 * stats.t.sf(np.abs(t), df)
    stat = "z.ratio" if np.all(np.isinf(df)) else "t.ratio"
    table = pd.DataFrame({"contrast": labels})
    for name, value in by_values.items():
        table[name] = value
    table["estimate"], table["SE"], table["df"] = est, se, df
    table[stat], table["p.value"] = t, _adjust(p, t, df, adjust, nmeans)
    return table
