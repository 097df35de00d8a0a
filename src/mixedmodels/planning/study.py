"""Simulating multilevel data the way a study is described (``mm.simulate_design``).

A design is ``J`` groups (participants) with ``n_j`` trials in every cell of
the within-group conditions, optionally crossed with ``K`` items (stimuli):
every group sees every item in every within-cell ``n_j`` times.  Between-group
conditions are assigned to groups in rotation (group ``j`` gets combination
``j mod C``).  The response is

.. math::

    y_i = x_i^\\top \\beta + z_i^\\top b_{g[i]} + w_i^\\top c_{k[i]} + e_i,\\quad
    b_j \\sim N(0, D_g R_g D_g),\\quad c_k \\sim N(0, D_k R_k D_k),\\quad
    e_i \\sim N(0, \\sigma^2),

where ``x_i`` holds the *design columns* -- ``(Intercept)``, covariates,
condition columns and their products ``a:b`` -- named as R names the columns
of ``model.matrix`` (treatment coding ``conditionB``; or one numeric column
``condition`` when the levels are given codes such as ``{"A": -0.5, "B": 0.5}``),
``z_i`` and ``w_i`` the columns that get group and item random effects, ``D``
diagonal matrices of their SDs and ``R`` their correlation matrices.
Outlier groups get a fixed shift added to their coefficients.

The teaching designs, a few lines each::

    alike = simulate_design(10, 20, covariates={"x": 1.0}, fixed={"(Intercept)": 2, "x": 0.5}, seed=1)
    different = simulate_design(10, 20, covariates={"x": 1.0}, fixed={"(Intercept)": 2, "x": 0.5},
                                group_sd={"(Intercept)": 1.0, "x": 0.5}, seed=1)
    outlier = simulate_design(10, 20, covariates={"x": 1.0}, fixed={"(Intercept)": 2, "x": 0.5},
                              group_sd=0.2, outliers=1, outlier_shift={"(Intercept)": 4, "x": -1.5}, seed=1)
    partial = simulate_design(20, 10, fixed={"(Intercept)": 1}, group_sd=0.5, sigma=1, seed=1)
    rho07 = simulate_design(100, 10, within={"condition": ["A", "B"]},
                            fixed={"(Intercept)": 800, "conditionB": 50},
                            group_sd={"(Intercept)": 100, "conditionB": 40}, group_corr=0.7,
                            sigma=150, seed=1)
    crossed = simulate_design(100, 5, n_items=50, within={"condition": {"A": -0.5, "B": 0.5}},
                              fixed={"(Intercept)": 800, "condition": 30}, group_sd=100,
                              item_sd=50, sigma=200, seed=1)

:func:`mixedmodels.planning.power.power` (``mm.power(design, formula, test=...)``)
simulates many data sets from a design with :func:`sampler`, fits one or more
models to each and reports how often each rejects the null.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ModelSpecError
from .._memory import MemoryEstimate, check_memory
from .._validate import Dict, Instance, Integer, Numbers, OneOf, Real, Text, check_arguments, argument_kinds

__all__ = ["simulate_design", "DesignTruth", "sampler", "response_sampler"]

INTERCEPT = "(Intercept)"
_INTERCEPT_ALIASES = {"1", "intercept", "Intercept", "(intercept)", INTERCEPT}


# --------------------------------------------------------------------------- design spec
@dataclass(frozen=True)
class _Factor:
    """A condition: its levels and either numeric codes or treatment coding."""

    name: str
    levels: tuple[str, ...]
    codes: tuple[float, ...] | None

    @property
    def columns(self) -> list[str]:
        """Design-column names: ``name`` when coded, else R's ``name<level>`` per non-reference level."""
        if self.codes is not None:
            return [self.name]
        return [f"{self.name}{level}" for level in self.levels[1:]]

    def values(self, index: np.ndarray) -> dict[str, np.ndarray]:
        """Design-column values for observations at level ``index``."""
        if self.codes is not None:
            return {self.name: np.asarray(self.codes, dtype=float)[index]}
        return {f"{self.name}{lev}": (index == i).astype(float) for i, lev in enumerate(self.levels) if i > 0}


