"""Bundled data sets with R's factor levels."""

import pandas as pd
import pytest

import mixedmodels as mm


def test_lists_every_shared_dataset():
    assert mm.datasets.list() == ["cbpp", "Dyestuff", "Dyestuff2", "grouseticks", "InstEval",
                                  "Pastes", "Penicillin", "sleepstudy", "VerbAgg"]


def test_factors_are_categoricals_in_r_order():
    sleep = mm.datasets.load("sleepstudy")
    assert sleep.shape == (180, 3)
    assert isinstance(sleep["Subject"].dtype, pd.CategoricalDtype)
    assert list(sleep["Subject"].cat.categories[:3]) == ["308", "309", "310"]
    inst = mm.datasets.load("InstEval")
    assert inst["studage"].cat.ordered and not inst["service"].cat.ordered
    assert len(inst) == 73421


def test_case_insensitive_and_unknown_names():
    assert mm.datasets.load("PENICILLIN").shape == (144, 3)
    with pytest.raises(mm.DataError, match="sleepstudy"):
        mm.datasets.load("sleeptsudy")
