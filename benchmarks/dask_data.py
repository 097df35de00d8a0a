"""Seeded synthetic Parquet data sets larger than memory, for the Dask benchmark (written chunk by chunk).

``repeated``
    Repeated measures: ``y ~ x + (1 + x | subject)``, ``obs`` rows per subject::

        y = b0 + b1 x + u0_s + u1_s x + e,   (u0_s, u1_s) ~ N(0, [[sd0^2, rho sd0 sd1], [., sd1^2]]).

    Full size: 1,000,000 subjects x 200 observations = 200,000,000 rows.

``crossed``
    Users crossed with items: ``y ~ x + (1 + x | user) + (1 | item)``, every
    user rates ``obs`` items drawn uniformly (with replacement)::

        y = b0 + b1 x + u0_u + u1_u x + w_i + e.

    Full size: 200,000 users x 100 ratings over 2,000 items = 20,000,000 rows.

Each file holds the rows of a block of consecutive subjects (users), as data
partitioned by person usually arrive; ``subject``/``user`` and ``item`` are
int64 ids, ``x ~ N(0, 1)``.  Block ``b`` is drawn from
``default_rng([seed, b])`` (the item effects from ``default_rng([seed, 0, 1])``),
so the same seed gives the same files on any machine and whatever the block
size, and no more than one block (``rows_per_file`` rows) is ever in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Design", "DESIGNS", "write"]

# b0, b1, sd0, sd1, rho, sd_item, sigma
TRUTH = {"(Intercept)": 0.5, "x": 0.3, "sd0": 0.8, "sd1": 0.4, "rho": 0.3, "sd_item": 0.5, "sigma": 1.0}


@dataclass(frozen=True)
class Design:
    """A synthetic design: its formula, group column and full size (groups x rows per group)."""

    name: str
    formula: str
    group: str
    groups: int
    obs: int
    items: int = 0

    @property
    def rows(self) -> int:
        return self.groups * self.obs

    def scaled(self, fraction: float) -> "Design":
        """The same design with ``fraction`` of the groups (the rows per group kept)."""
        return Design(
            self.name, self.formula, self.group, max(2, int(round(self.groups * fraction))), self.obs, self.items
        )


DESIGNS = {
    "repeated": Design("repeated", "y ~ x + (1 + x | subject)", "subject", 1_000_000, 200),
    "crossed": Design("crossed", "y ~ x + (1 + x | user) + (1 | item)", "user", 200_000, 100, 2_000),
}


def _block(design: Design, first: int, count: int, seed: int, item_effects: np.ndarray | None):
    rng = np.random.default_rng([seed, first])
    t = TRUTH
    cov = np.array([[t["sd0"] ** 2, t["rho"] * t["sd0"] * t["sd1"]], [t["rho"] * t["sd0"] * t["sd1"], t["sd1"] ** 2]])
    u = rng.multivariate_normal(np.zeros(2), cov, size=count)
    group = np.repeat(np.arange(count), design.obs)
    x = rng.standard_normal(group.size)
    y = t["(Intercept)"] + t["x"] * x + u[group, 0] + u[group, 1] * x + rng.normal(0.0, t["sigma"], size=group.size)
    columns = {design.group: (first + group).astype(np.int64)}
    if item_effects is not None:
        item = rng.integers(0, design.items, size=group.size)
        y = y + item_effects[item]
        columns["item"] = item.astype(np.int64)
    return {"y": y, "x": x, **columns}


def write(
    design: Design,
    folder: str | Path,
    seed: int = 20261122,
    rows_per_file: int = 10_000_000,
    row_group: int = 1_000_000,
) -> list[Path]:
    """Write ``design`` as Parquet files ``part-00000.parquet`` ... in ``folder``; returns their paths."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    per_file = max(1, rows_per_file // design.obs)
    items = None
    if design.items:
        items = np.random.default_rng([seed, 0, 1]).normal(0.0, TRUTH["sd_item"], size=design.items)
    paths = []
    for number, first in enumerate(range(0, design.groups, per_file)):
        block = _block(design, first, min(per_file, design.groups - first), seed, items)
        path = folder / f"part-{number:05d}.parquet"
        pq.write_table(pa.table(block), path, row_group_size=row_group)
        paths.append(path)
    return paths
