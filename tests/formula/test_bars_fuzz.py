"""Property-based tests of the formula parser: valid lme4 formulas round-trip; garbage only raises FormulaError."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mixedmodels.errors import FormulaError
from mixedmodels.formula import parse_formula

names = st.sampled_from(["x", "y2", "Days", "cond", "age_c", "z"])
groups = st.sampled_from(["g", "Subject", "item", "a", "b"])
calls = st.builds(lambda f, v: f"{f}({v})", st.sampled_from(["log", "exp", "scale", "sqrt"]), names)
powers = st.builds(lambda v: f"I({v}**2)", names)
atoms = st.one_of(names, calls, powers)
interactions = st.builds(lambda a, b, op: f"{a}{op}{b}", names, names, st.sampled_from([":", "*"]))
fixed_terms = st.lists(st.one_of(atoms, interactions), min_size=0, max_size=3)


@st.composite
def random_terms(draw):
    lhs = draw(st.lists(atoms, min_size=0, max_size=2))
    intercept = draw(st.sampled_from(["", "1", "0"]))
    parts = ([intercept] if intercept else []) + lhs
    if not parts or parts == ["0"]:
        parts = ["1"]
    bar = draw(st.sampled_from(["|", "||"]))
    group = draw(
        st.one_of(groups, st.builds(lambda a, b, op: f"{a}{op}{b}", groups, groups, st.sampled_from([":", "/"])))
    )
    return f"({' + '.join(parts)} {bar} {group})"


@st.composite
def formulas(draw):
    response = draw(st.one_of(names, calls))
    rhs = draw(fixed_terms) + draw(st.lists(random_terms(), min_size=1, max_size=3))
    return f"{response} ~ {' + '.join(rhs)}"


@settings(max_examples=200, deadline=None)
@given(formulas())
def test_valid_formulas_parse_and_round_trip(formula):
    parsed = parse_formula(formula)
    assert parsed.random
    assert parse_formula(str(parsed)) == parsed


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="yx~+-*/:|()01 abcI^.,{}[]'\"\\\n", max_size=40))
def test_arbitrary_text_only_raises_formula_error(text):
    try:
        parse_formula(text)
    except FormulaError:
        pass
