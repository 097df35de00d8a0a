"""Bundled data sets with R's factor levels."""

import pandas as pd
import pytest

import mixedmodels as mm


def test_lists_every_bundled_dataset():
    assert mm.datasets.list() == [
        "BodyWeight",
        "cbpp",
        "Dyestuff",
        "Dyestuff2",
        "grouseticks",
        "InstEval",
        "iris",
        "Orthodont",
        "Ovary",
        "Owls",
        "Pastes",
        "Penicillin",
        "sleepstudy",
        "VerbAgg",
    ]


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


@pytest.mark.parametrize(
    ("name", "shape", "factor", "levels_head", "ordered"),
    [
        ("Orthodont", (108, 4), "Subject", ["M16", "M05", "M02"], True),
        ("Orthodont", (108, 4), "Sex", ["Male", "Female"], False),
        ("BodyWeight", (176, 4), "Rat", ["2", "3", "4", "1"], True),
        ("BodyWeight", (176, 4), "Diet", ["1", "2", "3"], False),
        ("Ovary", (308, 3), "Mare", ["4", "2", "11", "7"], True),
        ("Owls", (599, 8), "FoodTreatment", ["Deprived", "Satiated"], False),
        ("iris", (150, 5), "Species", ["setosa", "versicolor", "virginica"], False),
    ],
)
def test_new_datasets_keep_r_levels_and_order(name, shape, factor, levels_head, ordered):
    frame = mm.datasets.load(name)
    assert frame.shape == shape
    assert list(frame[factor].cat.categories[: len(levels_head)]) == levels_head
    assert frame[factor].cat.ordered is ordered
    assert not frame[factor].isna().any()


def test_new_datasets_numeric_columns_and_dotted_names():
    owls = mm.datasets.load("Owls")
    assert owls["SiblingNegotiation"].dtype == "int64"  # R integer
    assert owls["logBroodSize"].dtype == "float64"
    assert owls["SiblingNegotiation"].sum() == 4025  # sum(glmmTMB::Owls$SiblingNegotiation) in R
    iris = mm.datasets.load("iris")
    assert list(iris.columns[:2]) == ["Sepal.Length", "Sepal.Width"]
    assert iris["Sepal.Length"].mean() == pytest.approx(5.843333333333334, rel=1e-12)
    ovary = mm.datasets.load("Ovary")
    assert ovary["follicles"].dtype == "float64" and ovary["Time"].dtype == "float64"
