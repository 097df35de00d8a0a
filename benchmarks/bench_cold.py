"""Where a small fit's "cold" time goes: the same fit warm, after ``gc.collect()`` and after a cache flush.

    python benchmarks/bench_cold.py --cases sleepstudy,cbpp --tools mixedmodels,glmm --rounds 3

``run.py``'s worker calls ``gc.collect()`` before every timed fit of every tool (so that a fit's
memory is measured from a clean heap).  A collection walks every tracked object of the process
and leaves the CPU caches holding the heap's object headers instead of the fit's code and data:
the next fit runs from cold caches.  This script times each (case, tool) in a fresh process,
rounds interleaved, under four preparations before each fit:

* ``warm``: nothing (the previous fit's caches);
* ``gc``: ``gc.collect()``, as run.py does;
* ``gc frozen``: ``gc.freeze()`` once after the warm-up, then ``gc.collect()`` (which then walks
  only what the timed fits made: the collection itself, not the heap's size, is what cools);
* ``flush``: a sum over 64 MB (twice the L3 cache here), no collection.

Medians of ``--repeats`` fits per preparation; the ratio tool / mixedmodels per preparation shows
whether a gap is in the work itself (warm) or in how much code and data a fit touches (cold).
Writes ``results/<name>.md`` and ``.json``.

``--preload numba`` imports numba into each worker and compiles one small function before
the tool's first fit (the state a mixedmodels process is in after its first compiled fit), without
calling numba during the timed fits: what the heap that a collection walks costs a tool that never
uses it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import ROOT  # noqa: E402

TAG = "@@BENCH "
PREPARATIONS = ("warm", "gc", "gc frozen", "flush")

WORKER = r"""
import gc, json, sys, time
import numpy as np
sys.path.insert(0, sys.argv[4])
import cases, worker
case = cases.CASES[sys.argv[1]]
if sys.argv[5] == "numba":
    import numba
    numba.njit(lambda x: x + 1.0)(1.0)  # (compiled here: a -c script has no file for numba's cache)
fit, _ = worker.TOOLS[sys.argv[2]](case, cases.load(case))
repeats = int(sys.argv[3])
for _ in range(20):
    fit()
flush = np.ones(8_000_000)
def timed(prepare):
    out = []
    for _ in range(repeats):
        prepare()
        start = time.perf_counter()
        fit()
        out.append(time.perf_counter() - start)
    return out
times = {"warm": timed(lambda: None), "gc": timed(gc.collect), "flush": timed(lambda: flush.sum())}
objects = len(gc.get_objects())
gc.freeze()
times["gc frozen"] = timed(gc.collect)
print("@@BENCH " + json.dumps({"times": times, "objects": objects}), flush=True)
"""


def _measure(case: str, tool: str, repeats: int, preload: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    done = subprocess.run(
        [sys.executable, "-c", WORKER, case, tool, str(repeats), str(HERE), preload],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    line = next(line for line in done.stdout.splitlines() if line.startswith(TAG))
    return json.loads(line[len(TAG) :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="sleepstudy,cbpp")
    parser.add_argument("--tools", default="mixedmodels,glmm")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--name", default=f"{date.today().isoformat()}-cold")
    parser.add_argument("--preload", choices=("none", "numba"), default="none")
    args = parser.parse_args()
    cases, tools = args.cases.split(","), args.tools.split(",")
    runs: dict[str, dict[str, list]] = {c: {t: [] for t in tools} for c in cases}
    loads = []
    for r in range(args.rounds):
        loads.append(os.getloadavg()[0])
        for case in cases:
            for tool in tools if r % 2 == 0 else tools[::-1]:
                runs[case][tool].append(_measure(case, tool, args.repeats, args.preload))
    loads.append(os.getloadavg()[0])
    _write(args.name, runs, tools, loads, args)


def _median_ms(records: list, preparation: str) -> float:
    return 1e3 * statistics.median(t for record in records for t in record["times"][preparation])


def _write(name: str, runs: dict, tools: list[str], loads: list[float], args: argparse.Namespace) -> None:
    head = "| case | tool | objects | " + " | ".join(f"{p} (ms)" for p in PREPARATIONS) + " |"
    lines = [
        f"# A small fit warm and cold ({date.today().isoformat()})",
        "",
        f"`python benchmarks/bench_cold.py --cases {args.cases} --tools {args.tools} --rounds {args.rounds} "
        f"--repeats {args.repeats} --preload {args.preload}`: a fresh process per (case, tool, round), rounds interleaved; medians of all "
        f"timed fits (wall clock). 1-minute load at each round's start and at the end: "
        + ", ".join(f"{load:.1f}" for load in loads)
        + ".",
        "",
        head,
        "|" + "---|" * (3 + len(PREPARATIONS)),
    ]
    for case, by_tool in runs.items():
        for tool in tools:
            records = by_tool[tool]
            cells = " | ".join(f"{_median_ms(records, p):.3f}" for p in PREPARATIONS)
            lines.append(f"| {case} | {tool} | {records[0]['objects']} | {cells} |")
        if len(tools) > 1:
            ratios = " | ".join(
                f"{_median_ms(by_tool[tools[0]], p) / _median_ms(by_tool[tools[1]], p):.2f}x" for p in PREPARATIONS
            )
            lines.append(f"| {case} | {tools[0]} / {tools[1]} | | {ratios} |")
    out = HERE / "results" / name
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps({"runs": runs, "loads": loads}, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
