"""Benchmark of fits on Dask: data larger than memory, against the time of one plain read of the same files.

Run by hand (never in CI)::

    # write the data (benchmarks/dask_data.py): the full sizes, or a fraction of the groups
    python benchmarks/bench_dask.py make --design repeated --out /data/mm            # 200M rows, ~4.8 GB
    python benchmarks/bench_dask.py make --design crossed --out /data/mm             # 20M rows
    python benchmarks/bench_dask.py make --design repeated --fraction 0.01 --out /tmp/mm   # 2M rows

    # fit on a LocalCluster (2 worker processes x 1 thread), with the read floor before and after
    python benchmarks/bench_dask.py fit --design repeated --data /data/mm/repeated

    # the 1M-row crossed design of benchmarks/synthetic.py in memory vs on Dask (same machine)
    python benchmarks/bench_dask.py overhead

    # per partition, in one process with one BLAS thread (as a worker): the read, and the
    # compute of pass 1 and pass 2 on the rows read (no scheduler in the times)
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_dask.py partitions --design repeated --data /tmp/mm/repeated

``fit`` reports, per design: the read floor (one dask pass over the same
files that only sums the model's columns: reading and decoding the Parquet
is all it does), the fit's wall time and its ratio to the floor (goal for
lmer: at most 3), the time of each pass and of the optimizer, and the peak
resident memory of the client plus every worker (``ru_maxrss``; fresh
processes per run, so the peaks are this fit's).  Results go to
``benchmarks/results/<date>-dask-<design>.json`` and are printed as markdown.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import dask_data  # noqa: E402


def _peak_mib() -> float:
    """This process's peak resident set in MiB (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _warm_up() -> None:
    """Import the Dask path and load its compiled kernel (what a worker does once, at its first task)."""
    import numpy as np

    import mixedmodels.dask.results  # noqa: F401
    from mixedmodels.dask.kernels import per_level_sums

    per_level_sums(np.zeros(20_000, dtype=np.int64), np.ones((20_000, 1)), np.ones((20_000, 1)), np.ones(20_000), 1)
    try:  # the one-term sweep (absent from older code compared with this one)
        from mixedmodels.dask.sweep import _compiled
    except ImportError:
        return
    kernels = _compiled()
    if kernels is not None:
        column = np.ones(4)
        column.flags.writeable = False
        both, ids = np.array([-1, 0]), np.zeros(4, dtype=np.int64)
        ids.flags.writeable = False
        for same in (True, False):
            kernels[0](
                ids,
                0,
                (column, column),
                both,
                both,
                1,
                same,
                np.zeros(1, np.int64),
                np.zeros((1, 2, 2)),
                np.zeros((1, 2, 3)),
            )
        kernels[1](column, 0.0)


def _read_floor(path: str, columns: list[str]) -> float:
    """Seconds for one plain dask pass over the files that sums the columns."""
    import dask
    import dask.dataframe as dd

    started = time.perf_counter()
    dask.compute(dd.read_parquet(path, columns=columns).sum())
    return time.perf_counter() - started


def _columns(design: dask_data.Design) -> list[str]:
    return ["y", "x", design.group] + (["item"] if design.items else [])


def make(args: argparse.Namespace) -> None:
    design = dask_data.DESIGNS[args.design].scaled(args.fraction)
    folder = Path(args.out) / design.name
    started = time.perf_counter()
    paths = dask_data.write(design, folder, rows_per_file=args.rows_per_file)
    size = sum(p.stat().st_size for p in paths) / 2**30
    print(
        f"wrote {design.rows:,} rows ({design.groups:,} groups) in {len(paths)} files, {size:.2f} GiB, "
        f"to {folder} in {time.perf_counter() - started:.0f} s"
    )


