"""The memory estimate against the measured peak (issue 22, item 9).

For each design a fresh subprocess builds the data, records its resident set
(``ru_maxrss`` after the data exist: the baseline of Python, numpy, pandas and
mixedmodels), fits the model and records the peak again.  The fit's own peak
is the difference; :func:`mixedmodels.design.size.model_memory` (or, for a
model without random effects, the size of X) is the estimate made before
anything is allocated.  The check is that estimate / measured lies within
[0.5, 2].

Run by hand (it fits models of a few hundred MB):

    python benchmarks/memory_estimate.py [--out benchmarks/results/DATE-memory-estimate.md]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

DESIGNS = {
    "crossed 3000 x 3000 levels, 20k rows: y ~ x + (1|a) + (1|b)": dict(kind="crossed", n=20_000, levels=3_000),
    "crossed 5000 x 5000 levels, 30k rows: y ~ x + (1|a) + (1|b)": dict(kind="crossed", n=30_000, levels=5_000),
    "crossed 20000 x 20000 levels, 50k rows (sparse rest block): y ~ x + (1|a) + (1|b)": dict(
        kind="crossed", n=50_000, levels=20_000
    ),
    "wide X, 200k rows x 60 columns: y ~ f + (1|g)": dict(kind="wide", n=200_000, levels=60),
}

_WORKER = r"""
import json, resource, sys, time, warnings
import numpy as np, pandas as pd
import mixedmodels as mm
from mixedmodels.design.inputs import prepare_inputs
from mixedmodels.design.size import model_memory

spec = json.loads(sys.argv[1])
rng = np.random.default_rng(1)
n, levels = spec["n"], spec["levels"]
if spec["kind"] == "crossed":
    data = pd.DataFrame({"y": rng.normal(size=n), "x": rng.normal(size=n),
                         "a": pd.Categorical(rng.integers(0, levels, n)), "b": pd.Categorical(rng.integers(0, levels, n))})
    formula = "y ~ x + (1 | a) + (1 | b)"
else:
    data = pd.DataFrame({"y": rng.normal(size=n), "f": pd.Categorical(rng.integers(0, levels, n)),
                         "g": pd.Categorical(rng.integers(0, 50, n))})
    formula = "y ~ f + (1 | g)"
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
inputs = prepare_inputs(formula, data)
estimate = model_memory(inputs.nobs, len(inputs.fixed.column_names), inputs.terms).total
del inputs
start = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    fit = mm.lmer(formula, data)
fit.ranef()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"baseline": base, "peak": peak, "estimate": estimate, "seconds": time.perf_counter() - start}))
"""


def measure(spec: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", _WORKER, json.dumps(spec)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", help="write the table (markdown) here too")
    parser.add_argument("--only", help="run only the designs whose name contains this text")
    args = parser.parse_args()
    lines = [
        "| design | estimate (MB) | measured peak above baseline (MB) | baseline (MB) | ratio |",
        "|---|---|---|---|---|",
    ]
    for name, spec in DESIGNS.items():
        if args.only and args.only not in name:
            continue
        r = measure(spec)
        used = r["peak"] - r["baseline"]
        lines.append(
            f"| {name} | {r['estimate'] / 1e6:.0f} | {used / 1e6:.0f} | {r['baseline'] / 1e6:.0f} | "
            f"{r['estimate'] / used:.2f} |"
        )
        print(lines[-1], flush=True)
    table = "\n".join(lines)
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write("# Memory estimate against measured peak RSS\n\n" + table + "\n")


if __name__ == "__main__":
    main()
