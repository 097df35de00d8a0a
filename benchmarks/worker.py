"""Fit one case with one Python tool, one warm-up plus ``repeats`` timed fits, in this process.

    python benchmarks/worker.py TOOL CASE [--repeats 3]

Run by ``run.py`` in a fresh process per (tool, case), so memory peaks and
imports of one tool do not colour another.  Each fit prints one line
``@@BENCH {json}`` on stdout: wall seconds of the whole call (formula and data
in, fitted results out), the resident set before the fit and its peak during
the fit (Linux ``VmHWM``, reset before every fit through
``/proc/self/clear_refs``), the number of objective evaluations where the tool
reports it, and -2 log-likelihood (REML criterion for REML fits) so the run can
check that every tool fitted the same model.  A tool that cannot express the
case prints ``{"event": "na", "reason": ...}``; a failing fit prints
``{"event": "error", ...}``.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cases as _cases  # noqa: E402

TAG = "@@BENCH "


class NotExpressible(Exception):
    """The tool cannot state this model."""


def emit(**record: Any) -> None:
    print(TAG + json.dumps(record, default=float), flush=True)


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def rss_mb() -> float:
    return _status_kb("VmRSS") / 1024


def peak_mb() -> float:
    return _status_kb("VmHWM") / 1024


def reset_peak() -> None:
    """Reset the kernel's peak-RSS mark of this process (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass


Fitter = tuple[Callable[[], Any], Callable[[Any], dict]]


def _mixedmodels(case: _cases.Case, df) -> Fitter:
    import mixedmodels as mm

    if case.kind == "lmer":
        lmer = mm.lmer  # resolve the lazy import before the memory baseline
        fit = lambda: lmer(case.formula, df)  # noqa: E731
    else:
        try:
            glmer = mm.glmer
        except (AttributeError, ImportError) as exc:
            raise NotExpressible(f"mixedmodels.glmer not available in this checkout ({exc})") from exc
        fit = lambda: glmer(case.formula, df, family=case.family)  # noqa: E731
    return fit, lambda r: {
        "feval": r.optinfo.feval,
        "geval": getattr(r.optinfo, "geval", 0),
        "m2ll": -2 * r.loglik,
        "converged": r.optinfo.converged,
    }


def _glmm(case: _cases.Case, df) -> Fitter:
    import glmm

    kwargs: dict[str, Any] = {"satterthwaite": False, "anova_test": "Wald"}
    if case.weights:
        kwargs["weights"] = df[case.weights].to_numpy(float)
    formula = case.formula_for("glmm")
    fit = lambda: glmm.fit(df, formula, case.family, **kwargs)  # noqa: E731
    return fit, lambda r: {"feval": r.n_eval, "m2ll": -2 * r.loglik, "converged": bool(r.converged)}


def _mixedlm(case: _cases.Case, df) -> Fitter:
    import mixedlm

    formula = case.formula_for("mixedlm")
    if case.kind == "lmer":
        fit = lambda: mixedlm.lmer(formula, df)  # noqa: E731
        return fit, lambda r: {
            "feval": r.function_evals,
            "m2ll": -2 * float(r.logLik().value),
            "converged": bool(r.converged),
        }
    family = {"binomial": mixedlm.families.Binomial, "poisson": mixedlm.families.Poisson}[case.family]()
    kwargs = {"weights": df[case.weights].to_numpy(float)} if case.weights else {}
    fit = lambda: mixedlm.glmer(formula, df, family=family, **kwargs)  # noqa: E731
    return fit, lambda r: {
        "feval": getattr(r, "n_iter", None),
        "m2ll": -2 * float(r.logLik().value),
        "converged": bool(r.converged),
    }


def _statsmodels(case: _cases.Case, df) -> Fitter:
    spec = case.statsmodels
    if isinstance(spec, str):
        raise NotExpressible(spec)
    import statsmodels.formula.api as smf

    vc = {name: f"0 + C({name})" for name in spec.get("vc", [])} or None

    def fit():
        model = smf.mixedlm(
            spec["formula"], df, groups=df[spec["groups"]], re_formula=spec.get("re_formula"), vc_formula=vc
        )
        return model.fit()

    return fit, lambda r: {"feval": None, "m2ll": -2 * float(r.llf), "converged": bool(r.converged)}


TOOLS: dict[str, Callable[[_cases.Case, Any], Fitter]] = {
    "mixedmodels": _mixedmodels,
    "mixedmodels-autoblas": _mixedmodels,  # run.py unsets OPENBLAS_CORETYPE/L2_SIZE for it
    "mixedmodels-before": _mixedmodels,  # run.py puts an earlier commit's src/ on PYTHONPATH
    "glmm": _glmm,
    "mixedlm": _mixedlm,
    "statsmodels": _statsmodels,
}

_VERSION_OF = {"mixedmodels-autoblas": "mixedmodels", "mixedmodels-before": "mixedmodels"}


def _environment(tool: str) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    import numpy as np

    info: dict[str, Any] = {"numpy": np.__version__}
    name = _VERSION_OF.get(tool, tool)
    try:
        info["version"] = version(name)
    except PackageNotFoundError:
        info["version"] = "source tree" if name == "mixedmodels" else "?"
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [
            f"{p.get('internal_api')} {p.get('version')} {p.get('architecture')} x{p.get('num_threads')}"
            for p in threadpool_info()
            if p.get("user_api") == "blas"
        ]
    except ImportError:
        pass
    return info


def run(tool: str, case_name: str, repeats: int) -> None:
    case = _cases.CASES[case_name]
    df = _cases.load(case)
    try:
        fit, describe = TOOLS[tool](case, df)
    except NotExpressible as exc:
        emit(event="na", reason=str(exc))
        return
    except ImportError as exc:
        emit(event="na", reason=f"not installed ({exc})")
        return
    emit(event="ready", rss_mb=rss_mb(), nrows=len(df), **_environment(tool))
    for i in range(repeats + 1):
        gc.collect()
        before = rss_mb()
        reset_peak()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            start, cpu_start = time.perf_counter(), time.process_time()
            try:
                result = fit()
            except Exception as exc:  # noqa: BLE001 - reported, not hidden
                emit(event="error", reason=f"{type(exc).__name__}: {str(exc)[:300]}")
                return
            seconds = time.perf_counter() - start
            # CPU time of all the process's threads: without the time spent waiting for a core
            cpu_seconds = time.process_time() - cpu_start
        peak = peak_mb()
        try:
            described = describe(result)
        except Exception as exc:  # noqa: BLE001
            described = {"describe_error": f"{type(exc).__name__}: {exc}"}
        messages = sorted({f"{w.category.__name__}: {str(w.message)[:160]}" for w in caught})
        emit(
            event="fit",
            i=i,
            seconds=seconds,
            cpu_seconds=cpu_seconds,
            rss_before_mb=before,
            peak_mb=peak,
            warnings=messages[:5],
            **described,
        )
        del result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tool", choices=sorted(TOOLS))
    parser.add_argument("case", choices=sorted(_cases.CASES))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    run(args.tool, args.case, args.repeats)


if __name__ == "__main__":
    main()
