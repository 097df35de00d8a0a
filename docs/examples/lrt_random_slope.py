"""A likelihood-ratio test of a random slope: do subjects differ in how sleep loss affects them?

Compare ``Reaction ~ Days + (1 | Subject)`` (subjects differ only in baseline) with
``Reaction ~ Days + (Days | Subject)`` (they also differ in their slope, which adds the
slope variance and its correlation with the intercept: 2 parameters).

The statistic is twice the difference in log-likelihood, by hand from two fits:

    LR = 2 (logLik_1 - logLik_0)  ~  chi-square with 2 df  (approximately)

Because a variance cannot be negative, the null hypothesis sits on the boundary of
the parameter space and the plain chi-square(2) p-value is conservative; a common
correction uses the 50:50 mixture of chi-square(1) and chi-square(2).

lme4's ``anova(m0, m1)`` refits both models by maximum likelihood before comparing;
lmerTest's ``ranova(m1)`` compares REML fits.  Both are shown, by hand and with
``mm.anova`` / ``mm.ranova``.

Run:  python docs/examples/lrt_random_slope.py [--fast]
"""

from __future__ import annotations

import argparse
import warnings

from scipy import stats

import mixedmodels as mm

SMALL = "Reaction ~ Days + (1 | Subject)"
LARGE = "Reaction ~ Days + (Days | Subject)"


def lrt(loglik_small: float, loglik_large: float, df: int = 2) -> dict:
    """LR statistic with the plain chi-square p-value and the 50:50 boundary mixture."""
    stat = 2.0 * (loglik_large - loglik_small)
    plain = stats.chi2.sf(stat, df)
    mixture = 0.5 * stats.chi2.sf(stat, df - 1) + 0.5 * plain
    return {"statistic": stat, "p": plain, "p_mixture": mixture}


def main(fast: bool = False) -> dict:
    """Both versions of the test by hand, then with mm.anova and mm.ranova."""
    sleep = mm.datasets.load("sleepstudy")
    ml = lrt(mm.lmer(SMALL, sleep, REML=False).loglik, mm.lmer(LARGE, sleep, REML=False).loglik)
    reml = lrt(mm.lmer(SMALL, sleep).loglik, mm.lmer(LARGE, sleep).loglik)
    for label, r in (("ML fits (lme4's anova)", ml), ("REML fits (lmerTest's ranova)", reml)):
        print(
            f"{label:<30} LR = {r['statistic']:.3f}, p = {r['p']:.3g} (chi-square 2 df), "
            f"{r['p_mixture']:.3g} (boundary mixture)"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.MixedModelsWarning)  # "refitting model(s) with ML"
        table = mm.anova(mm.lmer(SMALL, sleep), mm.lmer(LARGE, sleep))
    print("\nmm.anova(m0, m1):")
    print(table.to_string())
    ranova = mm.ranova(mm.lmer(LARGE, sleep))
    print("\nmm.ranova(m1):")
    print(ranova.to_string())
    return {"ml": ml, "reml": reml, "anova": table, "ranova": ranova}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="small settings (used by the tests)")
    main(fast=parser.parse_args().fast)
