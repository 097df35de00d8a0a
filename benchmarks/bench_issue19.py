"""Time issue #19's model classes against the R packages they are checked against, in one run.

    PYTHONPATH=src python benchmarks/bench_issue19.py [--repeats 7] [--rounds 2] [--cases a,b] [--name NAME]
        [--baseline OTHER/src] [--numba]

Cases are the reference fits of tests/reference/make_{glmmtmb_covstruct,nlme_residual,negbin}.R:
structured covariances (mm.lmer with diag/cs/ar1 against glmmTMB), residual structures
(mm.lmer with var_ident/cor_ar1 against nlme::lme) and negative binomial GLMMs (mm.glmer_nb
against lme4's glmer.nb and glmmTMB's nbinom2; a known theta against glmer). Each round runs R
(benchmarks/issue19_worker.R: every case in one R process, a warm-up fit then REPEATS timed fits
of the call alone) and then Python (the same, in this process), so load bursts hit both; the
times of all rounds are pooled and their medians compared. The 1-minute load average is recorded
around every block: the machine is shared, and a loaded machine inflates both sides' times.
With ``--baseline`` (the ``src`` directory of another version, e.g. from
``git archive <commit> src | tar -x -C DIR``) each round also times that version, in a
subprocess between R and this version, so a before/after comparison shares the same load.
Writes benchmarks/results/<date>-issue19[-NAME].{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

import mixedmodels as mm

HERE = Path(__file__).resolve().parent


def _data(name: str) -> pd.DataFrame:
    """A bundled data set with the derived columns of the issue #19 R scripts."""
    df = mm.datasets.load(name).copy()
    if name == "sleepstudy":
        days = df["Days"].to_numpy()
        df["Phase3"] = pd.Categorical(np.where(days <= 2, "d0_2", np.where(days <= 5, "d3_5", "d6_9")))
        df["DayPair"] = pd.Categorical((days // 2).astype(int).astype(str), categories=list("01234"), ordered=True)
    group = {"BodyWeight": "Rat", "Ovary": "Mare"}.get(name)
    if group is not None:
        df["obs"] = df.groupby(group, observed=True).cumcount().astype(float) + 1.0
    return df


@dataclass
class Case:
    id: str
    kind: str  # "covariance", "residual", "negbin"
    data: str
    fit: Callable[[pd.DataFrame], object]
    r_cases: tuple[str, ...]  # worker ids of the R fits it is compared with
    times: list[float] = field(default_factory=list)
    minus2ll: float = float("nan")


def _lmer(formula: str, reml: bool, **kwargs):
    return lambda d: mm.lmer(formula, d, REML=reml, **kwargs)


def _cases() -> list[Case]:
    out = []
    for name, formula in [
        ("diag", "Reaction ~ Days + diag(Days | Subject)"),
        ("cs", "Reaction ~ Days + cs(0 + Phase3 | Subject)"),
        ("ar1_pairs", "Reaction ~ Days + ar1(0 + DayPair | Subject)"),
    ]:
        for reml in (False, True):
            cid = f"{name}_{'reml' if reml else 'ml'}"
            out.append(Case(cid, "covariance", "sleepstudy", _lmer(formula, reml), (cid,)))
    residual = [
        ("orthodont_varident", "distance ~ age + Sex + (1 | Subject)", "Orthodont", dict(weights=mm.var_ident("Sex"))),
        (
            "sleepstudy_ar1",
            "Reaction ~ Days + (1 | Subject)",
            "sleepstudy",
            dict(correlation=mm.cor_ar1("Days", group="Subject")),
        ),
        (
            "ovary_ar1",
            "follicles ~ np.sin(2 * np.pi * Time) + np.cos(2 * np.pi * Time) + (1 | Mare)",
            "Ovary",
            dict(correlation=mm.cor_ar1("obs", group="Mare")),
        ),
        (
            "bodyweight_ar1",
            "weight ~ Time * Diet + (Time | Rat)",
            "BodyWeight",
            dict(correlation=mm.cor_ar1("obs", group="Rat")),
        ),
    ]
    for name, formula, data, kwargs in residual:
        for reml in (True, False):
            cid = f"{name}_{'reml' if reml else 'ml'}"
            out.append(Case(cid, "residual", data, _lmer(formula, reml, **kwargs), (cid,)))
    grouse = "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)"
    owls = "SiblingNegotiation ~ FoodTreatment * SexParent + offset(logBroodSize) + (1 | Nest)"
    out += [
        Case(
            "nb_grouseticks",
            "negbin",
            "grouseticks",
            lambda d: mm.glmer_nb(grouse, d),
            ("nb_grouseticks_lme4", "nb_grouseticks_glmmTMB"),
        ),
        Case("nb_owls", "negbin", "Owls", lambda d: mm.glmer_nb(owls, d), ("nb_owls_lme4", "nb_owls_glmmTMB")),
        Case(
            "nb_owls_theta1",
            "negbin",
            "Owls",
            lambda d: mm.glmer(owls, d, family=mm.families.NegativeBinomial(theta=1.0)),
            ("nb_owls_theta1_lme4",),
        ),
    ]
    return out


def _load() -> float:
    return os.getloadavg()[0]


def run_python(cases: list[Case], repeats: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for case in cases:
            data = _data(case.data)
            fit = case.fit(data)  # warm-up
            for _ in range(repeats):
                start = time.perf_counter()
                fit = case.fit(data)
                case.times.append(time.perf_counter() - start)
            case.minus2ll = -2.0 * fit.loglik


def run_baseline(src: str, cases: list[Case], repeats: int, numba: bool = False) -> dict[str, dict]:
    """Time the same cases with the mixedmodels of ``src`` (a subprocess with it first on the path)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--python-only", "--repeats", str(repeats)]
    cmd += ["--numba"] if numba else []
    cmd += ["--cases", ",".join(c.id for c in cases)]
    env = {**os.environ, "PYTHONPATH": src}
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return json.loads(done.stdout.splitlines()[-1])


def run_r(ids: list[str], repeats: int) -> dict[str, dict]:
    cmd = ["Rscript", str(HERE / "issue19_worker.R"), str(repeats), ",".join(ids)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    out = {}
    for line in done.stdout.splitlines():
        if line.startswith("@@BENCH "):
            item = json.loads(line[len("@@BENCH ") :])
            item["seconds"] = item["seconds"] if isinstance(item["seconds"], list) else [item["seconds"]]
            out[item["case"]] = item
    return out


def _table(
    cases: list[Case], r_times: dict[str, list[float]], r_m2ll: dict[str, float], before: dict[str, dict] | None
) -> list[str]:
    if before:
        return _before_after_table(cases, r_times, r_m2ll, before)
    lines = [
        "| case | R fit | R median (ms) | mixedmodels median (ms) | R / mixedmodels | -2 log L: R, mixedmodels |",
        "|---|---|---:|---:|---:|---|",
    ]
    for case in cases:
        ours = statistics.median(case.times) * 1e3
        for rid in case.r_cases:
            theirs = statistics.median(r_times[rid]) * 1e3
            tool = _tool(rid, case)
            lines.append(
                f"| {case.id} | {tool} | {theirs:.1f} | {ours:.1f} | {theirs / ours:.1f} | "
                f"{r_m2ll[rid]:.4f}, {case.minus2ll:.4f} |"
            )
    return lines


def _tool(rid: str, case: Case) -> str:
    if "glmmTMB" in rid or case.kind == "covariance":
        return "glmmTMB"
    return "nlme" if case.kind == "residual" else "lme4"


def _before_after_table(
    cases: list[Case], r_times: dict[str, list[float]], r_m2ll: dict[str, float], before: dict[str, dict]
) -> list[str]:
    lines = [
        "| case | R fit | R median (ms) | before (ms) | after (ms) | R / before | R / after | "
        "-2 log L: R, before, after |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for case in cases:
        ours = statistics.median(case.times) * 1e3
        old = statistics.median(before[case.id]["seconds"]) * 1e3
        for rid in case.r_cases:
            theirs = statistics.median(r_times[rid]) * 1e3
            lines.append(
                f"| {case.id} | {_tool(rid, case)} | {theirs:.1f} | {old:.1f} | {ours:.1f} | {theirs / old:.1f} | "
                f"{theirs / ours:.1f} | {r_m2ll[rid]:.4f}, {before[case.id]['minus2logLik']:.4f}, "
                f"{case.minus2ll:.4f} |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--cases", default="", help="comma-separated case ids (default: all)")
    parser.add_argument("--name", default="")
    parser.add_argument("--baseline", default="", help="the src directory of another version, timed in each round")
    parser.add_argument(
        "--numba",
        action="store_true",
        help="import numba first (both versions), as a session that has loaded it: the kernels that are used only "
        "once numba is loaded (e.g. the residual structures' derivatives) then run compiled",
    )
    parser.add_argument("--python-only", action="store_true", help=argparse.SUPPRESS)  # the baseline's subprocess
    args = parser.parse_args()
    if args.numba:
        import numba  # noqa: F401
    cases = _cases()
    if args.cases:
        wanted = set(args.cases.split(","))
        cases = [c for c in cases if c.id in wanted]
    if args.python_only:
        run_python(cases, args.repeats)
        print(json.dumps({c.id: {"seconds": c.times, "minus2logLik": c.minus2ll} for c in cases}))
        return
    before: dict[str, dict] = {}
    r_ids = [rid for c in cases for rid in c.r_cases]
    r_times: dict[str, list[float]] = {rid: [] for rid in r_ids}
    r_m2ll: dict[str, float] = {}
    loads = []
    for round_ in range(args.rounds):
        loads.append(("R", round_, _load()))
        for rid, item in run_r(r_ids, args.repeats).items():
            r_times[rid] += item["seconds"]
            r_m2ll[rid] = item["minus2logLik"]
        if args.baseline:
            loads.append(("before", round_, _load()))
            for cid, item in run_baseline(args.baseline, cases, args.repeats, args.numba).items():
                kept = before.setdefault(cid, {"seconds": [], "minus2logLik": item["minus2logLik"]})
                kept["seconds"] += item["seconds"]
        loads.append(("python", round_, _load()))
        run_python(cases, args.repeats)
    loads.append(("end", args.rounds, _load()))
    stamp = time.strftime("%Y-%m-%d")
    name = f"{stamp}-issue19" + (f"-{args.name}" if args.name else "")
    header = [
        f"# Issue #19 model classes against R ({stamp})",
        "",
        f"{args.rounds} rounds x (R, then Python) x {args.repeats} timed fits per case after one warm-up; medians of "
        "all timed fits. R times are system.time() of the call alone (in one R process); Python times perf_counter() "
        "around the mm.* call (formula and data in, results out).",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"mixedmodels {mm.__version__}. 1-minute load average at each block's start: "
        + ", ".join(f"{who} {r}: {load:.1f}" for who, r, load in loads)
        + ".",
        "",
    ]
    if args.numba:
        header += ["numba was imported before the fits (--numba), in both versions.", ""]
    if args.baseline:
        header += [
            "Before: the version at --baseline, timed in a subprocess after R in every round; after: this one.",
            "",
        ]
    lines = header + _table(cases, r_times, r_m2ll, before or None)
    print("\n".join(lines))
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    (results / f"{name}.md").write_text("\n".join(lines) + "\n")
    raw = {
        "loads": loads,
        "repeats": args.repeats,
        "rounds": args.rounds,
        "python": {c.id: {"seconds": c.times, "minus2logLik": c.minus2ll, "r_cases": c.r_cases} for c in cases},
        "R": {rid: {"seconds": r_times[rid], "minus2logLik": r_m2ll.get(rid)} for rid in r_ids},
        "before": before,
    }
    (results / f"{name}.json").write_text(json.dumps(raw, indent=1) + "\n")
    print(f"\nwrote {results / name}.md and .json", file=sys.stderr)


if __name__ == "__main__":
    main()
