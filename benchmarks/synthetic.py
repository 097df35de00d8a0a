"""Seeded synthetic designs for the benchmark suite, with their true parameters.

Two designs, each a plain pandas DataFrame (grouping columns are Categoricals
with string levels, so every tool and R read them alike):

``crossed``
    ``y ~ x + (1 + x | subject) + (1 | item)``: every row is one subject
    meeting one item (items drawn uniformly at random, with replacement), a
    row-level covariate ``x ~ N(0, 1)``::

        y = b0 + b1 x + (u0_s + u1_s x) + w_i + e,
        (u0_s, u1_s) ~ N(0, [[sd0^2, rho sd0 sd1], [., sd1^2]]),
        w_i ~ N(0, sd_item^2),  e ~ N(0, sigma^2).

    Full size: 1,000,000 rows, 10,000 subjects (100 rows each) x 2,000 items.

``nested``
    ``y ~ x + (1 | outer/inner)``: inner groups nested in outer groups, inner
    labels repeat within every outer group (``inner`` alone does not identify a
    group; ``outer:inner`` does)::

        y = b0 + b1 x + a_o + c_(o,i) + e.

    Full size: 500,000 rows, 100,000 inner groups (5 rows each) in 1,000 outer
    groups (100 inner each).

Rows are shuffled (data rarely arrive sorted by group), and the same seed
gives the same frame on every machine (numpy's PCG64 ``default_rng``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["SyntheticDesign", "crossed", "nested"]


@dataclass(frozen=True)
class SyntheticDesign:
    """A generated data set with the model that generated it."""

    data: pd.DataFrame
    formula: str
    truth: dict[str, float] = field(default_factory=dict)


def _labels(prefix: str, n: int) -> list[str]:
    """``n`` string levels ``prefix0 .. prefix{n-1}``."""
    return [f"{prefix}{i}" for i in range(n)]


def _factor(codes: np.ndarray, levels: list[str]) -> pd.Categorical:
    return pd.Categorical.from_codes(codes.astype(np.int32), categories=levels)


def crossed(
    n_rows: int = 1_000_000,
    n_subjects: int = 10_000,
    n_items: int = 2_000,
    seed: int = 20240601,
    *,
    beta: tuple[float, float] = (0.5, 0.3),
    sd_subject: tuple[float, float] = (0.8, 0.4),
    rho: float = 0.3,
    sd_item: float = 0.5,
    sigma: float = 1.0,
) -> SyntheticDesign:
    """Subjects crossed with items, a random slope for subjects (see module docstring).

    ``n_rows`` must be a multiple of ``n_subjects`` (every subject has the same
    number of rows).
    """
    if n_rows % n_subjects:
        raise ValueError(f"n_rows ({n_rows}) must be a multiple of n_subjects ({n_subjects})")
    rng = np.random.default_rng(seed)
    subject = np.repeat(np.arange(n_subjects), n_rows // n_subjects)
    item = rng.integers(0, n_items, size=n_rows)
    x = rng.standard_normal(n_rows)
    cov = np.array(
        [
            [sd_subject[0] ** 2, rho * sd_subject[0] * sd_subject[1]],
            [rho * sd_subject[0] * sd_subject[1], sd_subject[1] ** 2],
        ]
    )
    u = rng.multivariate_normal(np.zeros(2), cov, size=n_subjects)
    w = rng.normal(0.0, sd_item, size=n_items)
    y = beta[0] + beta[1] * x + u[subject, 0] + u[subject, 1] * x + w[item] + rng.normal(0.0, sigma, size=n_rows)
    order = rng.permutation(n_rows)
    data = pd.DataFrame(
        {
            "y": y[order],
            "x": x[order],
            "subject": _factor(subject[order], _labels("s", n_subjects)),
            "item": _factor(item[order], _labels("i", n_items)),
        }
    )
    truth = {
        "(Intercept)": beta[0],
        "x": beta[1],
        "sd subject (Intercept)": sd_subject[0],
        "sd subject x": sd_subject[1],
        "cor subject": rho,
        "sd item": sd_item,
        "sigma": sigma,
    }
    return SyntheticDesign(data, "y ~ x + (1 + x | subject) + (1 | item)", truth)


def nested(
    n_rows: int = 500_000,
    n_inner: int = 100_000,
    n_outer: int = 1_000,
    seed: int = 20240602,
    *,
    beta: tuple[float, float] = (1.0, -0.2),
    sd_outer: float = 0.7,
    sd_inner: float = 0.5,
    sigma: float = 1.0,
) -> SyntheticDesign:
    """Inner groups nested in outer groups (see module docstring).

    ``n_inner`` must be a multiple of ``n_outer`` and ``n_rows`` of ``n_inner``.
    """
    if n_inner % n_outer or n_rows % n_inner:
        raise ValueError(f"need n_inner ({n_inner}) | n_outer ({n_outer}) and n_rows ({n_rows}) | n_inner")
    rng = np.random.default_rng(seed)
    per_outer = n_inner // n_outer
    inner_id = np.repeat(np.arange(n_inner), n_rows // n_inner)  # unique inner group
    outer = inner_id // per_outer
    inner_label = inner_id % per_outer  # repeats within every outer group
    x = rng.standard_normal(n_rows)
    a = rng.normal(0.0, sd_outer, size=n_outer)
    c = rng.normal(0.0, sd_inner, size=n_inner)
    y = beta[0] + beta[1] * x + a[outer] + c[inner_id] + rng.normal(0.0, sigma, size=n_rows)
    order = rng.permutation(n_rows)
    data = pd.DataFrame(
        {
            "y": y[order],
            "x": x[order],
            "outer": _factor(outer[order], _labels("o", n_outer)),
            "inner": _factor(inner_label[order], _labels("n", per_outer)),
        }
    )
    truth = {"(Intercept)": beta[0], "x": beta[1], "sd outer": sd_outer, "sd inner:outer": sd_inner, "sigma": sigma}
    return SyntheticDesign(data, "y ~ x + (1 | outer/inner)", truth)