@dataclass(frozen=True)
class _Spec:
    """A validated design; ``simulate`` draws one data set from it."""

    n_obs: np.ndarray
    n_items: int
    within: tuple[_Factor, ...]
    between: tuple[_Factor, ...]
    item_between: tuple[_Factor, ...]
    covariates: Mapping[str, Any]
    fixed: Mapping[str, float]
    group_sd: Mapping[str, float]
    group_corr: np.ndarray
    item_sd: Mapping[str, float]
    item_corr: np.ndarray
    sigma: float
    outliers: int
    outlier_shift: Mapping[str, float]
    names: Mapping[str, str]
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def n_groups(self) -> int:
        return len(self.n_obs)

    @property
    def factors(self) -> tuple[_Factor, ...]:
        return self.between + self.item_between + self.within

    @property
    def base_columns(self) -> list[str]:
        """Main-effect design columns: intercept, covariates, condition columns."""
        factor_cols = [c for f in self.factors for c in f.columns]
        return [INTERCEPT, *self.covariates, *factor_cols]

    @property
    def columns(self) -> list[str]:
        """Every design column with a coefficient: main effects plus the products named in ``fixed``."""
        extra = [c for c in list(self.fixed) + list(self.group_sd) + list(self.item_sd) if c not in self.base_columns]
        return self.base_columns + list(dict.fromkeys(extra))


def _labels(prefix: str, n: int) -> list[str]:
    """Zero-padded labels that sort naturally: p01, p02, ..., p10."""
    width = len(str(n))
    return [f"{prefix}{i:0{width}d}" for i in range(1, n + 1)]


def _intercept_key(key: str) -> str:
    return INTERCEPT if key in _INTERCEPT_ALIASES else key


def _factor(name: str, levels: Any) -> _Factor:
    if isinstance(levels, Mapping):
        labels, codes = tuple(str(k) for k in levels), tuple(float(v) for v in levels.values())
    elif isinstance(levels, (str, bytes)) or not isinstance(levels, Sequence):
        raise ModelSpecError(f"levels of condition {name!r} must be a list like ['A', 'B'] or a dict of codes")
    else:
        labels, codes = tuple(str(v) for v in levels), None
    if len(labels) < 2 or len(set(labels)) != len(labels):
        raise ModelSpecError(f"condition {name!r} needs at least two distinct levels, got {list(labels)}")
    return _Factor(str(name), labels, codes)


def _given(value: Any) -> bool:
    """True for a non-empty mapping or a non-zero number (an argument that was really set)."""
    if isinstance(value, Mapping):
        return bool(value)
    return bool(np.any(np.asarray(value, dtype=float) != 0))


def _n_obs(n_groups: int, n_obs: Any) -> np.ndarray:
    if not isinstance(n_groups, (int, np.integer)) or n_groups < 1:
        raise ModelSpecError(f"n_groups must be a positive whole number, got {n_groups!r}")
    counts = np.full(n_groups, n_obs) if np.ndim(n_obs) == 0 else np.asarray(n_obs)
    if counts.shape != (n_groups,):
        raise ModelSpecError(f"n_obs must be one number or {n_groups} numbers (one per group), got {len(counts)}")
    if not np.all(np.mod(counts, 1) == 0) or np.any(counts < 1):
        raise ModelSpecError("n_obs must hold whole numbers >= 1 (trials per group and cell)")
    return counts.astype(np.int64)


def _sd_map(sd: Any, what: str) -> dict[str, float]:
    if isinstance(sd, Mapping):
        out = {_intercept_key(str(k)): float(v) for k, v in sd.items()}
    else:
        out = {INTERCEPT: float(sd)}
    bad = [k for k, v in out.items() if not np.isfinite(v) or v < 0]
    if bad:
        raise ModelSpecError(f"{what} for {bad[0]!r} must be a finite number >= 0")
    return out


def _corr_matrix(corr: Any, q: int, what: str) -> np.ndarray:
    """A q x q correlation matrix from one correlation (all pairs) or a full matrix."""
    if np.ndim(corr) == 0:
        r = np.full((q, q), float(corr))
        np.fill_diagonal(r, 1.0)
    else:
        r = np.asarray(corr, dtype=float)
        if r.shape != (q, q):
            raise ModelSpecError(f"{what} must be one number or a {q} x {q} matrix for {q} random effects")
    if not np.allclose(r, r.T) or not np.allclose(np.diag(r), 1) or np.any(np.abs(r) > 1):
        raise ModelSpecError(f"{what} must be a symmetric correlation matrix (ones on the diagonal, |r| <= 1)")
    if q > 0 and np.linalg.eigvalsh(r).min() < -1e-10:
        raise ModelSpecError(f"{what} is not a valid correlation matrix (not positive semi-definite)")
    return r


