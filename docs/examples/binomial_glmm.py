"""A binomial GLMM: proportions and correct/incorrect answers with random effects.

Part 1 is lme4's classic: contagious bovine pleuropneumonia (``cbpp``), the number of
new cases out of the herd size in four periods, with a random intercept per herd.
The response ``cbind(successes, failures)`` is written as in R; estimates are on the
log-odds scale, and ``exp()`` turns them into odds ratios.

Part 2 simulates an accuracy experiment -- participants x items, one binary answer
each, a condition that varies between items -- and recovers the log-odds effect with
``correct ~ condition + (1 | participant) + (1 | item)``.

Run:  python docs/examples/binomial_glmm.py [--fast]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

import mixedmodels as mm

TRUE = {"(Intercept)": 0.5, "condition": 0.8, "participant_sd": 1.0, "item_sd": 0.5}


def cbpp_odds_ratios() -> tuple[object, pd.DataFrame]:
    """Fit lme4's cbpp model; return the fit and the odds ratios with Wald 95 % intervals."""
    cbpp = mm.datasets.load("cbpp")
    fit = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family="binomial")
    z = 1.959963984540054
    table = pd.DataFrame(
        {
            "odds ratio": np.exp(fit.fixef),
            "2.5 %": np.exp(fit.fixef - z * fit.se),
            "97.5 %": np.exp(fit.fixef + z * fit.se),
        }
    )
    return fit, table


def simulate_accuracy(n_participants: int, n_items: int, seed: int = 5) -> pd.DataFrame:
    """One binary answer per participant and item; logit P(correct) = 0.5 + 0.8 condition + u_p + w_i."""
    rng = np.random.default_rng(seed)
    p = np.repeat(np.arange(n_participants), n_items)
    i = np.tile(np.arange(n_items), n_participants)
    condition = (i % 2) - 0.5  # items alternate between the two conditions
    eta = (
        TRUE["(Intercept)"]
        + TRUE["condition"] * condition
        + rng.normal(0, TRUE["participant_sd"], n_participants)[p]
        + rng.normal(0, TRUE["item_sd"], n_items)[i]
    )
    return pd.DataFrame(
        {
            "participant": pd.Categorical.from_codes(p, [f"p{k + 1:02d}" for k in range(n_participants)]),
            "item": pd.Categorical.from_codes(i, [f"i{k + 1:02d}" for k in range(n_items)]),
            "condition": condition,
            "correct": rng.binomial(1, 1.0 / (1.0 + np.exp(-eta))),
        }
    )


def main(fast: bool = False) -> dict:
    """Run both parts; returns the two fits and the odds-ratio table."""
    cbpp_fit, odds = cbpp_odds_ratios()
    print(cbpp_fit.summary())
    print("\nodds ratios (relative to period 1):")
    print(odds.round(3).to_string())
    data = simulate_accuracy(*((30, 16) if fast else (60, 40)))
    accuracy = mm.glmer("correct ~ condition + (1 | participant) + (1 | item)", data, family="binomial")
    print(f"\nsimulated accuracy experiment ({len(data)} answers):")
    for name in ("(Intercept)", "condition"):
        print(
            f"  {name:<12} true {TRUE[name]:+.2f}  estimated {accuracy.fixef[name]:+.2f} (SE {accuracy.se[name]:.2f})"
        )
    return {"cbpp": cbpp_fit, "odds_ratios": odds, "accuracy": accuracy}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="small settings (used by the tests)")
    main(fast=parser.parse_args().fast)
