"""sleepstudy with two incomplete subjects: partial pooling predicts where no pooling cannot.

We add two made-up subjects to sleepstudy: "373", measured once (day 0), and "374",
measured on days 0 and 1 only.  A separate regression for 373 has no slope at all
and the one for 374 is a straight line through two noisy points; the mixed model
gives both a sensible line by borrowing strength from the other 18 subjects, and
moves them much further toward the population line than the complete subjects
(their shrinkage is largest because they carry the least information).

Run:  python docs/examples/sleepstudy_incomplete.py [--fast] [--out DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import pandas as pd

import mixedmodels as mm

FORMULA = "Reaction ~ Days + (Days | Subject)"
EXTRA = pd.DataFrame({"Reaction": [286.0, 245.0, 297.0], "Days": [0.0, 0.0, 1.0], "Subject": ["373", "374", "374"]})


def incomplete_sleepstudy() -> pd.DataFrame:
    """sleepstudy plus subjects 373 (one observation) and 374 (two)."""
    sleep = mm.datasets.load("sleepstudy")
    levels = list(sleep["Subject"].cat.categories) + ["373", "374"]
    data = pd.concat([sleep.astype({"Subject": str}), EXTRA], ignore_index=True)
    data["Subject"] = pd.Categorical(data["Subject"], categories=levels)
    return data


def main(fast: bool = False, out: Path | None = None) -> dict:
    """Fit the three approaches; returns per-subject estimates and shrinkage."""
    data = incomplete_sleepstudy()
    cmp = mm.compare_pooling(FORMULA, data)
    no, partial = cmp.estimates("no"), cmp.estimates("partial")
    print(f"{cmp.partial_fit.nobs} observations, {len(cmp.levels)} subjects\n")
    print("subject  n   no pooling (intercept, slope)   partial pooling (intercept, slope)")
    counts = data["Subject"].value_counts()
    for subject in ["308", "335", "373", "374"]:
        a, b = no.loc[subject]
        c, d = partial.loc[subject]
        print(f"{subject:>7} {counts[subject]:>2}   {a:8.1f} {b:8.2f}                    {c:8.1f} {d:8.2f}")
    population = cmp.partial_fit.fixef
    print(f"\npopulation line (fixed effects): {population['(Intercept)']:.1f} + {population['Days']:.2f} * Days")
    shrink = cmp.shrinkage
    slope_shift = shrink[shrink["term"] == "Days"].set_index("group")["fraction"]
    print("fraction of the way from the own slope to the population slope:",
          ", ".join(f"{g} {slope_shift[g]:.2f}" for g in ["308", "335", "374"]))
    _save_plots(cmp, out)
    return {"no": no, "partial": partial, "shrinkage": shrink, "population": population}


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
