"""The simulated designs of mixed-model teaching, a few lines each, fitted back.

Every design is one call to ``mm.simulate_design``; the data set carries its
generating parameters in ``data.attrs["truth"]``, including an lme4 formula that
matches the design, so each one is simulated, fitted and compared with the truth:

1. all participants alike (no between-participant variation at all);
2. participants different (intercepts and slopes vary);
3. one outlier participant;
4. partial pooling with a random-intercept SD of 0.5;
5. 100 participants x 2 conditions x 10 trials, intercepts and slopes correlated (rho = 0.7);
6. 100 participants x 50 stimuli x 5 trials, crossed.

Run:  python docs/examples/teaching_designs.py [--fast]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pandas as pd

import mixedmodels as mm

LINE = dict(covariates={"x": 1.0}, fixed={"(Intercept)": 2.0, "x": 0.5}, sigma=1.0)


def designs(fast: bool = False) -> dict[str, dict]:
    """Keyword arguments of simulate_design for each teaching design (smaller when fast)."""
    j, j_big, items, trials = (10, 40, 20, 2) if fast else (10, 100, 50, 5)
    return {
        "alike": dict(n_groups=j, n_obs=20, **LINE, group_sd={"(Intercept)": 0.0, "x": 0.0}),
        "different": dict(n_groups=j, n_obs=20, **LINE, group_sd={"(Intercept)": 1.0, "x": 0.5}),
        "one outlier": dict(
            n_groups=j,
            n_obs=20,
            **LINE,
            group_sd={"(Intercept)": 0.3, "x": 0.1},
            outliers=1,
            outlier_shift={"(Intercept)": 4.0, "x": -1.5},
        ),
        "partial pooling, SD 0.5": dict(n_groups=20, n_obs=10, fixed={"(Intercept)": 1.0}, group_sd=0.5, sigma=1.0),
        "2 conditions, rho 0.7": dict(
            n_groups=j_big,
            n_obs=10,
            within={"condition": ["A", "B"]},
            fixed={"(Intercept)": 800.0, "conditionB": 50.0},
            group_sd={"(Intercept)": 100.0, "conditionB": 60.0},
            group_corr=0.7,
            sigma=50.0,
        ),
        "participants x stimuli": dict(
            n_groups=j_big,
            n_obs=trials,
            n_items=items,
            between_items={"category": {"ingroup": -0.5, "outgroup": 0.5}},
            fixed={"(Intercept)": 800.0, "category": 50.0},
            group_sd={"(Intercept)": 100.0, "category": 40.0},
            group_corr=0.2,
            item_sd=80.0,
            sigma=200.0,
        ),
    }


def compare(fit, truth) -> pd.DataFrame:
    """Truth next to the estimate (and its SE for fixed effects): fixed effects, random-effect SDs, residual SD."""
    rows = [(f"fixed {k}", v, float(fit.fixef[k]), float(fit.se[k])) for k, v in truth.fixef.items()]
    vc = fit.varcorr.set_index(["grp", "var1", "var2"])["sdcor"]
    for grp, cov in (("participant", truth.group_cov), ("item", truth.item_cov)):
        if cov is None:
            continue
        for k in cov.index:
            rows.append((f"SD {grp} {k}", float(np.sqrt(cov.loc[k, k])), float(vc.get((grp, k, None), np.nan)), np.nan))
    rows.append(("SD residual", truth.sigma, float(fit.sigma), np.nan))
    return pd.DataFrame(rows, columns=["parameter", "truth", "estimate", "se"]).set_index("parameter")


def main(fast: bool = False, seed: int = 7) -> dict:
    """Simulate and fit every design; returns, per design, the truth-vs-estimate table."""
    tables = {}
    for k, (name, kwargs) in enumerate(designs(fast).items()):
        data = mm.simulate_design(**kwargs, seed=seed + k)
        truth = data.attrs["truth"]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit = mm.lmer(truth.formula, data)
        tables[name] = compare(fit, truth)
        print(f"\n== {name}: {len(data)} rows, {truth.formula}")
        print(tables[name].round(3).to_string())
        for w in caught:
            print(f"   (lmer: {w.message})")
    return tables


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="small settings (used by the tests)")
    main(fast=parser.parse_args().fast)
