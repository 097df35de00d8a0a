"""Complete, no and partial pooling on simulated participants: alike, different, one outlier.

Eight participants, a handful of trials each, y = a_j + b_j x + noise.  We know the
true a_j and b_j because we simulated them, so we can ask which approach gets
closest to each participant's own line:

* complete pooling (one regression for everyone) is right only when everyone is alike;
* no pooling (one regression per participant) is unbiased but noisy with few trials;
* partial pooling (the mixed model) adapts: close to complete pooling when participants
  are alike, close to no pooling when they differ, and it does not let one outlier
  drag everybody else.

Run:  python docs/examples/pooling_three_ways.py [--fast] [--out DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import warnings
from pathlib import Path

import numpy as np

import mixedmodels as mm

BASE = dict(n_groups=8, n_obs=6, covariates={"x": 1.0}, fixed={"(Intercept)": 2.0, "x": 1.0}, sigma=1.0)
SCENARIOS = {
    "alike": dict(group_sd={"(Intercept)": 0.0, "x": 0.0}),
    "different": dict(group_sd={"(Intercept)": 1.5, "x": 0.75}),
    "one outlier": dict(
        group_sd={"(Intercept)": 0.3, "x": 0.15}, outliers=1, outlier_shift={"(Intercept)": 5.0, "x": -2.0}
    ),
}
APPROACHES = ("complete", "no", "partial")


def rmse(estimates, truth) -> float:
    """Root mean squared distance between estimated and true per-participant coefficients."""
    diff = estimates[truth.columns].to_numpy() - truth.to_numpy()
    return float(np.sqrt(np.nanmean(diff**2)))


def main(fast: bool = False, out: Path | None = None, seed: int = 2024) -> dict:
    """Simulate each scenario, compare the three approaches with the truth; returns the errors."""
    errors = {}
    for k, (name, extra) in enumerate(SCENARIOS.items()):
        data = mm.simulate_design(**BASE, **extra, seed=seed + k)
        truth = data.attrs["truth"]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cmp = mm.compare_pooling(truth.formula, data)
        true_coef = truth.coef()[["(Intercept)", "x"]]
        errors[name] = {a: rmse(cmp.estimates(a), true_coef) for a in APPROACHES}
        print(
            f"{name:>12}: distance from each participant's true line (RMSE) -- "
            + ", ".join(f"{a} pooling {errors[name][a]:.3f}" for a in APPROACHES)
        )
        for w in caught:  # e.g. "alike": the true SDs are 0, so a singular fit is the right answer
            print(f"{'':>12}  (lmer: {w.message})")
        if name == "one outlier":
            outlier = truth.outlier_groups[0]
            print(
                f"{'':>12}  outlier {outlier}: true {true_coef.loc[outlier].round(2).to_dict()}, "
                f"partial pooling {cmp.estimates('partial').loc[outlier].round(2).to_dict()}"
            )
        _save_plot(cmp, out, name)
    return errors


def _save_plot(cmp, out: Path | None, name: str) -> None:
    if out is None or importlib.util.find_spec("matplotlib") is None:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    fig = cmp.plot()
    fig.savefig(out / f"pooling_{name.replace(' ', '_')}.png", dpi=100, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="small settings (used by the tests)")
    parser.add_argument("--out", type=Path, help="folder for the pictures")
    args = parser.parse_args()
    main(fast=args.fast, out=args.out)