def _check_covariates(covariates: Mapping[str, Any], n_max: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, spec in covariates.items():
        if np.ndim(spec) == 0:
            if not float(spec) >= 0:
                raise ModelSpecError(f"covariate {name!r}: a single number is its SD and must be >= 0")
            out[str(name)] = float(spec)
        else:
            values = np.asarray(spec)
            if not np.issubdtype(values.dtype, np.number):
                raise ModelSpecError(f"covariate {name!r}: trial values must be numbers")
            if values.ndim != 1 or len(values) < n_max:
                raise ModelSpecError(
                    f"covariate {name!r} lists {values.size} trial values but groups have up to {n_max} trials"
                )
            out[str(name)] = values
    return out


def _check_keys(spec: _Spec) -> None:
    """Every named column must be a design column or a product a:b of them."""
    base = set(spec.base_columns)
    for what, keys in (
        ("fixed", spec.fixed),
        ("outlier_shift", spec.outlier_shift),
        ("group_sd", spec.group_sd),
        ("item_sd", spec.item_sd),
    ):
        for key in keys:
            unknown = [part for part in key.split(":") if part not in base]
            if unknown:
                raise ModelSpecError(
                    f"{what} names {key!r}, but {unknown[0]!r} is not a column of this design; "
                    f"columns are: {', '.join(spec.base_columns)} (and products like a:b)"
                )
    _check_slopes(spec.group_sd, {c for f in spec.between for c in f.columns}, "group_sd", "groups")
    _check_slopes(spec.item_sd, {c for f in spec.item_between for c in f.columns}, "item_sd", "items")


def _check_slopes(sd: Mapping[str, float], constant: set[str], what: str, level: str) -> None:
    """A random slope for a column that is constant within each group (item) is not identifiable."""
    for key in sd:
        if key != INTERCEPT and set(key.split(":")) <= constant | {INTERCEPT}:
            raise ModelSpecError(
                f"{what} names {key!r}, which varies only between {level}; a random slope for it "
                f"over {level} cannot be identified -- remove it from {what}"
            )


def _names(response: str, group: str, item: str, spec_names: list[str]) -> dict[str, str]:
    names = {"response": str(response), "group": str(group), "item": str(item), "trial": "trial"}
    every = list(names.values()) + spec_names
    dup = next((n for n in every if every.count(n) > 1), None)
    if dup is not None:
        raise ModelSpecError(f"the name {dup!r} is used twice in the design; give columns distinct names")
    return names


def _check_size(n_groups: int, n_obs: Any, n_items: int | None, within: Mapping | None) -> None:
    """Refuse a design whose data would not fit in memory, before any array is made (e.g. ``n_groups=10**9``)."""
    trials = int(n_groups) * int(n_obs) if np.ndim(n_obs) == 0 else int(np.sum(n_obs))
    cells = math.prod(max(len(levels), 1) for levels in (within or {}).values())
    rows = trials * max(int(n_items or 1), 1) * cells
    estimate = MemoryEstimate().add(f"{rows:,} rows x ~12 columns", rows * 12 * 8 * 2)
    check_memory(
        estimate,
        None,
        "the simulated data set",
        "simulate fewer groups, trials or items (or several smaller data sets)",
        settable=False,
    )


def _make_spec(
    n_groups,
    n_obs,
    *,
    n_items,
    within,
    between,
    between_items,
    covariates,
    fixed,
    group_sd,
    group_corr,
    item_sd,
    item_corr,
    sigma,
    outliers,
    outlier_shift,
    response,
    group,
    item,
) -> _Spec:
    _check_size(n_groups, n_obs, n_items, within)
    counts = _n_obs(n_groups, n_obs)
    if n_items is not None and (not isinstance(n_items, (int, np.integer)) or n_items < 1):
        raise ModelSpecError(f"n_items must be a positive whole number or None, got {n_items!r}")
    if not (np.isfinite(sigma) and sigma >= 0):
        raise ModelSpecError(f"sigma (the residual SD) must be a finite number >= 0, got {sigma!r}")
    if not isinstance(outliers, (int, np.integer)) or not 0 <= outliers <= n_groups:
        raise ModelSpecError(f"outliers must be a whole number between 0 and n_groups={n_groups}")
    if outliers and not outlier_shift:
        raise ModelSpecError("outliers > 0 needs outlier_shift, e.g. {'(Intercept)': 3.0}")
    if (between_items or _given(item_sd) or _given(item_corr)) and not n_items:
        raise ModelSpecError("between_items, item_sd and item_corr describe items; give n_items too")
    wf, bf, ibf = (tuple(_factor(k, v) for k, v in (c or {}).items()) for c in (within, between, between_items))
    cov = _check_covariates(covariates or {}, int(counts.max()))
    shift = {_intercept_key(str(k)): float(v) for k, v in (outlier_shift or {}).items()}
    gsd = _sd_map(group_sd, "group_sd")
    gsd.update({k: 0.0 for k in shift if k not in gsd})  # an outlier's shifted slope varies by group
    isd = _sd_map(item_sd if n_items else {}, "item_sd")
    factors = wf + bf + ibf
    variable_names = [f.name for f in factors] + list(cov) + [f"{f.name}_label" for f in factors if f.codes]
    spec = _Spec(
        n_obs=counts,
        n_items=int(n_items or 0),
        within=wf,
        between=bf,
        item_between=ibf,
        covariates=cov,
        fixed={_intercept_key(str(k)): float(v) for k, v in (fixed or {INTERCEPT: 0.0}).items()},
        group_sd=gsd,
        group_corr=_corr_matrix(group_corr, len(gsd), "group_corr"),
        item_sd=isd,
        item_corr=_corr_matrix(item_corr, len(isd), "item_corr"),
        sigma=float(sigma),
        outliers=int(outliers),
        outlier_shift=shift,
        names=_names(response, group, item, variable_names),
    )
    _check_keys(spec)
    return spec


# --------------------------------------------------------------------------- drawing
def _skeleton(spec: _Spec) -> dict[str, np.ndarray]:
    """Row indices: group, item, within-cell and trial, ordered group > item > cell > trial."""
    n_items = max(spec.n_items, 1)
    n_cells = math.prod(len(f.levels) for f in spec.within)
    blocks = [np.indices((n_items, n_cells, n)).reshape(3, -1) for n in spec.n_obs]
    sizes = [b.shape[1] for b in blocks]
    item, cell, trial = np.concatenate(blocks, axis=1)
    return {"group": np.repeat(np.arange(spec.n_groups), sizes), "item": item, "cell": cell, "trial": trial}


def _factor_indices(spec: _Spec, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Level index of every condition for every row."""
    out: dict[str, np.ndarray] = {}
    if spec.within:
        shape = tuple(len(f.levels) for f in spec.within)
        for f, idx in zip(spec.within, np.unravel_index(rows["cell"], shape)):
            out[f.name] = idx
    if spec.between:
        shape = tuple(len(f.levels) for f in spec.between)
        combo = rows["group"] % math.prod(shape)
        for f, idx in zip(spec.between, np.unravel_index(combo, shape)):
            out[f.name] = idx
    if spec.item_between:
        shape = tuple(len(f.levels) for f in spec.item_between)
        combo = rows["item"] % math.prod(shape)
        for f, idx in zip(spec.item_between, np.unravel_index(combo, shape)):
            out[f.name] = idx
    return out


def _design_columns(spec: _Spec, rows, levels, covariates) -> dict[str, np.ndarray]:
    n = len(rows["group"])
    cols = {INTERCEPT: np.ones(n), **covariates}
    for f in spec.factors:
        cols.update(f.values(levels[f.name]))
    for key in spec.columns:
        if key not in cols:
            cols[key] = np.prod([cols[part] for part in key.split(":")], axis=0)
    return cols


def _draw_covariates(spec: _Spec, rows, rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = len(rows["group"])
    return {
        name: (rng.normal(0.0, s, n) if np.ndim(s) == 0 else s[rows["trial"]]) for name, s in spec.covariates.items()
    }


def _covariance(sd: Mapping[str, float], corr: np.ndarray) -> np.ndarray:
    d = np.array(list(sd.values()))
    return corr * np.outer(d, d)


def _draw_effects(sd: Mapping[str, float], corr: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n draws from N(0, D R D), shape (n, q); exact zeros for zero SDs."""
    if not sd:
        return np.zeros((n, 0))
    cov = _covariance(sd, corr)
    return rng.multivariate_normal(np.zeros(len(sd)), cov, size=n, method="eigh")


def _random_part(cols, effects: np.ndarray, keys: list[str], index: np.ndarray) -> np.ndarray:
    out = np.zeros(len(index))
    for k, key in enumerate(keys):
        out += cols[key] * effects[index, k]
    return out


def _simulate(spec: _Spec, rng: np.random.Generator) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One data set and its realised random effects."""
    rows = _skeleton(spec)
    levels = _factor_indices(spec, rows)
    covariates = _draw_covariates(spec, rows, rng)
    cols = _design_columns(spec, rows, levels, covariates)
    y, b, c = _draw_response(spec, rows, cols, rng)
    frame = _frame(spec, rows, levels, covariates, y)
    return frame, {"group_effects": b, "item_effects": c}


def _draw_response(spec: _Spec, rows, cols, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The response given the design columns, and the group and item effects drawn for it."""
    b = _draw_effects(spec.group_sd, spec.group_corr, spec.n_groups, rng)
    gkeys = list(spec.group_sd)
    for key, shift in spec.outlier_shift.items():
        b[spec.n_groups - spec.outliers :, gkeys.index(key)] += shift
    c = _draw_effects(spec.item_sd, spec.item_corr, spec.n_items, rng)
    eta = sum(cols[k] * v for k, v in spec.fixed.items()) + _random_part(cols, b, gkeys, rows["group"])
    if spec.n_items:
        eta = eta + _random_part(cols, c, list(spec.item_sd), rows["item"])
    return eta + rng.normal(0.0, spec.sigma, len(rows["group"])), b, c


def _frame(spec: _Spec, rows, levels, covariates, y) -> pd.DataFrame:
    nm = spec.names
    glabels = _labels(nm["group"][:1] or "g", spec.n_groups)
    data: dict[str, Any] = {nm["group"]: pd.Categorical.from_codes(rows["group"], glabels)}
    if spec.n_items:
        data[nm["item"]] = pd.Categorical.from_codes(rows["item"], _labels(nm["item"][:1] or "i", spec.n_items))
    for f in spec.factors:
        labels = pd.Categorical.from_codes(levels[f.name], list(f.levels))
        if f.codes is None:
            data[f.name] = labels
        else:
            data[f.name] = np.asarray(f.codes)[levels[f.name]]
            data[f"{f.name}_label"] = labels
    data.update(covariates)
    data[nm["trial"]] = rows["trial"] + 1
    data[nm["response"]] = y
    return pd.DataFrame(data)


# --------------------------------------------------------------------------- truth
@dataclass(frozen=True, eq=False)
class DesignTruth:
    """The parameters a simulated data set was drawn from (``df.attrs["truth"]``).

    Attributes
    ----------
    formula : str
        An lme4 formula matching the design (all main effects, the products
        named in ``fixed``, and the random terms given SDs).
    fixef : Series
        True coefficient of every design column (0 where not given).
    sigma : float
        Residual SD.
    group_cov, item_cov : DataFrame
        Covariance matrices ``D R D`` of the group (item) random effects.
    group_effects, item_effects : DataFrame
        The realised random effects, one row per group (item), outlier shifts included.
    outlier_groups : tuple of str
        Labels of the outlier groups (the last ``outliers`` groups).
    settings : dict
        The keyword arguments of :func:`simulate_design`, minus ``seed``;
        ``simulate_design(**truth.settings, seed=...)`` draws another data set.
    """

    formula: str
    fixef: pd.Series
    sigma: float
    group_cov: pd.DataFrame
    item_cov: pd.DataFrame | None
    group_effects: pd.DataFrame
    item_effects: pd.DataFrame | None
    outlier_groups: tuple[str, ...]
    settings: dict

    @property
    def group_sd(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self.group_cov)), index=self.group_cov.index, name="sd")

    @property
    def group_corr(self) -> pd.DataFrame:
        sd = self.group_sd.to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = self.group_cov.to_numpy() / np.outer(sd, sd)
        np.fill_diagonal(corr, 1.0)
        return pd.DataFrame(corr, index=self.group_cov.index, columns=self.group_cov.columns)

    def coef(self) -> pd.DataFrame:
        """True per-group coefficients: fixed effects plus each group's random effects (as lme4's ``coef()``)."""
        out = pd.DataFrame(
            np.tile(self.fixef.to_numpy(), (len(self.group_effects), 1)),
            index=self.group_effects.index,
            columns=self.fixef.index,
        )
        for col in self.group_effects.columns:
            out[col] = out[col] + self.group_effects[col] if col in out.columns else self.group_effects[col]
        return out