def fit(args: argparse.Namespace) -> dict:
    from distributed import Client, LocalCluster

    from mixedmodels.dask.lmm import DaskLinearMixedModel

    design = dask_data.DESIGNS[args.design]
    path = str(Path(args.data) / "*.parquet")
    cluster = LocalCluster(
        n_workers=args.workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        memory_limit=args.memory_limit,
    )
    client = Client(cluster)
    try:
        started = time.perf_counter()
        client.run(_warm_up)  # the workers' one-time imports and compiled kernels, not timed below
        _warm_up()  # the client's too (the results' modules import scipy.stats, ~0.7 s once per process)
        warm_up = time.perf_counter() - started
        floor_before = _read_floor(path, _columns(design))
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = DaskLinearMixedModel.from_dask(design.formula, path, REML=True)
            built = time.perf_counter()
            result = model.fit()
        seconds = time.perf_counter() - started
        floor_after = _read_floor(path, _columns(design))
        workers = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
    finally:
        client.close()
        cluster.close()
    floor = min(floor_before, floor_after)
    record = {
        "design": design.name,
        "formula": design.formula,
        "rows": int(result.nobs),
        "groups": result.ngroups,
        "workers": args.workers,
        "worker_imports_s": warm_up,
        "read_floor_s": [floor_before, floor_after],
        "fit_s": seconds,
        "ratio_to_floor": seconds / floor,
        "passes_s": model.seconds,
        "build_s": built - started,
        "optimizer_s": result.optinfo.seconds,
        "evaluations": result.optinfo.feval,
        "optimizer": result.optinfo.optimizer,
        "gradients": result.optinfo.geval,
        "load_average": list(os.getloadavg()),
        "peak_mib": {"client": _peak_mib(), "workers": workers, "total": _peak_mib() + sum(workers.values())},
        "theta": result.theta.tolist(),
        "fixef": result.fixef.to_dict(),
        "sigma": result.sigma,
        "objective": result.objective,
        "date": dt.date.today().isoformat(),
    }
    if args.record:
        Path(args.record).write_text(json.dumps(record, indent=2, default=str) + "\n")
    else:
        _save(record, f"dask-{design.name}-{result.nobs}")
    _print(record)
    return record


