"""Covariance-structure calls around bar terms: us(), diag(), cs(), ar1() (issue #19)."""

import pytest

from mixedmodels.errors import FormulaError
from mixedmodels.formula import parse_formula


@pytest.mark.parametrize("name", ["us", "diag", "cs", "ar1"])
def test_structure_is_recorded_and_printed(name):
    p = parse_formula(f"y ~ x + {name}(0 + f | g) + (1 | h)")
    assert p.fixed == "x"
    assert [t.structure for t in p.random] == [name, "us"]
    assert [t.expr for t in p.random] == ["0 + f", "1"]
    shown = "(0 + f | g)" if name == "us" else f"{name}(0 + f | g)"
    assert str(p.random[0]) == shown
    assert parse_formula(str(p)) == p


def test_lhs_is_normalised_and_nesting_expands():
    p = parse_formula("y ~ diag(Days | a/b)")
    assert [(t.expr, t.group, t.structure) for t in p.random] == [
        ("1 + Days", "b:a", "diag"),
        ("1 + Days", "a", "diag"),
    ]


def test_same_name_without_a_bar_is_a_fixed_term():
    p = parse_formula("y ~ diag(x) + cs(z) + (1 | g)")
    assert p.fixed == "diag(x) + cs(z)"
    assert [t.structure for t in p.random] == ["us"]


def test_double_bar_inside_a_structure_is_an_error():
    with pytest.raises(FormulaError, match=r"uses '\|\|' inside diag\(\)"):
        parse_formula("y ~ diag(1 + x || g)")


def test_subtracted_structure_is_an_error():
    with pytest.raises(FormulaError, match="subtracted"):
        parse_formula("y ~ x - cs(0 + f | g)")
