"""Where a mixedmodels fit spends its time and memory (run by hand, never in CI).

    python benchmarks/profile_fit.py                      # insteval, verbagg
    python benchmarks/profile_fit.py --cases crossed_1m   # the 1M-row crossed design
    python benchmarks/profile_fit.py --lme4               # also fit once in R for lme4's feval

For each case, in one process:

1. **Phases of one whole ``mm.lmer``/``mm.glmer`` call**, by wrapping the
   functions the fit goes through with timers (no change to the package):
   formula -> model frame and design (``prepare_inputs``), design -> blocks
   (``BlockedCrossProducts.build``), the optimizer, lme4's convergence checks,
   results.  Each phase also gets its peak resident memory (Linux ``VmHWM``,
   reset before the phase).  Calls to ``Factorization.compute`` (one per
   objective evaluation in lmer) are counted and timed.
2. **One objective evaluation at the optimum, taken apart** (lmer cases): every
   helper of ``linalg/blocked.py`` (``_first_block_factor``, ``_rank_update``,
   ``_scale_rest``, ...) and LAPACK ``dpotrf`` timed over ``--evals`` calls of
   ``model.objective(theta)``, with the BLAS threads the fit would use;
   "other" is the rest of the call.
3. A pyinstrument (else cProfile) listing of a whole fit, written beside the
   report as ``profile-<date>-<case>.txt``.

Writes ``benchmarks/results/profile-<date>.md``.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import pstats
import statistics
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import cases as _cases  # noqa: E402
from worker import peak_mb, reset_peak, rss_mb  # noqa: E402

DEFAULT_CASES = "insteval,verbagg"


class Probe:
    """Timers and call counters wrapped around named functions, undone by ``restore``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.peaks: dict[str, float] = {}
        self._undo: list[Callable[[], None]] = []
        self.missing: list[str] = []

    def wrap(self, owner: Any, attr: str, label: str, memory: bool = False) -> None:
        """Time every call of ``owner.attr`` (a module function, class method or classmethod)."""
        raw = owner.__dict__.get(attr) if isinstance(owner, type) else getattr(owner, attr, None)
        if raw is None:
            self.missing.append(label)
            return
        is_classmethod = isinstance(raw, classmethod)
        func = raw.__func__ if is_classmethod else raw
        probe = self

        def timed(*args, **kwargs):
            if memory:
                reset_peak()
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                probe.seconds[label] += time.perf_counter() - start
                probe.calls[label] += 1
                if memory:
                    probe.peaks[label] = max(probe.peaks.get(label, 0.0), peak_mb())

        setattr(owner, attr, classmethod(timed) if is_classmethod else timed)
        self._undo.append(lambda: setattr(owner, attr, raw))

    def restore(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


def _lapack_proxy(blocked_module: Any, probe: Probe) -> None:
    """Route ``blocked.lapack.dpotrf`` (and the rest of scipy's lapack) through a timer."""
    real = blocked_module.lapack
    proxy = SimpleNamespace(**{name: getattr(real, name) for name in dir(real) if not name.startswith("__")})
    blocked_module.lapack = proxy
    probe.wrap(proxy, "dpotrf", "LAPACK dpotrf")
    probe._undo.append(lambda: setattr(blocked_module, "lapack", real))


def _fit(case: _cases.Case, df):
    import mixedmodels as mm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if case.kind == "lmer":
            return mm.lmer(case.formula, df)
        return mm.glmer(case.formula, df, family=case.family)


def phases(case: _cases.Case, df) -> dict:
    """Time (and peak memory of) the phases of one whole fit."""
    import mixedmodels.lmm.model as lmm
    import mixedmodels.linalg.blocked as blocked
    import mixedmodels.lmm.results as results

    probe = Probe()
    probe.wrap(lmm, "prepare_inputs", "formula -> design (prepare_inputs)", memory=True)
    probe.wrap(blocked.BlockedCrossProducts, "build", "design -> blocks (BlockedCrossProducts.build)", memory=True)
    probe.wrap(lmm, "minimize_bounded", "optimizer (minimize_bounded)", memory=True)
    probe.wrap(lmm, "check_convergence", "convergence checks (check_convergence)")
    probe.wrap(results.LmerResults, "from_fit", "results (LmerResults.from_fit)", memory=True)
    probe.wrap(blocked.Factorization, "compute", "Factorization.compute (per evaluation)")
    if hasattr(blocked.Factorization, "compute_reordered"):
        probe.wrap(blocked.Factorization, "compute_reordered", "Factorization.compute_reordered (per evaluation)")
    if case.kind == "glmer":
        _wrap_glmer(probe)
    gc.collect()
    before = rss_mb()
    reset_peak()
    start = time.perf_counter()
    try:
        result = _fit(case, df)
    finally:
        probe.restore()
    total = time.perf_counter() - start
    return {
        "total_s": total,
        "rss_before_mb": before,
        "peak_mb": peak_mb(),
        "seconds": dict(probe.seconds),
        "calls": dict(probe.calls),
        "peaks": dict(probe.peaks),
        "missing": probe.missing,
        "feval": result.optinfo.feval,
        "optimizer_s": result.optinfo.seconds,
        "m2ll": -2 * result.loglik,
        "theta": [float(t) for t in result.theta],
        "result": result,
    }


def _wrap_glmer(probe: Probe) -> None:
    """Timers on the GLMM pipeline (whatever of it exists in this checkout)."""
    try:
        import mixedmodels.glmm.fit as glmm_fit
        import mixedmodels.glmm.model as glmm
        import mixedmodels.glmm.results as glmm_results
        import mixedmodels.linalg.pirls as pirls
    except ImportError as exc:
        probe.missing.append(f"glmer modules ({exc})")
        return
    probe.wrap(glmm, "prepare_glmm_inputs", "formula -> design (prepare_glmm_inputs)", memory=True)
    probe.wrap(glmm_fit, "_stage1", "stage 1: theta, nAGQ=0 (_stage1)")
    probe.wrap(glmm_fit, "_stage2", "stage 2: theta and beta (_stage2)")
    probe.wrap(glmm_fit, "_finish", "Hessian and vcov (_finish)")
    probe.wrap(glmm_results.GlmerResults, "from_fit", "results (GlmerResults.from_fit)")
    probe.wrap(pirls.Pirls, "_iterate", "PIRLS runs (Pirls._iterate)")
    probe.wrap(pirls.ReweightedBlocks, "blocks", "reweighted blocks (ReweightedBlocks.blocks)")
    probe.wrap(pirls.ReweightedBlocks, "build", "scatter plan (ReweightedBlocks.build)")
    probe.wrap(pirls.Pirls, "_evaluate", "mu, deviance (Pirls._evaluate)")


def _fit_threads(block_size: int):
    """The package's BLAS-thread policy for a block of this size, where the checkout has one."""
    try:
        from mixedmodels._threads import blas_threads_for
    except ImportError:
        from contextlib import nullcontext

        return nullcontext()
    return blas_threads_for(block_size)


def _wrap_rank_update_plans(probe: Probe) -> None:
    """Time ``subtract_from``/``apply`` of every precomputed rank-update plan class, where the checkout has them."""
    try:
        import mixedmodels.linalg.rank_update as plans
    except ImportError:
        return
    for name, obj in vars(plans).items():
        if isinstance(obj, type) and obj.__module__ == plans.__name__:
            for method in ("subtract_from", "subtract_scaled", "apply"):
                if method in obj.__dict__:
                    probe.wrap(obj, method, f"{name}.{method} (rank update plan)")


def _wrap_reordered_rest(probe: Probe) -> None:
    """Time the reordered rest block's assembly and supernodal factorization, where the checkout has them."""
    try:
        import mixedmodels.linalg.reordered_rest as reordered
        import mixedmodels.linalg.supernodal as supernodal
    except ImportError:
        return
    probe.wrap(reordered.ReorderedRest, "assemble", "ReorderedRest.assemble (scaled A22 minus the update)")
    probe.wrap(supernodal.SupernodalCholesky, "factor", "SupernodalCholesky.factor (supernodal Cholesky)")


def evaluation_breakdown(case: _cases.Case, df, theta: list[float], evals: int) -> dict:
    """Median time of ``model.objective(theta)`` and the share of every helper of linalg/blocked.py."""
    import numpy as np

    import mixedmodels as mm
    import mixedmodels.linalg.blocked as blocked

    model = mm.LinearMixedModel.from_formula(case.formula, df)
    theta = np.asarray(theta)
    threads = _fit_threads(model.crossprods.a22.shape[0])
    with threads:  # the BLAS threads the fit itself would use
        model.objective(theta)  # warm
        plain = []
        for _ in range(evals):
            start = time.perf_counter()
            model.objective(theta)
            plain.append(time.perf_counter() - start)
    probe = Probe()
    helpers = [
        name
        for name, obj in vars(blocked).items()
        if name.startswith("_")
        and callable(obj)
        and not name.startswith("__")
        and getattr(obj, "__module__", "") == blocked.__name__
        and not isinstance(obj, type)
    ]
    for name in helpers:
        probe.wrap(blocked, name, name)
    _lapack_proxy(blocked, probe)
    probe.wrap(blocked.Factorization, "compute", "Factorization.compute")
    _wrap_rank_update_plans(probe)
    _wrap_reordered_rest(probe)
    try:
        wrapped = []
        with _fit_threads(model.crossprods.a22.shape[0]):
            for _ in range(evals):
                start = time.perf_counter()
                model.objective(theta)
                wrapped.append(time.perf_counter() - start)
    finally:
        probe.restore()
    cp = model.crossprods
    shapes = {
        "first term levels x columns": f"{cp.first.nlevels} x {cp.first.ncols}",
        "rest block m": int(cp.a22.shape[0]),
        "a21": f"{type(cp.a21).__name__} {cp.a21.shape}" + (f", nnz {cp.a21.nnz:,}" if hasattr(cp.a21, "nnz") else ""),
    }
    return {
        "median_s": statistics.median(plain),
        "median_wrapped_s": statistics.median(wrapped),
        "mean_wrapped_s": statistics.fmean(wrapped),
        "per_call": {k: probe.seconds[k] / evals for k in probe.seconds},
        "calls": {k: probe.calls[k] / evals for k in probe.calls},
        "shapes": shapes,
    }


def listing(case: _cases.Case, df, path: Path, fits: int = 1) -> str:
    """A pyinstrument (or cProfile) listing of ``fits`` whole fits, saved to ``path``; returns the tool used."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(fits):
            _fit(case, df)
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(40)
        path.write_text(out.getvalue())
        return "cProfile"
    profiler = Profiler(interval=0.002)
    profiler.start()
    for _ in range(fits):
        _fit(case, df)
    profiler.stop()
    path.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    return "pyinstrument"


def lme4_reference(case: _cases.Case, timeout: float) -> dict:
    """One lme4 fit of the case (through run.py's R worker): its time and ``m@optinfo$feval``."""
    import run

    with tempfile.TemporaryDirectory(prefix="mm-prof-") as tmp:
        res = run.run_one("lme4", case, 0, timeout, Path(tmp))
    fits = [r for r in res["records"] if r.get("event") == "fit"]
    if not fits:
        return {"status": res["status"], "reason": res.get("reason", "")}
    return {
        "status": "ok",
        "seconds": fits[0]["seconds"],
        "feval": fits[0]["feval"],
        "m2ll": fits[0]["m2ll"],
        "peak_delta_mb": fits[0]["peak_mb"] - fits[0]["rss_before_mb"],
    }


def _fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:,.3g} ms" if seconds < 10 else f"{seconds:,.1f} s"


def report_case(
    name: str, prof: dict, breakdown: dict | None, ref: dict | None, listing_file: str, tool: str
) -> list[str]:
    lines = [f"## {name}", ""]
    feval = prof["feval"]
    factor_label = next(
        (
            key
            for key in ("Factorization.compute_reordered (per evaluation)", "Factorization.compute (per evaluation)")
            if prof["calls"].get(key)
        ),
        "Factorization.compute (per evaluation)",
    )
    nfact = prof["calls"].get(factor_label, 0)
    lines.append(
        f"Whole fit: {prof['total_s']:.4g} s; optimizer evaluations {feval}; "
        f"{factor_label.split(' ')[0]} calls {nfact} (evaluations incl. checks and results); "
        f"-2 log L {prof['m2ll']:.4f}; peak RSS {prof['peak_mb']:,.0f} MB "
        f"({prof['peak_mb'] - prof['rss_before_mb']:,.0f} MB above the {prof['rss_before_mb']:,.0f} MB before the fit)."
    )
    if ref:
        if ref.get("status") == "ok":
            lines.append(
                f"lme4 (same data, one fit): {ref['seconds']:.2f} s, `m@optinfo$feval` = {ref['feval']}, "
                f"-2 log L {ref['m2ll']:.4f}, peak +{ref['peak_delta_mb']:,.0f} MB."
            )
        else:
            lines.append(f"lme4: {ref.get('status')} {ref.get('reason', '')}")
    lines += ["", "| phase | seconds | calls | share of fit | peak RSS in phase (MB) |", "|---|---|---|---|---|"]
    for label, secs in sorted(prof["seconds"].items(), key=lambda kv: -kv[1]):
        peak = prof["peaks"].get(label)
        lines.append(
            f"| {label} | {secs:.4f} | {prof['calls'][label]} | {100 * secs / prof['total_s']:.0f} % | "
            f"{'' if peak is None else f'{peak:,.0f}'} |"
        )
    if nfact:
        per = prof["seconds"][factor_label] / nfact
        lines += [
            "",
            f"Per evaluation inside the fit: {_fmt_ms(per)} x {nfact} = {prof['seconds'][factor_label]:.2f} s.",
        ]
    if prof["missing"]:
        lines.append(f"(not found in this checkout, so not timed: {', '.join(prof['missing'])})")
    if breakdown:
        lines += [
            "",
            f"One objective evaluation at the optimum: median {_fmt_ms(breakdown['median_s'])} "
            f"({_fmt_ms(breakdown['median_wrapped_s'])} with the timers); shapes: "
            + "; ".join(f"{k} {v}" for k, v in breakdown["shapes"].items())
            + ".",
            "",
        ]
        lines += ["| inside model.objective(theta) | ms per evaluation (mean) | calls | share |", "|---|---|---|---|"]
        total = breakdown["mean_wrapped_s"]  # the parts are means too
        parts = {k: v for k, v in breakdown["per_call"].items() if k != "Factorization.compute"}
        inner = sum(parts.values())
        for label, secs in sorted(parts.items(), key=lambda kv: -kv[1]):
            lines.append(
                f"| {label} | {secs * 1000:.3f} | {breakdown['calls'][label]:g} | {100 * secs / total:.0f} % |"
            )
        lines.append(
            f"| other (objective_from, allocation, Python) | {(total - inner) * 1000:.3f} | | "
            f"{100 * (total - inner) / total:.0f} % |"
        )
    if tool:
        lines += ["", f"Full listing ({tool}): `{listing_file}`"]
    lines.append("")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=DEFAULT_CASES)
    parser.add_argument("--evals", type=int, default=10, help="objective evaluations timed for the breakdown")
    parser.add_argument("--lme4", action="store_true", help="fit each case once with lme4 for its feval")
    parser.add_argument("--fits", type=int, default=1, help="whole fits in the listing (more for small cases)")
    parser.add_argument("--no-listing", action="store_true", help="skip the pyinstrument listing (large cases)")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--name", help="file stem (default profile-<date>)")
    args = parser.parse_args()
    stem = args.name or f"profile-{date.today().isoformat()}"
    outdir = HERE / "results"
    outdir.mkdir(exist_ok=True)
    lines = [
        f"# Profile of mixedmodels fits, {date.today().isoformat()}",
        "",
        "Made by `benchmarks/profile_fit.py` (see its docstring for the method). The machine is shared: "
        "absolute times are noisy, shares within a fit less so.",
        "",
    ]
    raw = {}
    for name in args.cases.split(","):
        case = _cases.CASES[name]
        df = _cases.load(case)
        print(f"{name}: whole fit with phase timers", file=sys.stderr, flush=True)
        prof = phases(case, df)
        prof.pop("result")
        breakdown = None
        if case.kind == "lmer":
            print(f"{name}: evaluation breakdown", file=sys.stderr, flush=True)
            breakdown = evaluation_breakdown(case, df, prof["theta"], args.evals)
        listing_file = outdir / f"{stem}-{name}.txt"
        tool = ""
        if not args.no_listing:
            print(f"{name}: listing", file=sys.stderr, flush=True)
            tool = listing(case, df, listing_file, args.fits)
        ref = None
        if args.lme4:
            print(f"{name}: lme4", file=sys.stderr, flush=True)
            ref = lme4_reference(case, args.timeout)
        lines += report_case(name, prof, breakdown, ref, listing_file.name, tool)
        raw[name] = {"phases": prof, "breakdown": breakdown, "lme4": ref}
        del df
        gc.collect()
    (outdir / f"{stem}.md").write_text("\n".join(lines) + "\n")
    (outdir / f"{stem}.json").write_text(json.dumps(raw, indent=1, default=str))
    print(f"written to {outdir / (stem + '.md')}", file=sys.stderr)


if __name__ == "__main__":
    main()
