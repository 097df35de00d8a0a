"""The slides' three Bayesian models -- complete, no and partial pooling -- fitted with mm.bayes.

"Did the Raptors improve?" (LSA 2019 slides, "Multilevel ('mixed effects') models"): points
scored per player per game, ``points ~ game``, for 17 players over 82 games.  The real data
are not shipped, so :func:`raptors_like` simulates such a season with a fixed seed.  The
slides fit, with ``N(0, 1000^2)`` priors on every coefficient and ``HalfCauchy(0, 100)`` on SDs:

1. **complete pooling** (model 1): ``points ~ N(a0 + D game, sigma^2)`` -- ``mm.bayes.lm``;
2. **no pooling**: a coefficient per player with a fixed, diffuse prior, ``P_j ~ N(0, 1000^2)``
   -- ``mm.bayes.lmer("points ~ game + (1 | player)")`` with ``sd = Fixed(1000)``, sampled
   centred so it mixes cleanly; as the slides say, ``a0`` and the ``P_j`` are identified only
   by their priors (``a0`` has a posterior SD of ~1000 / sqrt(17)), so read the players'
   coefficients ``a0 + P_j`` (``coef()``, ``hdi(effects="ran_coefs")``) or the centred
   effects ``P_j - mean(P)``;
3. **partial pooling** (model 3): the same with the players' SD learned, ``Psd ~ HalfCauchy(0, 100)``.

``mm.compare_pooling(..., method="bayes")`` fits the three side by side (its no-pooling model
gives each player an own intercept, ``0 + player``, with the same N(0, 1000^2) prior) and draws
the shrinkage picture.  Every fit reports its R-hat and divergent transitions.

Run:  python docs/examples/bayesian_pooling.py [--fast] [--out DIR]   (needs mixedmodels[bayes])
"""

from __future__ import annotations

import argparse
import importlib.util
import warnings
from pathlib import Path

import pandas as pd

import mixedmodels as mm

FORMULA = "points ~ game + (1 | player)"


def raptors_like(seed: int = 2018) -> pd.DataFrame:
    """17 players x 82 games: points = 8 + 0.02 game + player effect (SD 5) + noise (SD 5)."""
    data = mm.simulate_design(
        n_groups=17,
        n_obs=82,
        covariates={"game": range(1, 83)},
        fixed={"Intercept": 8.0, "game": 0.02},
        group_sd=5.0,
        sigma=5.0,
        response="points",
        group="player",
        seed=seed,
    )
    return data[["player", "game", "points"]]


def priors(sd):
    """The slides' priors: N(0, 1000^2) on coefficients, HalfCauchy(0, 100) on sigma, ``sd`` on the players' SD."""
    out = {"fixef": mm.priors.Normal(0, 1000), "sigma": mm.priors.HalfCauchy(0, 100)}
    return out if sd is None else {**out, "sd": sd}


def checks(name: str, fit) -> dict:
    d = fit.diagnostics
    print(f"{name:<16} R-hat max {d['max_r_hat']:.4f}   divergent transitions {d['divergences']}")
    return {"max_r_hat": d["max_r_hat"], "divergences": d["divergences"]}


def main(fast: bool = False, out: Path | None = None, data: pd.DataFrame | None = None, formula: str = FORMULA) -> dict:
    """Fit the three models (and the side-by-side comparison); returns fits, checks and the comparison."""
    data = raptors_like() if data is None else data
    response, rest = (part.strip() for part in formula.split("~"))
    fixed = rest.split("+ (")[0].strip()
    sampler = {
        "draws": 500 if fast else 1000,
        "warmup": 500 if fast else 1000,
        "chains": 4,
        "seed": 1,
        "progress": False,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.bayes.SamplingWarning)  # the checks below report them
        fits = {
            "complete": mm.bayes.lm(f"{response} ~ {fixed}", data, priors=priors(None), **sampler),
            "no (taught)": mm.bayes.lmer(formula, data, priors=priors(mm.priors.Fixed(1000)), **sampler),
            "partial": mm.bayes.lmer(formula, data, priors=priors(mm.priors.HalfCauchy(0, 100)), **sampler),
        }
        cmp = mm.compare_pooling(fits["partial"], method="bayes", no_pooling_prior=mm.priors.Normal(0, 1000))
    report = {name: checks(name, fit) for name, fit in fits.items()}
    report["no (0 + player)"] = checks("no (0 + player)", cmp.no_pooling_fit.results)
    print()
    print(fits["complete"].summary())
    no = fits["no (taught)"]
    group = no.terms[0].group
    effects = no.ranef(draws=True)[group]
    centred = effects.sub(effects.mean(axis=1), axis=0)  # the slides' centring: P_j - mean(P)
    print(
        f"\nno pooling: a0 = {no.fixef['(Intercept)']:.1f} (posterior SD {no.parameters()['(Intercept)'].std():.0f}: "
        "the prior's), but each player's coefficient a0 + P_j is well determined:"
    )
    table = no.hdi(effects="ran_coefs").query("term == '(Intercept)'").set_index("level")[["mean", "lower", "upper"]]
    table["centred effect"] = centred.mean().to_numpy()
    print(table.head(6).round(2).to_string())
    print("\nside by side (posterior means; lower/upper: 95 % HDI):")
    print(cmp.table.head(9).round(2).to_string())
    _save_plot(cmp, out)
    return {"fits": fits, "checks": report, "comparison": cmp, "data": data}


def _save_plot(cmp, out: Path | None) -> None:
    if out is None or importlib.util.find_spec("matplotlib") is None:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    fig = cmp.plot_shrinkage()
    fig.savefig(out / "bayesian_pooling_shrinkage.png", dpi=100, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="shorter chains (used by the tests)")
    parser.add_argument("--out", type=Path, help="folder for the picture")
    args = parser.parse_args()
    main(fast=args.fast, out=args.out)
