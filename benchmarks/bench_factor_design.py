"""Time fixed-effects parts with factors, and the small fits they belong to, before vs after (issues #18, #19).

    PYTHONPATH=src python benchmarks/bench_factor_design.py --baseline OTHER/src [--rounds 4] [--repeats 15]

Each round runs two worker processes one after the other, the baseline version (``--baseline``, the
``src`` directory of another version, e.g. from ``git archive <commit> src | tar -x -C DIR``) and this
one, in alternating order; each worker times every case in its own process (a warm-up call, then
REPEATS timed calls; the fits with fewer) and reports the times.  The times of all rounds are pooled
and their medians compared; the 1-minute load average is recorded around every worker, since the
machine may be shared.  Cases: ``build_design`` of the fixed part on a model frame (what the model
functions call), and whole fits: the residual-structure fits of benchmarks/bench_issue19.py
(Orthodont var_ident, BodyWeight cor_ar1) and the GLMMs of benchmarks/cases.py (cbpp, VerbAgg,
grouseticks).  Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent

FIXED = {
    "X Orthodont age + Sex": ("Orthodont", "age + Sex"),
    "X BodyWeight Time * Diet": ("BodyWeight", "Time * Diet"),
    "X cbpp period": ("cbpp", "period"),
    "X VerbAgg Anger + Gender + btype + situ": ("VerbAgg", "Anger + Gender + btype + situ"),
    "X grouseticks YEAR + sHEIGHT": ("grouseticks", "YEAR + sHEIGHT"),
}
FITS = ["fit Orthodont var_ident", "fit BodyWeight cor_ar1", "fit cbpp", "fit VerbAgg", "fit grouseticks"]
SLOW = {"fit VerbAgg": 3, "fit grouseticks": 5}  # repeats of the slower fits (the others take REPEATS)


def _data(name: str):
    import mixedmodels as mm

    sys.path.insert(0, str(HERE))
    from cases import CASES, load

    by_data = {case.data: case for case in CASES.values()}
    df = load(by_data[name]) if name in by_data else mm.datasets.load(name).copy()
    if name == "BodyWeight":
        df["obs"] = df.groupby("Rat", observed=True).cumcount().astype(float) + 1.0
    return df


def _calls() -> dict:
    import mixedmodels as mm
    from mixedmodels.design.fixed import build_design
    from mixedmodels.design.frame import model_frame, required_variables

    sys.path.insert(0, str(HERE))
    from cases import CASES

    calls = {}
    for label, (name, rhs) in FIXED.items():
        frame = model_frame(_data(name), sorted(required_variables(rhs)))
        calls[label] = lambda frame=frame, rhs=rhs: build_design(rhs, frame)
    orthodont, bodyweight = _data("Orthodont"), _data("BodyWeight")
    calls["fit Orthodont var_ident"] = lambda: mm.lmer(
        "distance ~ age + Sex + (1 | Subject)", orthodont, weights=mm.var_ident("Sex")
    )
    calls["fit BodyWeight cor_ar1"] = lambda: mm.lmer(
        "weight ~ Time * Diet + (Time | Rat)", bodyweight, correlation=mm.cor_ar1("obs", group="Rat")
    )
    for label, key in [("fit cbpp", "cbpp"), ("fit VerbAgg", "verbagg"), ("fit grouseticks", "grouseticks")]:
        case = CASES[key]
        df = _data(case.data)
        calls[label] = lambda case=case, df=df: mm.glmer(case.formula, df, family=case.family)
    return calls


def worker(repeats: int) -> None:
    """Time every case in this process; print ``{label: [seconds, ...]}`` as JSON."""
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for label, call in _calls().items():
            call()  # warm-up: imports, caches
            times = []
            for _ in range(SLOW.get(label, repeats)):
                start = time.perf_counter()
                call()
                times.append(time.perf_counter() - start)
            out[label] = times
    print(json.dumps(out))


def _run(src: str, repeats: int) -> dict:
    env = {**os.environ, "PYTHONPATH": src}
    command = ["nice", "-n", "10", sys.executable, __file__, "--worker", "--repeats", str(repeats)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", help="src directory of the version to compare with")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--worker", action="store_true")
    args = parser.parse_args()
    if args.worker:
        worker(args.repeats)
        return
    current = str(HERE.parent / "src")
    versions = {"before": args.baseline, "after": current}
    pooled: dict[str, dict[str, list[float]]] = {"before": {}, "after": {}}
    loads = []
    for r in range(args.rounds):
        for which in ("before", "after") if r % 2 == 0 else ("after", "before"):
            loads.append(os.getloadavg()[0])
            for label, times in _run(versions[which], args.repeats).items():
                pooled[which].setdefault(label, []).extend(times)
        loads.append(os.getloadavg()[0])
    print(f"load average (1 min) around the workers: {', '.join(f'{x:.1f}' for x in loads)}\n")
    print("| case | before (ms) | after (ms) | after/before | timed calls each |")
    print("|---|---:|---:|---:|---:|")
    for label in pooled["after"]:
        b, a = (statistics.median(pooled[w][label]) * 1e3 for w in ("before", "after"))
        print(f"| {label} | {b:.2f} | {a:.2f} | {a / b:.2f} | {len(pooled['after'][label])} |")


if __name__ == "__main__":
    main()
