"""Refits in bulk: parametric bootstrap and power simulation, against lme4 and an earlier commit, in one run.

    python benchmarks/bench_refits.py --before 371cf68 --rounds 3

* bootstrap: ``bootstrap(m, fixef + sigma, nsim)`` of sleepstudy ``Reaction ~ Days + (Days | Subject)``
  (mixedmodels now, mixedmodels at ``--before``) and lme4's
  ``bootMer(m, function(x) c(fixef(x), sigma(x)), nsim)``;
* power: ``power(design, "y ~ condition + (1 | participant)", test="conditionB")`` with
  ``nsim`` simulations of the 30 x 10 between-groups design of ``tests/test_powersim.py``
  (30 participants, 10 trials each, effect 0.5), by likelihood ratio (the default) and by Wald.

Every (tool, task) runs in a fresh process: one warm-up call (a small one), then
``--repeats`` timed calls; rounds are interleaved so that a burst of load hits
every tool alike.  Reports the median seconds, per replicate or simulation, and
the ratios in the same run; writes ``results/<name>.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import ROOT, export_before  # noqa: E402

TAG = "@@BENCH "

PYTHON_TASK = r"""
import json, sys, time, warnings
import numpy as np
import mixedmodels as mm
task, n, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
warnings.simplefilter("ignore")
def emit(**kw):
    print("@@BENCH " + json.dumps(kw), flush=True)
if task == "bootstrap":
    fit = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
    stat = lambda m: np.append(m.beta, m.sigma)
    run = lambda size, seed: mm.bootstrap(fit, stat, nsim=size, seed=seed, progress=False)
else:
    design = dict(n_groups=30, n_obs=10, between={"condition": ["A", "B"]},
                  fixed={"(Intercept)": 0.0, "conditionB": 0.5}, group_sd=1.0, sigma=1.0)
    method = task.split("-")[1]
    run = lambda size, seed: mm.power(design, "y ~ condition + (1 | participant)", test="conditionB",
                                      method=method, nsim=size, seed=seed, progress=False)
run(20, 0)
for i in range(repeats):
    start = time.perf_counter()
    out = run(n, i + 1)
    seconds = time.perf_counter() - start
    summary = out.sd().tolist() if task == "bootstrap" else float(out.rate.iloc[0])
    emit(seconds=seconds, summary=summary)
"""

R_TASK = r"""
args <- commandArgs(trailingOnly = TRUE)
n <- as.integer(args[[1]]); repeats <- as.integer(args[[2]])
suppressPackageStartupMessages(library(lme4))
m <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
f <- function(x) c(fixef(x), sigma = sigma(x))
invisible(suppressWarnings(suppressMessages(bootMer(m, f, nsim = 20, seed = 0))))
for (i in seq_len(repeats)) {
  t <- system.time(b <- suppressWarnings(suppressMessages(bootMer(m, f, nsim = n, seed = i))))[["elapsed"]]
  cat("@@BENCH ", jsonlite::toJSON(list(seconds = t, summary = unname(apply(b$t, 2, sd))), auto_unbox = TRUE, digits = NA), "\n", sep = "")
}
"""


def run_task(tool: str, task: str, size: int, repeats: int, before: Path | None) -> list[dict]:
    """One (tool, task) in a fresh process; its timed records."""
    env = dict(os.environ)
    if tool == "lme4":
        command = ["Rscript", "-e", R_TASK, str(size), str(repeats)]
    else:
        source = before if tool == "mixedmodels-before" else ROOT / "src"
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source), env.get("PYTHONPATH", "")]))
        command = [sys.executable, "-c", PYTHON_TASK, task, str(size), str(repeats)]
    out = subprocess.run(command, capture_output=True, text=True, env=env)
    records = [json.loads(line[len(TAG) :]) for line in out.stdout.splitlines() if line.startswith(TAG)]
    if not records:
        print(f"{tool} {task}: no records; {out.stderr.strip()[-400:]}", file=sys.stderr)
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", help="commit for the tool mixedmodels-before")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--nboot", type=int, default=500)
    parser.add_argument("--npower", type=int, default=1000)
    parser.add_argument("--name", default=f"{date.today().isoformat()}-refits")
    args = parser.parse_args()
    tasks = {
        "bootstrap": (args.nboot, ["mixedmodels", "mixedmodels-before", "lme4"]),
        "power-lrt": (args.npower, ["mixedmodels", "mixedmodels-before"]),
        "power-wald": (args.npower, ["mixedmodels", "mixedmodels-before"]),
    }
    pooled: dict[tuple[str, str], list] = {}
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="mm-refits-") as tmp:
        before = export_before(args.before, Path(tmp)) if args.before else None
        for round_no in range(args.rounds):
            for task, (size, tools) in tasks.items():
                for tool in tools:
                    if tool == "mixedmodels-before" and before is None:
                        continue
                    records = run_task(tool, task, size, args.repeats, before)
                    pooled.setdefault((task, tool), []).extend(records)
                    loads.append(os.getloadavg()[0])
                    times = [r["seconds"] for r in records]
                    print(
                        f"{round_no + 1} {task:<11} {tool:<20} {statistics.median(times) if times else float('nan'):.3f} s",
                        file=sys.stderr,
                        flush=True,
                    )
    write(args, tasks, pooled, loads)


def write(args, tasks: dict, pooled: dict, loads: list[float]) -> None:
    lines = [
        f"# Refits in bulk, {date.today().isoformat()}",
        "",
        f"- Load average (1 min) over the run: {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores.",
        f"- {args.rounds} interleaved rounds x {args.repeats} timed calls per (task, tool), each tool in a fresh "
        "process after one warm-up call; the median is shown.",
        f"- mixedmodels-before: the commit {args.before}." if args.before else "",
        "",
        "| task | size | tool | median | per replicate / simulation | ratio to mixedmodels |",
        "|---|---|---|---|---|---|",
    ]
    for task, (size, tools) in tasks.items():
        ours = pooled.get((task, "mixedmodels"))
        reference = statistics.median(r["seconds"] for r in ours) if ours else None
        for tool in tools:
            records = pooled.get((task, tool))
            if not records:
                continue
            median = statistics.median(r["seconds"] for r in records)
            ratio = f"x{median / reference:.2f}" if reference else "-"
            lines.append(f"| {task} | {size} | {tool} | {median:.3f} s | {1e3 * median / size:.3f} ms | {ratio} |")
    lines += ["", "Bootstrap SDs (first timed call of each tool) as a check that the tools did the same work:", ""]
    for tool in tasks["bootstrap"][1]:
        records = pooled.get(("bootstrap", tool))
        if records:
            lines.append(f"- {tool}: " + ", ".join(f"{v:.4g}" for v in records[0]["summary"]))
    text = "\n".join(lines) + "\n"
    out = HERE / "results" / f"{args.name}.md"
    out.write_text(text)
    out.with_suffix(".json").write_text(json.dumps({str(k): v for k, v in pooled.items()}, indent=1))
    print(text)


if __name__ == "__main__":
    main()