def _term_of(spec: _Spec, column: str) -> str:
    """The formula term that produces a design column: conditionB -> condition, a:b -> a:b."""
    owner = {c: f.name for f in spec.factors for c in f.columns}
    return ":".join(owner.get(part, part) for part in column.split(":"))


def _formula(spec: _Spec) -> str:
    terms = list(dict.fromkeys(_term_of(spec, c) for c in spec.columns if c != INTERCEPT))
    rhs = " + ".join(terms) or "1"
    parts = [rhs]
    for keys, name in ((spec.group_sd, spec.names["group"]), (spec.item_sd, spec.names["item"])):
        if not keys:
            continue
        slopes = list(dict.fromkeys(_term_of(spec, k) for k in keys if k != INTERCEPT))
        lead = "1" if INTERCEPT in keys else "0"
        parts.append(f"({' + '.join([lead, *slopes]) if slopes else lead} | {name})")
    return f"{spec.names['response']} ~ {' + '.join(parts)}"


def _truth(spec: _Spec, frame: pd.DataFrame, effects: dict[str, Any]) -> DesignTruth:
    nm = spec.names
    glevels = list(frame[nm["group"]].cat.categories)
    gkeys, ikeys = list(spec.group_sd), list(spec.item_sd)
    item = spec.n_items > 0
    ilevels = list(frame[nm["item"]].cat.categories) if item else []
    fixef = pd.Series({c: spec.fixed.get(c, 0.0) for c in spec.columns}, name="truth")
    return DesignTruth(
        formula=_formula(spec),
        fixef=fixef,
        sigma=spec.sigma,
        group_cov=pd.DataFrame(_covariance(spec.group_sd, spec.group_corr), index=gkeys, columns=gkeys),
        item_cov=pd.DataFrame(_covariance(spec.item_sd, spec.item_corr), index=ikeys, columns=ikeys) if item else None,
        group_effects=pd.DataFrame(effects["group_effects"], index=pd.Index(glevels, name=nm["group"]), columns=gkeys),
        item_effects=pd.DataFrame(effects["item_effects"], index=pd.Index(ilevels, name=nm["item"]), columns=ikeys)
        if item
        else None,
        outlier_groups=tuple(glevels[spec.n_groups - spec.outliers :]) if spec.outliers else (),
        settings=dict(spec.settings),
    )


