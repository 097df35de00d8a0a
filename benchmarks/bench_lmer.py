"""Time lmer fits on the bundled data (run by hand; never in CI).

    python benchmarks/bench_lmer.py [--repeats 5] [--cases insteval,sleepstudy]

Prints, and writes to benchmarks/results/lmer.md, the median wall time of
``repeats`` fits after one warm-up fit, in one process, with evaluations and
time per objective evaluation.  The machine is shared and noisy: quote medians.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
import warnings
from datetime import date
from pathlib import Path

import mixedmodels as mm

CASES = {
    "sleepstudy": ("Reaction ~ Days + (Days | Subject)", "sleepstudy"),
    "penicillin": ("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin"),
    "pastes": ("strength ~ 1 + (1 | batch/cask)", "Pastes"),
    "insteval": ("y ~ service + (1 | s) + (1 | d) + (1 | dept:service)", "InstEval"),
}


def time_case(formula: str, data, repeats: int) -> dict:
    """Median seconds of whole lmer calls (formula to results), plus the optimizer's log."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mm.lmer(formula, data)  # warm-up
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            fit = mm.lmer(formula, data)
            seconds.append(time.perf_counter() - start)
    return {
        "median_s": statistics.median(seconds),
        "min_s": min(seconds),
        "feval": fit.optinfo.feval,
        "ms_per_eval": 1000 * fit.optinfo.seconds / fit.optinfo.feval,
        "objective": fit.objective,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    rows = ["| case | median (s) | min (s) | evaluations | ms / evaluation | objective |", "|---|---|---|---|---|---|"]
    for name in args.cases.split(","):
        formula, data_name = CASES[name]
        r = time_case(formula, mm.datasets.load(data_name), args.repeats)
        rows.append(f"| {name} | {r['median_s']:.3f} | {r['min_s']:.3f} | {r['feval']} | {r['ms_per_eval']:.2f} | {r['objective']:.4f} |")
        print(rows[-1], flush=True)
    header = f"# lmer timings\n\n{date.today()}, {platform.processor() or platform.machine()}, {args.repeats} repeats after a warm-up.\n\n"
    out = Path(__file__).parent / "results" / "lmer.md"
    out.write_text(header + "\n".join(rows) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
