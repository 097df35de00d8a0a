"""Residual structures at 1k-100k rows: nlme against mixedmodels in one run, and where our time goes.

    PYTHONPATH=src python benchmarks/bench_resid_scaling.py [--sizes 1000,10000,100000] [--name NAME]

Issue #19's speed goal (10x nlme) is set on the reference fits of 100-400 rows, where both
packages' times are mostly fixed costs.  This benchmark simulates two designs with a fixed 10
observations per subject and more subjects as the data grow:

* ``ar1``: ``y = 1 + 0.5 t + b_subject + e``, ``t = 1..10``, ``b ~ N(0, 1)``, ``e`` AR(1) within
  subject with ``phi = 0.6``, SD 1; fitted as ``y ~ t + (1 | subject)`` with
  ``correlation=mm.cor_ar1("t", group="subject")`` (nlme: ``corAR1(form = ~ t | subject)``);
* ``varident``: ``y = 1 + 0.5 x + b_subject + e``, ``x ~ N(0, 1)``, residual SD 1, 1.5 and 0.7 in
  three strata assigned at random per row; ``weights=mm.var_ident("stratum")`` (nlme:
  ``varIdent(form = ~ 1 | stratum)``).

Both REML.  R (benchmarks/resid_scaling_worker.R, nlme::lme) reads the same CSV files.  For
mixedmodels it times the whole ``mm.lmer`` call, and its parts: the model's set-up
(``LinearMixedModel.from_formula``: input building plus the structure's binding and stored
pieces), and of that the input building alone (the same model without the structure), and the fit
(optimizer, start, checks, results).  Writes benchmarks/results/<date>-resid-scaling[-NAME].{md,json}.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
import warnings
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

import mixedmodels as mm
from mixedmodels.lmm.model import LinearMixedModel

HERE = Path(__file__).resolve().parent
PER_SUBJECT = 10


def simulate(kind: str, nrows: int, seed: int = 1) -> pd.DataFrame:
    """The ``kind`` design (see the module docstring) with ``nrows`` rows (``nrows / 10`` subjects)."""
    rng = np.random.default_rng(seed)
    nsub = nrows // PER_SUBJECT
    subject = np.repeat(np.arange(nsub), PER_SUBJECT)
    t = np.tile(np.arange(1, PER_SUBJECT + 1), nsub).astype(float)
    b = rng.standard_normal(nsub)[subject]
    x = rng.standard_normal(nsub * PER_SUBJECT)
    stratum = rng.integers(0, 3, nsub * PER_SUBJECT)
    if kind == "ar1":
        e = np.empty((nsub, PER_SUBJECT))
        e[:, 0] = rng.standard_normal(nsub)
        for k in range(1, PER_SUBJECT):
            e[:, k] = 0.6 * e[:, k - 1] + np.sqrt(1 - 0.36) * rng.standard_normal(nsub)
        y = 1 + 0.5 * t + b + e.ravel()
    else:
        y = 1 + 0.5 * x + b + np.array([1.0, 1.5, 0.7])[stratum] * rng.standard_normal(nsub * PER_SUBJECT)
    return pd.DataFrame(
        {
            "subject": [f"s{i:05d}" for i in subject],
            "t": t,
            "x": x,
            "stratum": np.array(["a", "b", "c"])[stratum],
            "y": y,
        }
    )


def _spec(kind: str) -> tuple[str, dict]:
    if kind == "ar1":
        return "y ~ t + (1 | subject)", dict(correlation=mm.cor_ar1("t", group="subject"))
    return "y ~ x + (1 | subject)", dict(weights=mm.var_ident("stratum"))


def time_python(kind: str, data: pd.DataFrame, repeats: int) -> dict:
    """Median seconds of the whole call, the set-up, the plain model's set-up and the fit; -2 log L."""
    formula, kwargs = _spec(kind)
    weights, correlation = kwargs.get("weights"), kwargs.get("correlation")
    build = lambda: LinearMixedModel.from_formula(formula, data, weights=weights, correlation=correlation)  # noqa: E731
    plain = lambda: LinearMixedModel.from_formula(formula, data)  # noqa: E731
    m = mm.lmer(formula, data, **kwargs)  # warm-up (and numba's compiled kernels)
    times: dict[str, list[float]] = {"whole": [], "setup": [], "inputs": [], "fit": []}
    for _ in range(repeats):
        for name, call in (("whole", lambda: mm.lmer(formula, data, **kwargs)), ("setup", build), ("inputs", plain)):
            gc.collect()
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
        model = build()
        gc.collect()
        start = time.perf_counter()
        m = model.fit()
        times["fit"].append(time.perf_counter() - start)
    out = {name: statistics.median(values) for name, values in times.items()}
    out["raw"] = times
    out["minus2logLik"] = float(-2 * m.loglik)
    out["feval"] = int(m.optinfo.feval)
    out["params"] = [float(v) for v in m.model.residual.params]
    return out


