"""Simpson's paradox: the x-y slope flips sign once the groups are modelled.

Within every group y *falls* with x (slope -1), but groups with larger x also have
a much larger baseline, so across groups y *rises* with x.  One regression that
ignores the groups reports the positive between-group trend; the mixed model with a
random intercept per group recovers the negative within-group slope.  Splitting x
into its group mean and the deviation from it (the "within-between" or Mundlak
model) shows both slopes at once.

Run:  python docs/examples/simpsons_paradox.py [--fast]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

import mixedmodels as mm

WITHIN_SLOPE = -1.0  # y on x inside a group
BASELINE_PER_X = 3.0  # a group's baseline rises by 3 per unit of its mean x


def simulate(n_groups: int = 8, n_per_group: int = 25, seed: int = 11) -> pd.DataFrame:
    """Groups centred at x = 2, 4, 6, ...; y = 3 * centre + (-1) * (x - centre) + noise, plus a group effect."""
    rng = np.random.default_rng(seed)
    group = np.repeat(np.arange(n_groups), n_per_group)
    centre = 2.0 * (group + 1)
    x = centre + rng.normal(0.0, 1.0, group.size)
    baseline = BASELINE_PER_X * centre + rng.normal(0.0, 1.0, n_groups)[group]
    y = baseline + WITHIN_SLOPE * (x - centre) + rng.normal(0.0, 0.5, group.size)
    labels = [f"g{j + 1}" for j in range(n_groups)]
    return pd.DataFrame({"group": pd.Categorical.from_codes(group, labels), "x": x, "y": y})


def main(fast: bool = False) -> dict:
    """Fit OLS, the random-intercept model and the within-between model; returns the slopes."""
    data = simulate(n_groups=6 if fast else 8, n_per_group=15 if fast else 25)
    data["x_mean"] = data.groupby("group", observed=True)["x"].transform("mean")
    data["x_within"] = data["x"] - data["x_mean"]
    ols = mm.lm("y ~ x", data)
    mixed = mm.lmer("y ~ x + (1 | group)", data)
    mundlak = mm.lmer("y ~ x_within + x_mean + (1 | group)", data)
    slopes = {
        "ols": float(ols.fixef["x"]),
        "lmer": float(mixed.fixef["x"]),
        "within": float(mundlak.fixef["x_within"]),
        "between": float(mundlak.fixef["x_mean"]),
    }
    print(f"ignoring the groups   y ~ x:                 slope {slopes['ols']:+.2f}")
    print(
        f"random intercepts     y ~ x + (1 | group):   slope {slopes['lmer']:+.2f}  (true within-group slope {WITHIN_SLOPE:+.0f})"
    )
    print(
        f"within-between model  within {slopes['within']:+.2f}, between {slopes['between']:+.2f}"
        f"  (true between-group slope {BASELINE_PER_X:+.0f})"
    )
    return slopes


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="small settings (used by the tests)")
    main(fast=parser.parse_args().fast)
