"""CPU time of GLMM fits with one scalar random-effects term, this tree against another ``src`` (interleaved).

    python benchmarks/bench_one_term.py --before /tmp/before/src --rounds 3 --fits 30

Each round runs, for each side in turn, one process per case that fits the model ``--fits`` times
warm (consecutive fits) and ``--fits`` times cold (``gc.collect()`` before each fit), and reports the
median CPU time (``time.process_time``) per fit.  The sides alternate process by process, so a change
of the machine's load falls on both.  Cases: cbpp (logit and cloglog), a grouseticks Poisson model
with one term, a simulated binary model with 200 levels, and negative binomial models with a known
theta: Owls NB(1), the grouseticks model NB(2), simulated counts NB(1.5) (80 levels x 8).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = r"""
import gc, json, sys, time, warnings
import numpy as np, pandas as pd
import mixedmodels as mm
warnings.simplefilter("ignore")
case, fits = sys.argv[1], int(sys.argv[2])
if case.startswith("cbpp"):
    data, formula = mm.datasets.load("cbpp"), "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    family = mm.families.Binomial(link="cloglog" if case.endswith("cloglog") else "logit")
elif case == "grouseticks1":
    data, formula, family = mm.datasets.load("grouseticks"), "TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)", "poisson"
elif case == "owls_nb1":
    data = mm.datasets.load("Owls")
    formula = "SiblingNegotiation ~ FoodTreatment * SexParent + offset(logBroodSize) + (1 | Nest)"
    family = mm.families.NegativeBinomial(theta=1.0)
elif case == "grouseticks1_nb2":
    data, formula = mm.datasets.load("grouseticks"), "TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)"
    family = mm.families.NegativeBinomial(theta=2.0)
elif case == "counts_nb":
    rng = np.random.default_rng(5)
    g = np.repeat(np.arange(80), 8)
    x = rng.normal(size=g.size)
    mu = np.exp(0.8 + 0.5 * x + 0.6 * rng.normal(size=80)[g])
    y = rng.negative_binomial(1.5, 1.5 / (1.5 + mu)).astype(float)
    data, formula = pd.DataFrame({"y": y, "x": x, "g": [f"L{k}" for k in g]}), "y ~ x + (1 | g)"
    family = mm.families.NegativeBinomial(theta=1.5)
else:
    rng = np.random.default_rng(11)
    g = np.repeat(np.arange(200), 6)
    x = rng.normal(size=g.size)
    eta = -0.4 + 0.8 * x + 0.9 * rng.normal(size=200)[g]
    y = (rng.random(g.size) < 1 / (1 + np.exp(-eta))).astype(float)
    data, formula, family = pd.DataFrame({"y": y, "x": x, "g": [f"L{k}" for k in g]}), "y ~ x + (1 | g)", "binomial"
fit = lambda: mm.glmer(formula, data, family=family)
for _ in range(3):
    m = fit()
warm, cold = [], []
for _ in range(fits):
    t = time.process_time(); fit(); warm.append(time.process_time() - t)
for _ in range(fits):
    gc.collect()
    t = time.process_time(); fit(); cold.append(time.process_time() - t)
print(json.dumps({"warm": float(np.median(warm)), "cold": float(np.median(cold)), "objective": m.objective,
                  "optimizer": m.optinfo.optimizer, "file": mm.__file__}))
"""

CASES = ["cbpp", "cbpp_cloglog", "grouseticks1", "simulated200", "owls_nb1", "grouseticks1_nb2", "counts_nb"]


def run(src: Path, case: str, fits: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src), OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", CHILD, case, str(fits)], env=env, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the other side's src directory")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fits", type=int, default=30)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--out", help="write the records as JSON here")
    args = parser.parse_args()
    sides = {"before": Path(args.before), "after": HERE.parent / "src"}
    records = []
    for r in range(args.rounds):
        for case in args.cases.split(","):
            for side, src in sides.items():
                rec = dict(run(src, case, args.fits), side=side, case=case, round=r, load=os.getloadavg()[0])
                records.append(rec)
                print(
                    f"round {r} {case:14s} {side:6s} warm {rec['warm'] * 1e3:7.2f} ms  cold {rec['cold'] * 1e3:7.2f} ms"
                    f"  objective {rec['objective']:.10f}  load {rec['load']:.2f}  ({rec['optimizer']})",
                    flush=True,
                )
    for case in args.cases.split(","):
        med = {
            (side, kind): statistics.median(x[kind] for x in records if x["case"] == case and x["side"] == side)
            for side in sides
            for kind in ("warm", "cold")
        }
        print(
            f"{case:14s} warm {med['before', 'warm'] * 1e3:.2f} -> {med['after', 'warm'] * 1e3:.2f} ms, "
            f"cold {med['before', 'cold'] * 1e3:.2f} -> {med['after', 'cold'] * 1e3:.2f} ms"
        )
    if args.out:
        Path(args.out).write_text(json.dumps(records, indent=1))


if __name__ == "__main__":
    main()