def _as_rng(seed: Any) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


_SD = OneOf(Real(0.0), Dict(Real(0.0)), what="an SD >= 0 or a dict of design column -> SD")
_CORR = OneOf(Real(-1.0, 1.0), Instance(np.ndarray, list), what="a correlation in [-1, 1] or a correlation matrix")


@argument_kinds(
    n_groups=Integer(1),
    n_obs=OneOf(Integer(1), Numbers(Integer(1), min_length=1), what="a whole number >= 1 or one per group"),
    n_items=Integer(1, allow_none=True),
    within=Dict(allow_none=True),
    between=Dict(allow_none=True),
    between_items=Dict(allow_none=True),
    covariates=Dict(allow_none=True),
    fixed=Dict(Real(), allow_none=True),
    group_sd=_SD,
    group_corr=_CORR,
    item_sd=_SD,
    item_corr=_CORR,
    sigma=Real(0.0),
    outliers=Integer(0),
    outlier_shift=Dict(Real(), allow_none=True),
    response=Text(),
    group=Text(),
    item=Text(),
)
def simulate_design(
    n_groups: int = 20,
    n_obs: int | Sequence[int] = 10,
    *,
    n_items: int | None = None,
    within: Mapping[str, Sequence[str] | Mapping[str, float]] | None = None,
    between: Mapping[str, Sequence[str] | Mapping[str, float]] | None = None,
    between_items: Mapping[str, Sequence[str] | Mapping[str, float]] | None = None,
    covariates: Mapping[str, float | Sequence[float]] | None = None,
    fixed: Mapping[str, float] | None = None,
    group_sd: float | Mapping[str, float] = 0.0,
    group_corr: float | np.ndarray = 0.0,
    item_sd: float | Mapping[str, float] = 0.0,
    item_corr: float | np.ndarray = 0.0,
    sigma: float = 1.0,
    outliers: int = 0,
    outlier_shift: Mapping[str, float] | None = None,
    response: str = "y",
    group: str = "participant",
    item: str = "item",
    seed: int | np.random.Generator | None = None,
) -> pd.DataFrame:
    """Simulate one data set from a multilevel design (see the module docstring for the model).

    Parameters
    ----------
    n_groups : int
        Number of groups ``J`` (participants, subjects, schools).
    n_obs : int or sequence of int
        Trials per group and cell (per group x item x within-cell with items);
        one number, or one per group for unbalanced designs.
    n_items : int, optional
        A second grouping factor crossed with the groups (items, stimuli).
    within, between : dict, optional
        Conditions, name -> levels.  Levels as a list (``["A", "B"]``) give a
        factor column with treatment coding (design column ``conditionB``);
        levels as a dict of codes (``{"A": -0.5, "B": 0.5}``) give one numeric
        column ``condition`` (and the labels in ``condition_label``).
        ``within`` conditions are crossed inside every group; ``between``
        conditions are assigned to groups in rotation.
    between_items : dict, optional
        Conditions that are properties of the items (each item has one level,
        assigned in rotation), so they vary within groups.
    covariates : dict, optional
        Continuous predictors, name -> SD of a normal draw per row (mean 0), or
        a sequence of values for trials 1, 2, ... (``range(10)`` for Days 0-9).
    fixed : dict
        True coefficients by design column: ``"(Intercept)"`` (alias
        ``"Intercept"``), covariate names, condition columns, products
        ``"a:b"``.  Columns not named have coefficient 0.
    group_sd, item_sd : float or dict
        SDs of the group (item) random effects by design column; a number is
        the random-intercept SD.
    group_corr, item_corr : float or array
        Correlation of the random effects: one number for every pair, or a
        full matrix in the order of the SD dict.
    sigma : float
        Residual SD.
    outliers : int
        Number of outlier groups (the last ones), whose coefficients are
        shifted by ``outlier_shift`` (design column -> shift).
    response, group, item : str
        Column names.
    seed : int or numpy Generator, optional

    Returns
    -------
    DataFrame
        Groups and items as Categoricals (labels ``p01``, ``p02``, ...), the
        conditions, covariates, ``trial`` (1, 2, ...) and the response.
        ``df.attrs["truth"]`` is a :class:`DesignTruth` with the generating
        parameters and an lme4 formula for the design.

    Raises
    ------
    ModelSpecError
        For an impossible design, naming the argument at fault.
    """
    check_arguments(locals())
    settings = {k: v for k, v in locals().items() if k != "seed"}
    spec = _make_spec(**settings)
    spec = replace(spec, settings=settings)
    frame, effects = _simulate(spec, _as_rng(seed))
    frame.attrs["truth"] = _truth(spec, frame, effects)
    return frame


