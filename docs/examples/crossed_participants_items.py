"""Participants and items crossed: every participant rates every stimulus.

100 participants x 50 stimuli x 5 trials.  The stimuli belong to one of two
categories (ingroup / outgroup, coded -0.5 / +0.5), so category varies within
participants but between stimuli.  Participants differ in baseline (SD 100 ms) and in
their category effect (SD 40 ms, correlation 0.2 with the baseline); stimuli differ in
baseline (SD 80 ms); the residual SD is 200 ms; the true category effect is 50 ms.

The model with both crossed factors, ``(1 + category | participant) + (1 | item)``,
recovers the parameters.  Leaving the items out treats 25 stimuli per category as if
they were the whole population: the standard error of the category effect collapses,
and the test becomes far too optimistic -- the "language-as-fixed-effect fallacy".

Run:  python docs/examples/crossed_participants_items.py [--fast]
"""

from __future__ import annotations

import argparse

import mixedmodels as mm

DESIGN = dict(
    between_items={"category": {"ingroup": -0.5, "outgroup": 0.5}},
    fixed={"(Intercept)": 800.0, "category": 50.0},
    group_sd={"(Intercept)": 100.0, "category": 40.0},
    group_corr=0.2,
    item_sd=80.0,
    sigma=200.0,
)


def main(fast: bool = False, seed: int = 1) -> dict:
    """Simulate, fit with and without the item factor; returns both fits and the truth."""
    n_groups, n_items, n_trials = (30, 20, 2) if fast else (100, 50, 5)
    data = mm.simulate_design(n_groups, n_trials, n_items=n_items, **DESIGN, seed=seed)
    truth = data.attrs["truth"]
    print(f"{len(data)} rows: {n_groups} participants x {n_items} items x {n_trials} trials")
    print(f"true model: {truth.formula}\n")
    crossed = mm.lmer(truth.formula, data)
    no_items = mm.lmer("y ~ category + (1 + category | participant)", data)
    print(crossed.summary())
    print("\nvariance components, truth vs estimate:")
    vc = crossed.varcorr[crossed.varcorr["var2"].isna()]
    estimated = {(r.grp, r.var1 if isinstance(r.var1, str) else ""): r.sdcor for r in vc.itertuples()}
    true_sd = {
        ("participant", "(Intercept)"): 100.0,
        ("participant", "category"): 40.0,
        ("item", "(Intercept)"): 80.0,
        ("Residual", ""): 200.0,
    }
    for (grp, var), true in true_sd.items():
        print(f"  {grp + ' ' + var:<24} true SD {true:6.1f}   estimated {estimated[(grp, var)]:6.1f}")
    print("\ncategory effect (true 50):")
    for label, fit in (("participants and items", crossed), ("participants only", no_items)):
        est, se = fit.fixef["category"], fit.se["category"]
        print(f"  {label:<24} {est:6.1f}  SE {se:5.1f}  t {est / se:5.2f}")
    return {"crossed": crossed, "no_items": no_items, "truth": truth}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="small settings (used by the tests)")
    main(fast=parser.parse_args().fast)