def overhead(args: argparse.Namespace) -> None:
    """The 1M-row crossed design of synthetic.py in memory, then on Dask (threads, and a LocalCluster)."""
    import dask
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    import synthetic

    import mixedmodels as mm

    data = synthetic.crossed(args.rows, args.rows // 100, 2_000)
    formula = data.formula
    record = {"rows": args.rows, "formula": formula}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mm.lmer(formula, data.data.iloc[: args.rows // 10])  # compile the kernels first
        started = time.perf_counter()
        memory = mm.lmer(formula, data.data)
        record["memory_s"] = time.perf_counter() - started
        record["memory_optimizer_s"] = memory.optinfo.seconds
        frame = dd.from_pandas(data.data, npartitions=args.partitions)
        with dask.config.set(scheduler="threads"):
            threaded = _timed_fit(formula, frame, record, "dask_threads")
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
        client = Client(cluster)
        try:
            client.run(_warm_up)
            frame = client.persist(dd.from_pandas(data.data, npartitions=args.partitions))  # on the workers first
            on_cluster = _timed_fit(formula, frame, record, "dask_cluster")
        finally:
            client.close()
            cluster.close()
    record["objective_rel_diff"] = [
        threaded.objective / memory.objective - 1,
        on_cluster.objective / memory.objective - 1,
    ]
    _save(record, f"dask-overhead-{args.rows}")
    print(json.dumps(record, indent=2))


def partitions(args: argparse.Namespace) -> dict:
    """Per partition: seconds to read it (dask, sync scheduler) and to compute pass 1 and pass 2 on the rows read.

    Each pass reads its own columns and computes right after its read, as on a
    worker.  The scheduler's round trips and the fixed costs of a fit are left
    out, so the ratios to the read (pass 2's columns) are what the passes cost
    per row: the part of the <= 3x goal that grows with the data.  Minimum and
    median over ``--repeats`` rounds of every partition, the arrays fresh each time.
    """
    import dask
    import numpy as np

    from mixedmodels.dask.crossprods import pass2_partition
    from mixedmodels.dask.inputs import parse_with_response, plan_model
    from mixedmodels.dask.metadata import summarize_partition
    from mixedmodels.dask.plan import summary_spec
    from mixedmodels.dask.source import DataSource

    design = dask_data.DESIGNS[args.design]
    path = str(Path(args.data) / "*.parquet")
    times: dict[str, list[float]] = {"read": [], "pass 1": [], "pass 2": []}
    with dask.config.set(scheduler="sync"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = parse_with_response(design.formula)
        source = DataSource.make(path)
        plan, _ = plan_model(parsed, source, None)
        spec = summary_spec(parsed, source.meta, None, None)
        first_parts = source.partitions(list(spec.frame_columns))
        second_parts = source.partitions(plan.read_columns)
        _warm_up()
        for _ in range(args.repeats):
            for first, second in zip(first_parts, second_parts):
                (frame,) = dask.compute(first)
                started = time.perf_counter()
                summarize_partition(frame, spec)
                times["pass 1"].append(time.perf_counter() - started)
                started = time.perf_counter()
                (frame,) = dask.compute(second)
                read = time.perf_counter()
                pass2_partition(frame, plan)
                times["read"].append(read - started)
                times["pass 2"].append(time.perf_counter() - read)
    record = {
        "design": design.name,
        "formula": design.formula,
        "partitions": len(second_parts),
        "rows_per_partition": int(round(plan.nobs / len(second_parts))),
        "repeats": args.repeats,
        "seconds": {k: {"min": float(np.min(v)), "median": float(np.median(v))} for k, v in times.items()},
        "date": dt.date.today().isoformat(),
    }
    read = record["seconds"]["read"]
    for name in ("pass 1", "pass 2"):
        record["seconds"][name]["min_over_read"] = record["seconds"][name]["min"] / read["min"]
        record["seconds"][name]["median_over_read"] = record["seconds"][name]["median"] / read["median"]
    _save(record, f"dask-partitions-{design.name}-{plan.nobs}")
    print(json.dumps(record, indent=2))
    return record


def _timed_fit(formula: str, frame, record: dict, name: str):
    """Fit on Dask, recording the wall time, the passes' times and the optimizer's."""
    from mixedmodels.dask.lmm import DaskLinearMixedModel

    started = time.perf_counter()
    model = DaskLinearMixedModel.from_dask(formula, frame)
    result = model.fit()
    record[f"{name}_s"] = time.perf_counter() - started
    record[f"{name}_passes_s"] = model.seconds
    record[f"{name}_optimizer_s"] = result.optinfo.seconds
    return result


def _save(record: dict, name: str) -> None:
    out = HERE / "results" / f"{dt.date.today().isoformat()}-{name}.json"
    out.write_text(json.dumps(record, indent=2, default=str) + "\n")
    print(f"saved {out}")


def _print(r: dict) -> None:
    floor = min(r["read_floor_s"])
    print("\n| design | rows | read floor | fit | ratio | pass 1 (ranges) | pass 2 | optimizer | peak memory |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    passes = r["passes_s"]
    first = f"{passes['pass 1']:.1f} s" if "pass 1" in passes else f"fused ({passes.get('ranges', 0.0):.1f} s)"
    print(
        f"| {r['design']} | {r['rows']:,} | {floor:.1f} s | {r['fit_s']:.1f} s | {r['ratio_to_floor']:.2f}x | "
        f"{first} | {passes.get('pass 2', float('nan')):.1f} s | "
        f"{r['optimizer_s']:.1f} s | {r['peak_mib']['total'] / 1024:.2f} GiB |"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("make", help="write a synthetic Parquet data set")
    p.add_argument("--design", choices=sorted(dask_data.DESIGNS), required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--fraction", type=float, default=1.0, help="of the groups (rows per group kept)")
    p.add_argument("--rows-per-file", type=int, default=10_000_000)
    p = sub.add_parser("fit", help="fit a written data set on a LocalCluster")
    p.add_argument("--design", choices=sorted(dask_data.DESIGNS), required=True)
    p.add_argument("--data", required=True, help="the folder make wrote")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--memory-limit", default="auto")
    p.add_argument("--record", help="write the record to this file (default: the results folder, dated)")
    p = sub.add_parser("partitions", help="per partition: read, pass 1 and pass 2 compute, in one process")
    p.add_argument("--design", choices=sorted(dask_data.DESIGNS), required=True)
    p.add_argument("--data", required=True, help="the folder make wrote")
    p.add_argument("--repeats", type=int, default=12)
    p = sub.add_parser("overhead", help="the 1M-row crossed design in memory vs on Dask")
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--partitions", type=int, default=8)
    args = parser.parse_args(argv)
    {"make": make, "fit": fit, "partitions": partitions, "overhead": overhead}[args.command](args)


if __name__ == "__main__":
    main()