def time_r(files: list[tuple[Path, str]], repeats: int) -> dict[str, dict]:
    cmd = ["Rscript", str(HERE / "resid_scaling_worker.R"), str(repeats)]
    for path, kind in files:
        cmd += [str(path), kind]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    out = {}
    for line in done.stdout.splitlines():
        if line.startswith("@@BENCH "):
            item = json.loads(line[len("@@BENCH ") :])
            item["seconds"] = [float(v) for v in np.atleast_1d(item["seconds"])]  # one fit: jsonlite unboxes it
            out[item["file"]] = item
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--name", default="")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            repeats = 5 if size <= 1000 else (3 if size <= 10000 else 1)
            files = []
            for kind in ("ar1", "varident"):
                path = Path(tmp) / f"{kind}_{size}.csv"
                data = simulate(kind, size)
                data.to_csv(path, index=False)
                files.append((path, kind, data))
            load_r = os.getloadavg()[0]
            r = time_r([(p, k) for p, k, _ in files], repeats)
            load_py = os.getloadavg()[0]
            for path, kind, data in files:
                py = time_python(kind, data, repeats)
                rows.append(
                    dict(kind=kind, nrows=size, repeats=repeats, r=r[path.name], python=py, load=(load_r, load_py))
                )
                print(_row(rows[-1]), flush=True)
    _write(rows, args.name)


def _row(row: dict) -> str:
    r, py = row["r"], row["python"]
    r_median = statistics.median(r["seconds"])
    structure = py["setup"] - py["inputs"]
    fixed = py["setup"] / py["whole"]
    rel = (py["minus2logLik"] - r["minus2logLik"]) / abs(r["minus2logLik"])
    return (
        f"| {row['kind']} | {row['nrows']:,} | {row['repeats']} | {1e3 * r_median:.1f} | {1e3 * py['whole']:.1f} | "
        f"{r_median / py['whole']:.1f} | {1e3 * py['inputs']:.1f} | {1e3 * structure:.1f} | {1e3 * py['fit']:.1f} | "
        f"{100 * fixed:.0f} % | {r['minus2logLik']:.6f} | {py['minus2logLik']:.6f} | {rel:+.1e} | "
        f"{row['load'][0]:.1f} / {row['load'][1]:.1f} |"
    )


def _write(rows: list[dict], name: str) -> None:
    stem = HERE / "results" / f"{date.today().isoformat()}-resid-scaling{'-' + name if name else ''}"
    header = (
        "| design | rows | fits | nlme (ms) | mixedmodels (ms) | nlme / ours | our input building (ms) | "
        "structure set-up (ms) | fit (ms) | set-up share of ours | -2 log L nlme | -2 log L ours | "
        "(ours - nlme) / |nlme| | load (R / Python) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    )
    lines = [f"# Residual structures at scale against nlme ({date.today().isoformat()})", "", header]
    lines += [_row(row) for row in rows]
    lines += ["", f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}."]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    stem.with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
