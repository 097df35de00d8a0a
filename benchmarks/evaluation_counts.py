"""Objective evaluations, gradient calls and optimum of every reference case (deterministic, no timing).

    python benchmarks/evaluation_counts.py --out results/counts-before.json
    python benchmarks/evaluation_counts.py --compare results/counts-before.json

Fits every linear and generalized mixed model of the reference tests
(``tests/lmm/test_model.py``'s ``LMM_CASES`` and ``EXTRA_CASES``, ``tests/glmm/test_glmm.py``'s
``CASES``) and records what ``optinfo`` says: evaluations, gradient calls (when
the optimizer used them), the optimizer, and the objective (REML criterion,
deviance, or the GLMM's -2 log L).  Evaluation counts do not depend on the
machine's load, so they guide design choices where timings on a shared
machine cannot.  ``--compare`` prints a table of the differences against an
earlier run: counts and ``objective - earlier objective`` (negative: a better optimum).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the tests as a package (tests/lmm, tests/glmm)
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent / "src"))

import mixedmodels as mm  # noqa: E402
from conftest import dataset  # noqa: E402
from tests.glmm import test_glmm  # noqa: E402
from tests.lmm import test_model as test_lmm  # noqa: E402


def _lmm_fits():
    for name, (formula, data_name, reml) in sorted(test_lmm.LMM_CASES.items()):
        yield name, lambda f=formula, d=data_name, r=reml: mm.lmer(f, dataset(d), REML=r)
    for name, (formula, data_name, reml, options) in sorted(test_lmm.EXTRA_CASES.items()):

        def fit(f=formula, d=data_name, r=reml, o=options):
            data = test_lmm.derived_data(d)
            o = dict(o)
            if "weights" in o:
                o["weights"] = data[o["weights"]].to_numpy()
            return mm.lmer(f, data, REML=r, **o)

        yield name, fit


def _glmm_fits():
    for name, (formula, data_name, family, nagq, weights, _) in sorted(test_glmm.CASES.items()):

        def fit(f=formula, d=data_name, fam=family, a=nagq, w=weights):
            data = dataset(d)
            return mm.glmer(f, data, family=test_glmm._family(fam), nAGQ=a, weights=None if w is None else data[w])

        yield "glmm:" + name.replace("shared/", ""), fit


def record(fit) -> dict:
    info = fit.optinfo
    return {
        "optimizer": info.optimizer,
        "feval": int(info.feval),
        "geval": int(getattr(info, "geval", 0) or 0),
        "objective": float(fit.objective),
        "seconds": float(info.seconds),
    }


def run(selected: set[str] | None) -> dict:
    out = {}
    for name, fit in [*_lmm_fits(), *_glmm_fits()]:
        if selected and name not in selected:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[name] = record(fit())
        print(f"{name:40s} {out[name]['feval']:5d} {out[name]['geval']:4d} {out[name]['objective']:.10f}", flush=True)
    return out


def compare(now: dict, before: dict) -> str:
    lines = [
        "| case | evaluations before | evaluations now (gradient calls) | objective now - before |",
        "|---|---|---|---|",
    ]
    for name, rec in now.items():
        old = before.get(name)
        if old is None:
            continue
        diff = rec["objective"] - old["objective"]
        lines.append(f"| {name} | {old['feval']} | {rec['feval']} ({rec['geval']}) | {diff:+.2e} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the records as JSON here")
    parser.add_argument("--compare", help="an earlier JSON output to compare with")
    parser.add_argument("--cases", help="comma-separated case names (default: all)")
    args = parser.parse_args()
    now = run(set(args.cases.split(",")) if args.cases else None)
    if args.out:
        Path(args.out).write_text(json.dumps(now, indent=1))
    if args.compare:
        print(compare(now, json.loads(Path(args.compare).read_text())))


if __name__ == "__main__":
    main()
