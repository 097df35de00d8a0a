"""Benchmark suite: mixedmodels against lme4, glmm, mixedlm and statsmodels, in one run.

    python benchmarks/run.py                       # every default case, every installed tool
    python benchmarks/run.py --quick               # 1 timed run each: does everything work?
    python benchmarks/run.py --large --timeout 1800  # adds the 1M-row crossed and 500k nested designs
    python benchmarks/run.py --cases insteval --tools mixedmodels,mixedmodels-autoblas,lme4

Run by hand, never in CI.  For every (case, tool) a fresh process (Python
``worker.py`` or ``Rscript lme4_worker.R``) loads the data, fits once to warm
up, then ``--repeats`` timed fits; the table reports the median of the timed
fits, the ratio tool / mixedmodels (above 1: mixedmodels is faster), the peak
memory a fit added to its process, the tool's objective evaluations and -2
log-likelihood (REML criterion for REML fits), so a fast but different answer
shows.  A tool that cannot express a case is "n/a" with the reason; one that
runs past ``--timeout`` seconds (warm-up and repeats together) is "timeout".

``mixedmodels-autoblas`` is mixedmodels run with OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE unset (in that process only), to show what the environment's
forced OpenBLAS kernel costs.  ``mixedmodels-before`` is mixedmodels at the
commit given by ``--before COMMIT`` (its ``src/`` exported with ``git archive``),
so that a change is measured against the code it replaces in the same run.

Writes ``benchmarks/results/<date>.md`` (``<date>-quick.md`` with ``--quick``)
(or ``<name>.md`` with ``--name``) and the raw records beside it as JSON; a
run with neither ``--quick`` nor ``--name`` also replaces ``latest.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from importlib.util import find_spec
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import cases as _cases  # noqa: E402
from report import write_report  # noqa: E402

TAG = "@@BENCH "
ALL_TOOLS = ["mixedmodels", "lme4", "glmm", "mixedlm", "statsmodels", "mixedmodels-autoblas", "mixedmodels-before"]
DEFAULT_TOOLS = ALL_TOOLS[:5]
_MODULE = {"glmm": "glmm", "mixedlm": "mixedlm", "statsmodels": "statsmodels"}


def tool_available(tool: str) -> str | None:
    """None when the tool can run here, else why not."""
    if tool == "lme4":
        if shutil.which("Rscript") is None:
            return "Rscript not found"
        probe = subprocess.run(
            [
                "Rscript",
                "-e",
                "suppressPackageStartupMessages({library(lme4); library(jsonlite); library(data.table)})",
            ],
            capture_output=True,
        )
        return None if probe.returncode == 0 else "R packages lme4, jsonlite or data.table missing"
    module = _MODULE.get(tool)
    if module and find_spec(module) is None:
        return f"not installed (pip install {module})"
    return None


BEFORE_SRC: list[Path] = []  # the exported src/ of --before, when given


def export_before(commit: str, workdir: Path) -> Path:
    """``src/`` of the repository at ``commit``, exported into ``workdir`` (``git archive``)."""
    target = workdir / "before"
    target.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "src"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target / "src"


def _child_env(tool: str, blas_threads: int | None = None) -> dict[str, str]:
    env = dict(os.environ)
    if blas_threads:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(blas_threads)
    source = BEFORE_SRC[0] if tool == "mixedmodels-before" and BEFORE_SRC else ROOT / "src"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source), env.get("PYTHONPATH", "")]))
    if tool == "mixedmodels-autoblas":
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
    return env


def _r_spec(case: _cases.Case, repeats: int, workdir: Path) -> Path:
    """Write the case's data as CSV plus a JSON spec for lme4_worker.R; return the spec's path."""
    csv = workdir / f"{case.name}.csv"
    spec = workdir / f"{case.name}.json"
    if not spec.exists():
        df = _cases.load(case)
        df.to_csv(csv, index=False)
        spec.write_text(
            json.dumps(
                {
                    "csv": str(csv),
                    "formula": case.formula,
                    "family": case.family,
                    "levels": _cases.factor_levels(df),
                    "ordered": _cases.ordered_columns(df),
                    "repeats": repeats,
                }
            )
        )
    return spec


def run_one(
    tool: str, case: _cases.Case, repeats: int, timeout: float, workdir: Path, blas_threads: int | None = None
) -> dict:
    """Run one (tool, case) in a child process; return its parsed records."""
    if tool == "lme4":
        command = ["Rscript", str(HERE / "lme4_worker.R"), str(_r_spec(case, repeats, workdir))]
    else:
        command = [sys.executable, str(HERE / "worker.py"), tool, case.name, "--repeats", str(repeats)]
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_child_env(tool, blas_threads),
        start_new_session=True,
    )
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    records = [json.loads(line[len(TAG) :]) for line in out.splitlines() if line.startswith(TAG)]
    result = {
        "tool": tool,
        "case": case.name,
        "records": records,
        "timed_out": timed_out,
        "timeout": timeout,
        "wall": time.perf_counter() - start,
        "load": [load_before, os.getloadavg()[0]],
    }
    if not records and not timed_out:
        result["records"] = [{"event": "error", "reason": f"exit {proc.returncode}: {err.strip()[-400:]}"}]
    return summarize(result)


def merge(earlier: dict | None, later: dict) -> dict:
    """One result from two rounds of the same (tool, case): records pooled, then summarized again."""
    if earlier is None:
        later["rounds"] = 1
        return later
    earlier["records"] = earlier["records"] + later["records"]
    earlier["timed_out"] = earlier["timed_out"] or later["timed_out"]
    earlier["wall"] += later["wall"]
    earlier["load"] = earlier["load"] + later["load"]
    earlier["rounds"] += 1
    return summarize(earlier)


def summarize(result: dict) -> dict:
    """Add median/min/first times, peak memory, evaluations and -2 logLik to a raw result."""
    fits = [r for r in result["records"] if r.get("event") == "fit"]
    timed = [r for r in fits if r["i"] > 0]
    other = [r for r in result["records"] if r.get("event") in ("na", "error")]
    ready = next((r for r in result["records"] if r.get("event") == "ready"), {})
    result.update(
        status=other[0]["event"] if other else ("timeout" if result["timed_out"] else "ok"),
        reason=other[0].get("reason", "") if other else "",
        env=ready,
        first_s=fits[0]["seconds"] if fits else None,
        median_s=statistics.median(r["seconds"] for r in timed) if timed else None,
        min_s=min(r["seconds"] for r in timed) if timed else None,
        nruns=len(timed),
        peak_delta_mb=max(r["peak_mb"] for r in fits) - ready.get("rss_mb", fits[0]["rss_before_mb"]) if fits else None,
        peak_mb=max(r["peak_mb"] for r in fits) if fits else None,
        feval=fits[-1].get("feval") if fits else None,
        geval=fits[-1].get("geval") if fits else None,
        m2ll=fits[-1].get("m2ll") if fits else None,
        converged=fits[-1].get("converged") if fits else None,
        warnings=sorted({w for r in fits for w in _as_list(r.get("warnings"))}),
    )
    if result["status"] == "ok" and fits and not timed:
        result["status"] = "error"
    return result


def _as_list(value) -> list:
    """R's jsonlite writes a length-1 vector as a scalar."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def machine_info() -> dict:
    """What the numbers were measured on."""
    info = {
        "date": date.today().isoformat(),
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE", "(unset)"),
        "load_start": os.getloadavg(),
    }
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        info["cpu"] = next(
            (line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name")), "?"
        )
    except OSError:
        info["cpu"] = platform.processor() or "?"
    try:
        with open("/proc/meminfo") as handle:
            info["memory_gb"] = round(int(handle.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    git = ["git", "-C", str(ROOT)]
    info["commit"] = subprocess.run(
        git + ["rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(git + ["status", "--porcelain", "src"], capture_output=True, text=True).stdout.strip()
    info["dirty"] = bool(dirty)
    return info


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", help=f"comma-separated, from: {', '.join(_cases.CASES)}")
    parser.add_argument(
        "--tools", default=",".join(DEFAULT_TOOLS), help=f"comma-separated, from: {', '.join(ALL_TOOLS)}"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed fits after the warm-up (default 3)")
    parser.add_argument("--quick", action="store_true", help="1 timed fit each, results to <date>-quick.md")
    parser.add_argument("--large", action="store_true", help="include the 1M-row crossed and 500k-row nested designs")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per (tool, case), warm-up included")
    parser.add_argument("--name", help="file stem of the results (default: the date)")
    parser.add_argument("--blas-threads", type=int, help="OPENBLAS/OMP_NUM_THREADS for every tool (default: as set)")
    parser.add_argument("--before", help="commit whose mixedmodels the tool mixedmodels-before runs")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run every (case, tool) this many times, interleaved, pooling the timed fits "
        "(steadier ratios on a shared machine)",
    )
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    tools = args.tools.split(",")
    unknown = [t for t in tools if t not in ALL_TOOLS]
    if unknown:
        raise SystemExit(f"unknown tool(s) {unknown}; choose from {', '.join(ALL_TOOLS)}")
    selected = _cases.selected(args.cases, args.large)
    missing = {t: why for t in tools if (why := tool_available(t))}
    if "mixedmodels-before" in tools and not args.before:
        missing["mixedmodels-before"] = "no --before commit given"
    info = machine_info()
    info.update(
        repeats=repeats,
        rounds=args.rounds,
        timeout=args.timeout,
        quick=args.quick,
        missing_tools=missing,
        blas_threads=args.blas_threads or os.environ.get("OPENBLAS_NUM_THREADS", "(default: one per core)"),
    )
    pooled: dict[tuple[str, str], dict] = {}
    with tempfile.TemporaryDirectory(prefix="mm-bench-") as tmp:
        if args.before and "mixedmodels-before" in tools:
            BEFORE_SRC[:] = [export_before(args.before, Path(tmp))]
            info["before"] = args.before
        for round_no in range(args.rounds):
            for case in selected:
                for tool in tools:
                    done = pooled.get((case.name, tool))
                    if tool in missing or (done and done["status"] != "ok"):
                        continue  # n/a, failed or timed out once: not again
                    print(f"{round_no + 1} {case.name:>14} {tool:<22}", end=" ", file=sys.stderr, flush=True)
                    res = run_one(tool, case, repeats, args.timeout, Path(tmp), args.blas_threads)
                    shown = f"{res['median_s']:.4g} s" if res["median_s"] is not None else res["status"]
                    print(f"{shown:<12} {res['reason'][:90]}", file=sys.stderr, flush=True)
                    pooled[(case.name, tool)] = merge(done, res)
    results = list(pooled.values())
    info["load_end"] = os.getloadavg()
    stem = args.name or (info["date"] + ("-quick" if args.quick else ""))
    out = write_report(HERE / "results", stem, selected, tools, results, info, latest=not args.quick and not args.name)
    print(f"written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
