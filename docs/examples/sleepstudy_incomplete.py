"""sleepstudy with two incomplete subjects: partial pooling predicts where no pooling cannot.

The lecture's worked example ("Linear mixed effects models 2", after Tristan Mahr's post
"Plotting partial pooling in mixed-effects models"): sleepstudy plus two made-up subjects,
374 measured on days 0 and 1 (Reaction 286, 288) and 373 measured once, on day 0 (245).
A separate regression for 373 has no slope at all (NA) and the one for 374 is a straight
line through two points (286 + 2 * Days); the mixed model gives both a sensible line by
borrowing strength from the other 18 subjects, and moves them much further toward the
population line than the complete subjects (they carry the least information).

The script prints the lecture's tables as R prints them: the no-pooling estimates (one
``lm(Reaction ~ Days)`` per subject) and ``coef()`` of the three mixed models with random
intercepts ``(1 | Subject)``, random slopes ``(0 + Days | Subject)`` and both
``(1 + Days | Subject)``.  Every number agrees with the lecture's, but for a few last
digits of the model with both: its REML criterion is so flat there that lme4 versions stop
at slightly different points (1e-8 apart in the criterion; e.g. subject 374's intercept
271.1451 in the lecture, 271.1450 with lme4 1.1-31, 271.1447 at the tight optimum, which
is what mixedmodels finds).

Run:  python docs/examples/sleepstudy_incomplete.py [--fast] [--out DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import pandas as pd

import mixedmodels as mm
from mixedmodels.tables import r_table

FORMULAS = {
    "random intercepts": "Reaction ~ 1 + Days + (1 | Subject)",
    "random slopes": "Reaction ~ 1 + Days + (0 + Days | Subject)",
    "random intercepts and slopes": "Reaction ~ 1 + Days + (1 + Days | Subject)",
}
EXTRA = pd.DataFrame({"Reaction": [286.0, 288.0, 245.0], "Days": [0.0, 1.0, 0.0], "Subject": ["374", "374", "373"]})


def incomplete_sleepstudy() -> pd.DataFrame:
    """sleepstudy plus subject 374 (days 0 and 1) and 373 (day 0 only), levels in R's sorted order."""
    sleep = mm.datasets.load("sleepstudy")
    data = pd.concat([sleep.astype({"Subject": str}), EXTRA], ignore_index=True)
    data["Subject"] = pd.Categorical(data["Subject"], categories=sorted(data["Subject"].unique()))
    return data


def print_r(title: str, table: pd.DataFrame) -> None:
    """A table as R prints a data frame (each column to 7 significant digits, NA where missing)."""
    print(title)
    print(r_table(table, layout="matrix"))
    print()


def main(fast: bool = False, out: Path | None = None) -> dict:
    """Fit the three approaches; returns the tables (``no``, ``coef``) and the comparison's shrinkage."""
    data = incomplete_sleepstudy()
    counts = data["Subject"].value_counts()
    print(
        f"{len(data)} observations, {data['Subject'].nunique()} subjects; "
        f"373 has {counts['373']} observation, 374 has {counts['374']}\n"
    )

    complete = mm.lm("Reaction ~ Days", data)
    print(
        f"complete pooling, lm(Reaction ~ Days): {complete.fixef['(Intercept)']:.4f} + "
        f"{complete.fixef['Days']:.5f} * Days\n"
    )

    cmp = mm.compare_pooling(FORMULAS["random intercepts and slopes"], data)
    no = cmp.estimates("no").rename(columns={"(Intercept)": "intercept", "Days": "days"})
    print_r("no pooling: lm(Reaction ~ Days) for each subject (373's slope cannot be estimated: NA)", no)

    coef = {}
    for name, formula in FORMULAS.items():
        fit = mm.lmer(formula, data)
        coef[name] = fit.coef()["Subject"]
        print_r(f"partial pooling, {name}: coef(lmer({formula!r}))\n$Subject", coef[name])

    population = cmp.partial_fit.fixef
    print(f"population line (fixed effects): {population['(Intercept)']:.1f} + {population['Days']:.2f} * Days")
    shrink = cmp.shrinkage
    slope_shift = shrink[shrink["term"] == "Days"].set_index("group")["fraction"]
    print(
        "fraction of the way from the own slope to the population slope:",
        ", ".join(f"{g} {slope_shift[g]:.2f}" for g in ["308", "335", "374"]),
    )
    _save_plots(cmp, out)
    return {
        "data": data,
        "no": cmp.estimates("no"),
        "partial": cmp.estimates("partial"),
        "coef": coef,
        "shrinkage": shrink,
        "population": population,
        "complete": complete,
    }


def _save_plots(cmp, out: Path | None) -> None:
    if out is None or importlib.util.find_spec("matplotlib") is None:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    for name, fig in (("pooling", cmp.plot()), ("shrinkage", cmp.plot_shrinkage())):
        fig.savefig(out / f"sleepstudy_incomplete_{name}.png", dpi=100, bbox_inches="tight")
        plt.close(fig)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="small settings (used by the tests)")
    parser.add_argument("--out", type=Path, help="folder for the pictures")
    args = parser.parse_args()
    main(fast=args.fast, out=args.out)
