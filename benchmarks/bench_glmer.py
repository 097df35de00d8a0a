"""Time glmer fits (median of several runs after one warm-up); run from the repository root:

    PYTHONPATH=src python benchmarks/bench_glmer.py [--runs 7] [case ...]

Cases: verbagg (the issue's target: under 1 s), verbagg_probit, cbpp, cbpp_agq25,
grouseticks.  Prints wall-clock and CPU medians, evaluations and the logLik, and the
load average (the machine is shared: a loaded machine inflates wall-clock times).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

import mixedmodels as mm

CASES = {
    "verbagg": ("r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)", "VerbAgg", "binomial", 1),
    "verbagg_probit": (
        "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)",
        "VerbAgg",
        mm.families.Binomial(link="probit"),
        1,
    ),
    "cbpp": ("cbind(incidence, size - incidence) ~ period + (1 | herd)", "cbpp", "binomial", 1),
    "cbpp_agq25": ("cbind(incidence, size - incidence) ~ period + (1 | herd)", "cbpp", "binomial", 25),
    "grouseticks": (
        "TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)",
        "grouseticks",
        "poisson",
        1,
    ),
}


def bench(name: str, runs: int) -> None:
    formula, data_name, family, nagq = CASES[name]
    data = mm.datasets.load(data_name)
    walls, cpus = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mm.glmer(formula, data, family=family, nAGQ=nagq)  # warm-up (imports, caches)
        for _ in range(runs):
            wall, cpu = time.perf_counter(), time.process_time()
            fit = mm.glmer(formula, data, family=family, nAGQ=nagq)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    print(
        f"{name:15s} median wall {statistics.median(walls):6.3f} s  (min {min(walls):.3f})  "
        f"median cpu {statistics.median(cpus):6.3f} s  evaluations {fit.optinfo.feval:4d}  "
        f"logLik {fit.loglik:.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cases", nargs="*", help=f"cases to time (default verbagg): {', '.join(CASES)}")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    unknown = sorted(set(args.cases) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    for name in args.cases or ["verbagg"]:
        bench(name, args.runs)


if __name__ == "__main__":
    main()
