"""Bad input on Dask gets the in-memory MixedModelsErrors, found by the passes' reductions.

Each case is fitted in memory and on Dask and must raise the same class with
the same message.  The errors that pass 1 can find (columns, levels, missing
values, weights, numbers of random effects) must come before pass 2 ever
runs when pass 1 is made: the tests replace pass 2's partition function with
one that fails.  When pass 1 is folded into pass 2 (``mixedmodels.dask.fused``:
known categories, integer ids) they come from the fused pass's counts, with
the same messages (``test_dask_fused``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from conftest import dataset
from conftest_dask import on

dd = pytest.importorskip("dask.dataframe")


def _data() -> pd.DataFrame:
    df = dataset("sleepstudy").copy()
    df["one"] = pd.Categorical(["a"] * len(df))
    df["onetext"] = "x"
    df["obs"] = np.arange(len(df))
    df["allnan"] = np.nan
    df["negative"] = -1.0
    stage = np.minimum(df["Days"].to_numpy() // 3, 2)
    df["Stage"] = pd.Categorical(stage, ordered=True)
    df["StageGap"] = pd.Categorical(stage, categories=[0, 1, 5, 2], ordered=True)  # a category without rows
    df["StageUnordered"] = pd.Categorical(stage)
    return df


# formula, keywords (column names), error class, message fragment; all found in pass 1
PASS1_CASES = [
    ("Reaction ~ Dayz + (1 | Subject)", {}, mm.DataError, "column 'Dayz' not found in data; did you mean 'Days'?"),
    ("Reaction ~ Days + (1 | one)", {}, mm.ModelSpecError, "grouping factor 'one' in (1 | one) has 1 level"),
    ("Reaction ~ onetext + (1 | Subject)", {}, mm.DataError, "factor 'onetext' has only 1 level(s)"),
    ("allnan ~ Days + (1 | Subject)", {}, mm.DataError, "all 180 rows had missing values (allnan: 180 rows)"),
    (
        "Reaction ~ Days + (Days | obs)",
        {},
        mm.ModelSpecError,
        "number of observations (=180) < number of random effects (=360)",
    ),
    (
        "Reaction ~ Days + (1 | obs)",
        {},
        mm.ModelSpecError,
        "number of observations (=180) <= number of random effects (=180)",
    ),
    ("Reaction ~ Days + (1 | Subject)", {"weights": "allnan"}, mm.DataError, "weights= is missing (NaN) for every row"),
    ("Reaction ~ Days + (1 | Subject)", {"weights": "negative"}, mm.DataError, "weights must be non-negative"),
    ("Reaction ~ Days", {}, mm.ModelSpecError, "no random-effects terms"),
    ("Subject ~ Days + (1 | Subject)", {}, mm.DataError, "non-numeric with 18 levels"),
    ("cbind(Reaction, Days) ~ Days + (1 | Subject)", {}, mm.DataError, "must be a single numeric column for lmer"),
    # covariance structures the term's columns cannot carry
    ("Reaction ~ Days + cs(1 | Subject)", {}, mm.ModelSpecError, "cs() needs at least two columns"),
    ("Reaction ~ Days + ar1(1 + Days | Subject)", {}, mm.ModelSpecError, "is not of that form"),
    ("Reaction ~ Days + ar1(0 + StageUnordered | Subject)", {}, mm.ModelSpecError, "needs an ordered factor"),
    ("Reaction ~ Days + ar1(0 + StageGap | Subject)", {}, mm.ModelSpecError, "level(s) '5' have no rows"),
]


def _fail(*args, **kwargs):
    raise AssertionError("pass 2 ran, but the error was there to be found in pass 1")


@pytest.mark.parametrize("formula, keywords, error, message", PASS1_CASES)
def test_pass1_finds_the_in_memory_errors(formula, keywords, error, message, monkeypatch):
    df = _data()
    with pytest.raises(error) as in_memory:
        mm.lmer(formula, df, **{k: df[v].to_numpy() for k, v in keywords.items()})
    assert message in str(in_memory.value)
    monkeypatch.setattr("mixedmodels.dask.lmm.pass2_partition", _fail)
    with on("sync"), pytest.raises(error) as on_dask:
        mm.lmer(formula, dd.from_pandas(df, npartitions=4), **keywords)
    assert str(on_dask.value) == str(in_memory.value)


def test_non_finite_columns_are_found_by_pass2_with_the_in_memory_message():
    """Row 80 alone gives log(0); the values standing in for x while the design is set up do not include it."""
    df = _data().assign(x=lambda d: d["Reaction"])
    df.loc[80, "x"] = 300.0
    formula = "Reaction ~ log(abs(x - 300)) + (1 | Subject)"
    with pytest.raises(mm.DataError) as in_memory:
        mm.lmer(formula, df)
    with on("sync"), pytest.raises(mm.DataError) as on_dask:
        mm.lmer(formula, dd.from_pandas(df, npartitions=2))
    assert "in 1 rows" in str(in_memory.value) and str(on_dask.value) == str(in_memory.value)


def test_non_finite_values_met_while_setting_up_the_design_give_no_wrong_count():
    df = _data()
    with pytest.raises(mm.DataError, match=r"log\(Days\) have non-finite values .* in 18 rows"):
        mm.lmer("Reaction ~ log(Days) + (1 | Subject)", df)
    with on("sync"), pytest.raises(mm.DataError, match=r"log\(Days\) have non-finite values .* in some rows"):
        mm.lmer("Reaction ~ log(Days) + (1 | Subject)", dd.from_pandas(df, npartitions=4))


def test_a_constant_response_is_found_by_pass2():
    df = _data().assign(Reaction=1.0)
    with on("sync"), pytest.raises(mm.DataError, match="is constant"):
        mm.lmer("Reaction ~ Days + (1 | Subject)", dd.from_pandas(df, npartitions=3))


def test_a_glmer_response_outside_the_family_is_refused():
    df = dataset("cbpp").assign(incidence=lambda d: -d["incidence"])
    with on("sync"), pytest.raises(mm.DataError, match="negative counts"):
        mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", dd.from_pandas(df, npartitions=2))


def test_what_dask_cannot_evaluate_partition_by_partition():
    ddf = dd.from_pandas(_data(), npartitions=3)
    with on("sync"):
        with pytest.raises(mm.NotOnDaskError, match="spline knots"):
            mm.lmer("Reaction ~ bs(Days, 3) + (1 | Subject)", ddf)
        with pytest.raises(mm.NotOnDaskError, match="response"):
            mm.lmer("scale(Reaction) ~ Days + (1 | Subject)", ddf)
        with pytest.raises(mm.NotOnDaskError, match="computed from other columns"):
            mm.lmer("Reaction ~ C(Days * obs) + (1 | Subject)", ddf)


def test_residual_structures_are_refused_on_dask():
    """Residual structures' blocks are not sums over rows: lmer refuses them on Dask; glmer has none anywhere."""
    df = _data()
    ddf = dd.from_pandas(df, npartitions=3)
    with on("sync"):
        with pytest.raises(
            mm.NotOnDaskError, match=r"weights=var_ident\(\) \(a residual structure\) is not available on Dask"
        ):
            mm.lmer("Reaction ~ Days + (1 | Subject)", ddf, weights=mm.var_ident("Stage"))
        with pytest.raises(mm.NotOnDaskError, match="correlation= .* not available on Dask"):
            mm.lmer("Reaction ~ Days + (1 | Subject)", ddf, correlation=mm.cor_ar1("Days", group="Subject"))
        with pytest.raises(mm.DataError):  # in memory too: glmer's weights are prior weights
            mm.glmer("Days ~ Reaction + (1 | Subject)", df, family="poisson", weights=mm.var_ident("Stage"))
        with pytest.raises(mm.DataError, match="only lmer"):
            mm.glmer("Days ~ Reaction + (1 | Subject)", ddf, family="poisson", weights=mm.var_ident("Stage"))


def test_negative_binomial_is_refused_on_dask():
    ddf = dd.from_pandas(dataset("cbpp"), npartitions=2)
    with on("sync"):
        with pytest.raises(mm.NotOnDaskError, match="glmer_nb.. is not available on Dask"):
            mm.glmer_nb("incidence ~ period + (1 | herd)", ddf)
        with pytest.raises(mm.NotOnDaskError, match="binomial and Poisson"):
            mm.glmer("incidence ~ period + (1 | herd)", ddf, family=mm.families.NegativeBinomial(theta=2.0))


def test_ar1_needs_known_categories_on_dask():
    ddf = dd.from_pandas(_data(), npartitions=3)
    ddf["Stage"] = ddf["Stage"].cat.as_unknown()
    with on("sync"), pytest.raises(mm.NotOnDaskError, match="as_known"):
        mm.lmer("Reaction ~ Days + ar1(0 + Stage | Subject)", ddf)
