"""The benchmark suite's seeded synthetic designs (benchmarks/synthetic.py).

The benchmarks themselves are never run as tests; this checks only that the
generator makes the design its docstring promises, reproducibly, and that a
fit recovers the parameters it was told (so a benchmark on it times a real,
well-posed model).
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "synthetic.py"
_spec = importlib.util.spec_from_file_location("bench_synthetic", _PATH)
synthetic = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = synthetic  # dataclasses look their module up there
_spec.loader.exec_module(synthetic)


def test_crossed_layout_and_reproducibility():
    a = synthetic.crossed(12_000, 400, 60, seed=7)
    b = synthetic.crossed(12_000, 400, 60, seed=7)
    c = synthetic.crossed(12_000, 400, 60, seed=8)
    pd.testing.assert_frame_equal(a.data, b.data)
    assert not np.allclose(a.data["y"], c.data["y"])
    df = a.data
    assert len(df) == 12_000
    assert df["subject"].cat.categories.size == 400 and df["item"].cat.categories.size == 60
    assert (df["subject"].value_counts() == 30).all()  # every subject has n_rows / n_subjects rows
    assert df["item"].nunique() == 60
    assert a.formula == "y ~ x + (1 + x | subject) + (1 | item)"


def test_nested_layout():
    design = synthetic.nested(6_000, 1_200, 40, seed=3)
    df = design.data
    assert len(df) == 6_000
    assert df["outer"].nunique() == 40
    assert df["inner"].nunique() == 30  # inner labels repeat within every outer group
    pairs = df.groupby(["outer", "inner"], observed=True).size()
    assert len(pairs) == 1_200 and (pairs == 5).all()


def test_sizes_must_divide():
    with pytest.raises(ValueError, match="multiple"):
        synthetic.crossed(1_001, 10, 5)
    with pytest.raises(ValueError, match="n_inner"):
        synthetic.nested(1_000, 30, 7)


def test_crossed_fit_recovers_the_truth():
    design = synthetic.crossed(40_000, 400, 100, seed=11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mm.lmer(design.formula, design.data)
    truth = design.truth
    beta, se = fit.fixef, fit.se
    for name in ("(Intercept)", "x"):
        assert abs(beta[name] - truth[name]) < 4 * se[name], name
    vc = fit.varcorr
    sds = dict(zip(vc["grp"] + " " + vc["var1"].fillna("") + " " + vc["var2"].fillna(""), vc["sdcor"]))
    assert sds["subject (Intercept) "] == pytest.approx(truth["sd subject (Intercept)"], rel=0.15)
    assert sds["subject x "] == pytest.approx(truth["sd subject x"], rel=0.15)
    assert sds["item (Intercept) "] == pytest.approx(truth["sd item"], rel=0.25)
    assert fit.sigma == pytest.approx(truth["sigma"], rel=0.02)


def test_nested_fit_recovers_the_truth():
    design = synthetic.nested(10_000, 2_000, 100, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mm.lmer(design.formula, design.data)
    assert abs(fit.fixef["x"] - design.truth["x"]) < 4 * fit.se["x"]
    vc = fit.varcorr
    sds = dict(zip(vc["grp"], vc["sdcor"]))
    assert sds["outer"] == pytest.approx(design.truth["sd outer"], rel=0.2)
    assert sds["inner:outer"] == pytest.approx(design.truth["sd inner:outer"], rel=0.15)
    assert fit.sigma == pytest.approx(design.truth["sigma"], rel=0.03)