def sampler(settings: Mapping[str, Any]) -> tuple[Any, DesignTruth]:
    """For repeated draws (power): a function rng -> data set without attrs, and the design's truth.

    ``settings`` are keyword arguments of :func:`simulate_design` (``seed`` is ignored).
    """
    settings = {k: v for k, v in settings.items() if k != "seed"}
    truth = simulate_design(**settings, seed=0).attrs["truth"]  # validates the design once
    spec = replace(_make_spec(**truth.settings), settings=truth.settings)
    return (lambda rng: _simulate(spec, _as_rng(rng))[0]), truth


def response_sampler(settings: Mapping[str, Any]) -> tuple[pd.DataFrame, Any] | None:
    """For power: the design's predictors as a data set, and a function rng -> response.

    ``fn(rng)`` gives exactly the response of ``sampler(settings)[0](rng)``
    (the same draws in the same order), without building a data frame.  None
    when a covariate is drawn anew for every data set (the predictors change).
    """
    settings = {k: v for k, v in settings.items() if k != "seed"}
    truth = simulate_design(**settings, seed=0).attrs["truth"]
    spec = replace(_make_spec(**truth.settings), settings=truth.settings)
    if any(np.ndim(sd) == 0 for sd in spec.covariates.values()):
        return None
    rows = _skeleton(spec)
    levels = _factor_indices(spec, rows)
    covariates = _draw_covariates(spec, rows, np.random.default_rng(0))  # fixed values: draws nothing
    cols = _design_columns(spec, rows, levels, covariates)
    frame = _frame(spec, rows, levels, covariates, np.zeros(len(rows["group"])))
    return frame, (lambda rng: _draw_response(spec, rows, cols, _as_rng(rng))[0])
