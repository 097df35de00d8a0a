"""Tests for the lme4 random-effects ("bar") layer of the formula parser."""

from __future__ import annotations

import dataclasses

import pytest

import mixedmodels.formula as formula_pkg
from mixedmodels.errors import FormulaError, MixedModelsError
from mixedmodels.formula import ParsedFormula, RandomTerm, parse_formula, random_terms_text


def terms(f: str) -> list[str]:
    """The random terms of ``f`` as lme4 text."""
    return [str(t) for t in parse_formula(f).random]


def rt(expr: str, *factors: str) -> RandomTerm:
    return RandomTerm(expr, ":".join(factors), tuple(factors))


# --------------------------------------------------------------------------
# public interface


def test_exports():
    assert set(formula_pkg.__all__) >= {"ParsedFormula", "RandomTerm", "parse_formula", "random_terms_text"}
    assert [f.name for f in dataclasses.fields(RandomTerm)] == ["expr", "group", "factors", "structure"]
    assert [f.name for f in dataclasses.fields(ParsedFormula)] == ["formula", "response", "fixed", "random"]


def test_dataclasses_are_frozen():
    p = parse_formula("y ~ x + (1 | g)")
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.fixed = "z"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.random[0].group = "h"  # type: ignore[misc]


def test_random_term_str():
    assert str(rt("1 + Days", "Subject")) == "(1 + Days | Subject)"
    assert str(rt("1", "cask", "batch")) == "(1 | cask:batch)"


def test_random_terms_text():
    ts = [rt("1 + Days", "Subject"), rt("1", "item")]
    assert random_terms_text(ts) == "(1 + Days | Subject) + (1 | item)"
    assert random_terms_text([]) == ""


# --------------------------------------------------------------------------
# the reference formulas


def test_sleepstudy_correlated():
    p = parse_formula("Reaction ~ Days + (Days | Subject)")
    assert p.formula == "Reaction ~ Days + (Days | Subject)"
    assert p.response == "Reaction"
    assert p.fixed == "Days"
    assert p.random == (rt("1 + Days", "Subject"),)
    assert str(p) == "Reaction ~ Days + (1 + Days | Subject)"


def test_sleepstudy_uncorrelated():
    p = parse_formula("Reaction ~ Days + (Days || Subject)")
    assert p.fixed == "Days"
    assert p.random == (rt("1", "Subject"), rt("0 + Days", "Subject"))


def test_pastes_nested():
    p = parse_formula("strength ~ 1 + (1 | batch/cask)")
    assert p.response == "strength"
    assert p.fixed == "1"
    # lme4: findbars(~ (1|batch/cask)) gives (1 | cask:batch), (1 | batch)
    assert p.random == (rt("1", "cask", "batch"), rt("1", "batch"))
    assert p.random[0].group == "cask:batch"
    assert p.random[0].factors == ("cask", "batch")


def test_insteval_interaction_group():
    p = parse_formula("y ~ service + (1 | s) + (1 | d) + (1 | dept:service)")
    assert p.fixed == "service"
    assert p.random == (rt("1", "s"), rt("1", "d"), rt("1", "dept", "service"))
    assert p.random[2].group == "dept:service"


def test_cbpp_binomial_response():
    p = parse_formula("cbind(incidence, size - incidence) ~ period + (1 | herd)")
    assert p.response == "cbind(incidence, size - incidence)"
    assert p.fixed == "period"
    assert p.random == (rt("1", "herd"),)


def test_grouseticks():
    p = parse_formula("TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)")
    assert p.response == "TICKS"
    assert p.fixed == "YEAR + scale(HEIGHT)"
    assert [t.group for t in p.random] == ["BROOD", "INDEX", "LOCATION"]
    assert all(t.expr == "1" for t in p.random)


def test_transformed_response_and_terms():
    p = parse_formula("log(y) ~ I(x**2) + (0 + x | g)")
    assert p.response == "log(y)"
    assert p.fixed == "I(x**2)"
    assert p.random == (rt("0 + x", "g"),)


# --------------------------------------------------------------------------
# splitting bars from fixed terms


def test_bars_anywhere_among_fixed_terms():
    p = parse_formula("y ~ (1|g) + x + (0 + x | h)")
    assert p.fixed == "x"
    assert p.random == (rt("1", "g"), rt("0 + x", "h"))


@pytest.mark.parametrize(
    "f, fixed",
    [
        ("y ~ (1 | g)", "1"),
        ("y ~ 1 + (1 | g)", "1"),
        ("y ~ 0 + (1 | g)", "0"),
        ("y ~ -1 + (1 | g)", "0"),
        ("y ~ (1 | g) - 1", "0"),
        ("y ~ 1 + Days + (1 | g)", "1 + Days"),
        ("y ~ 0 + f + (1 | g)", "0 + f"),
        ("y ~ x - 1 + (1 | g)", "x - 1"),
        ("y ~ -1 + x + (1 | g)", "-1 + x"),
        ("y ~ x + offset(log(z)) + (1 | g)", "x + offset(log(z))"),
        ("y ~ a*b + a:c + (1 | g)", "a*b + a:c"),
        ("y ~ (a + b)^2 + (1 | g)", "(a + b)^2"),
        ("y ~ x", "x"),
    ],
)
def test_fixed_part(f, fixed):
    assert parse_formula(f).fixed == fixed


def test_no_bars_gives_empty_random():
    assert parse_formula("y ~ x").random == ()


def test_one_sided_formula():
    p = parse_formula("~ x + (1 | g)")
    assert p.response is None
    assert p.fixed == "x"
    assert str(p) == "~ x + (1 | g)"


def test_nested_parentheses_do_not_confuse_splitter():
    p = parse_formula("y ~ log(x + 1) + I((x - 1)**2) + (1 + log(x + 1) | g)")
    assert p.fixed == "log(x + 1) + I((x - 1)**2)"
    assert p.random == (rt("1 + log(x + 1)", "g"),)


def test_brackets_braces_and_quotes_respected():
    p = parse_formula("y ~ C(f, levels=['a+b', 'c|d']) + {x + 1} + (1 | g)")
    assert p.fixed == "C(f, levels=['a+b', 'c|d']) + {x + 1}"
    assert p.random == (rt("1", "g"),)


def test_redundant_parentheses_around_bar():
    assert parse_formula("y ~ ((x | g))").random == (rt("1 + x", "g"),)


def test_parenthesised_fixed_term_kept():
    assert parse_formula("y ~ (a + b) + (1 | g)").fixed == "(a + b)"


# --------------------------------------------------------------------------
# lhs normalisation


@pytest.mark.parametrize(
    "lhs, expr",
    [
        ("1", "1"),
        ("x", "1 + x"),
        ("1 + x", "1 + x"),
        ("x + 1", "1 + x"),
        ("0 + x", "0 + x"),
        ("x + 0", "0 + x"),
        ("x - 1", "0 + x"),
        ("-1 + x", "0 + x"),
        ("1 + condition", "1 + condition"),
        ("log(x)", "1 + log(x)"),
        ("I(x**2)", "1 + I(x**2)"),
        ("scale(x)", "1 + scale(x)"),
        ("a:b", "1 + a:b"),
        ("a*b", "1 + a*b"),
        ("0 + a*b - a:b", "0 + a*b - a:b"),
        ("x + I((x - 1)**2)", "1 + x + I((x - 1)**2)"),
    ],
)
def test_lhs_normalisation(lhs, expr):
    (term,) = parse_formula(f"y ~ ({lhs} | g)").random
    assert term.expr == expr
    assert term.group == "g"


# --------------------------------------------------------------------------
# || (uncorrelated)


@pytest.mark.parametrize(
    "bar, expected",
    [
        ("(Days || Subject)", ["(1 | Subject)", "(0 + Days | Subject)"]),
        ("(0 + a + b || g)", ["(0 + a | g)", "(0 + b | g)"]),
        ("(1 + a || g)", ["(1 | g)", "(0 + a | g)"]),
        ("(a + b - 1 || g)", ["(0 + a | g)", "(0 + b | g)"]),
        ("(1 || g)", ["(1 | g)"]),
        ("(log(x + 1) || g)", ["(1 | g)", "(0 + log(x + 1) | g)"]),
        # like R's terms(): a*b expands, degree order, duplicates and '-' terms dropped
        ("(0 + a*b || g)", ["(0 + a | g)", "(0 + b | g)", "(0 + a:b | g)"]),
        ("(a:b + c || g)", ["(1 | g)", "(0 + c | g)", "(0 + a:b | g)"]),
        ("(a*b - a:b || g)", ["(1 | g)", "(0 + a | g)", "(0 + b | g)"]),
        ("(a + b + a || g)", ["(1 | g)", "(0 + a | g)", "(0 + b | g)"]),
        ("(0 + I(x**2) || g)", ["(0 + I(x**2) | g)"]),
    ],
)
def test_double_bar(bar, expected):
    assert terms(f"y ~ x + {bar}") == expected


def test_double_bar_with_nesting():
    # lme4 expands || first, then the slash
    assert terms("y ~ (x || a/b)") == ["(1 | b:a)", "(1 | a)", "(0 + x | b:a)", "(0 + x | a)"]


# --------------------------------------------------------------------------
# grouping factors


def test_nesting_two_levels():
    (inner, outer) = parse_formula("y ~ (1 | a/b)").random
    assert inner == RandomTerm("1", "b:a", ("b", "a"))
    assert outer == RandomTerm("1", "a", ("a",))


def test_nesting_three_levels():
    assert [t.group for t in parse_formula("y ~ (1 | a/b/c)").random] == ["c:b:a", "b:a", "a"]
    assert parse_formula("y ~ (1 | a/b/c)").random[0].factors == ("c", "b", "a")


def test_nesting_repeats_lhs():
    assert terms("y ~ (x | a/b)") == ["(1 + x | b:a)", "(1 + x | a)"]


def test_nesting_with_interaction_piece():
    assert [t.group for t in parse_formula("y ~ (1 | a/b:c)").random] == ["b:c:a", "a"]


def test_interaction_group():
    (t,) = parse_formula("y ~ (1 | a:b)").random
    assert t.group == "a:b"
    assert t.factors == ("a", "b")


def test_group_spaces_stripped():
    (t,) = parse_formula("y ~ (1 |  cask : batch )").random
    assert t == rt("1", "cask", "batch")
    assert [t.group for t in parse_formula("y ~ (1 | batch / cask)").random] == ["cask:batch", "batch"]


def test_group_names_with_dots_and_underscores():
    (t,) = parse_formula("y ~ (1 | my.group_2)").random
    assert t.factors == ("my.group_2",)


def test_backquoted_group_name():
    p = parse_formula("y ~ (1 | `my group`:h)")
    assert p.random == (rt("1", "my group", "h"),)
    assert str(p.random[0]) == "(1 | `my group`:h)"
    assert parse_formula(str(p)) == p


# --------------------------------------------------------------------------
# whitespace


def test_whitespace_insensitive():
    a = parse_formula("Reaction ~ Days + (Days | Subject)")
    b = parse_formula("Reaction~Days+(Days|Subject)")
    c = parse_formula("  Reaction  ~\n   Days +\n\t(  Days  |  Subject  )\n")
    assert a == b == c


def test_newlines_inside_terms():
    p = parse_formula("y ~ log(x +\n 1) + (1 +\n x |\n g)")
    assert p.fixed == "log(x + 1)"
    assert p.random == (rt("1 + x", "g"),)


def test_equality_ignores_original_text():
    assert parse_formula("y ~ (x - 1 | g)") == parse_formula("y ~ (0 + x | g)")
    assert parse_formula("y ~ (x - 1 | g)").formula == "y ~ (x - 1 | g)"


# --------------------------------------------------------------------------
# round trips


ROUND_TRIP = [
    "Reaction ~ Days + (Days | Subject)",
    "Reaction ~ Days + (Days || Subject)",
    "strength ~ 1 + (1 | batch/cask)",
    "y ~ service + (1 | s) + (1 | d) + (1 | dept:service)",
    "cbind(incidence, size - incidence) ~ period + (1 | herd)",
    "TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)",
    "log(y) ~ I(x**2) + (0 + x | g)",
    "y ~ (1|g) + x + (0 + x | h)",
    "y ~ -1 + x + (x - 1 | a/b/c)",
    "y ~ 0 + (1 | g)",
    "y ~ (1 | g)",
    "~ x + (a*b - a:b || g/h)",
    "y ~ x",
    "y ~ x + offset(log(z)) + (log(x + 1) | `odd name`)",
]


@pytest.mark.parametrize("f", ROUND_TRIP)
def test_round_trip(f):
    p = parse_formula(f)
    again = parse_formula(str(p))
    assert again == p
    assert str(again) == str(p)


def test_str_is_normalised():
    assert str(parse_formula("y~x+(x-1|a/b)")) == "y ~ x + (0 + x | b:a) + (0 + x | a)"
    assert str(parse_formula("y ~ (1|g)")) == "y ~ 1 + (1 | g)"


# --------------------------------------------------------------------------
# errors


def raises(f, *pieces: str) -> FormulaError:
    """Assert parse_formula(f) raises FormulaError whose message has each piece."""
    with pytest.raises(FormulaError) as info:
        parse_formula(f)
    for piece in pieces:
        assert piece in str(info.value), (piece, str(info.value))
    return info.value


def test_formula_error_is_a_value_error():
    assert issubclass(FormulaError, MixedModelsError)
    assert issubclass(FormulaError, ValueError)


@pytest.mark.parametrize("bad", [None, 3, b"y ~ x", ["y ~ x"]])
def test_not_a_string(bad):
    raises(bad, type(bad).__name__, "string")


@pytest.mark.parametrize("bad", ["", "   ", "\n"])
def test_empty(bad):
    raises(bad, "empty")


def test_no_tilde():
    raises("y + x", "'y + x'", "no '~'")


def test_two_tildes():
    raises("y ~ x ~ z", "'y ~ x ~ z'", "2 '~'")


def test_tilde_in_quotes_is_not_counted():
    assert parse_formula("y ~ C(f, levels=['~']) + (1 | g)").fixed == "C(f, levels=['~'])"


def test_empty_rhs():
    raises("y ~ ", "right of '~'")


def test_trailing_plus():
    raises("y ~ x + (1 | g) +", "ends with '+'")


@pytest.mark.parametrize(
    "f, where, what",
    [
        ("y ~ x + (1 | g", "character 9", "'(' is never closed"),
        ("y ~ x) + (1 | g)", "character 6", "')' has no matching '('"),
        ("y ~ log(x] + (1 | g)", "character 8", "'(' is closed by ']'"),
        ("y ~ (1 + log(x | g)", "character 5", "never closed"),
        ("y ~ C(f, 'a) + (1 | g)", "character 10", "quote ' is never closed"),
    ],
)
def test_unbalanced(f, where, what):
    err = raises(f, "unbalanced", where, what)
    # the caret line points at the offending character
    caret_line = str(err).splitlines()[-1]
    column = int(where.split()[-1]) - 1
    assert caret_line.index("^") - 4 == column


@pytest.mark.parametrize(
    "f, piece",
    [
        ("y ~ x | g", "'x | g'"),
        ("y ~ 1 + x || g", "'1 + x || g'"),
    ],
)
def test_bar_outside_parentheses(f, piece):
    raises(f, piece, "outside parentheses")


@pytest.mark.parametrize(
    "f, piece",
    [
        ("y ~ I(a | b)", "'I(a | b)'"),
        ("y ~ x*(1 | g)", "'x*(1 | g)'"),
        ("y ~ (1 | g):x", "'(1 | g):x'"),
        ("y ~ (x + (1 | g))", "'(x + (1 | g))'"),
        ("y ~ (1 | g) (1 | h)", "'(1 | g) (1 | h)'"),
    ],
)
def test_bar_not_a_top_level_term(f, piece):
    raises(f, piece, "own parentheses")


def test_bar_in_response():
    raises("y | w ~ x", "'y | w'", "response")


def test_subtracted_bar():
    raises("y ~ x - (1 | g)", "'(1 | g)'", "subtracted")


@pytest.mark.parametrize("f, piece", [("y ~ (1 | )", "'(1 | )'"), ("y ~ (1 || )", "'(1 || )'")])
def test_empty_group(f, piece):
    raises(f, piece, "no grouping factor")


@pytest.mark.parametrize("f, piece", [("y ~ ( | g)", "'( | g)'"), ("y ~ (|| g)", "'(|| g)'")])
def test_empty_lhs(f, piece):
    raises(f, piece, "nothing left of the bar", "(1 | g)")


@pytest.mark.parametrize("f", ["y ~ (0 | g)", "y ~ (-1 | g)", "y ~ (0 || g)"])
def test_lhs_without_effects(f):
    raises(f, "no random effects")


@pytest.mark.parametrize(
    "group",
    [
        "factor(g)",
        "g + h",
        "2",
        "a//b",
        "a/",
        ":a",
        "a b",
        "g$h",
        "interaction(a, b)",
    ],
)
def test_group_not_variable_names(group):
    raises(f"y ~ x + (1 | {group})", f"'{group}'", "not a variable name", "':'", "'/'")


@pytest.mark.parametrize(
    "f, piece",
    [
        ("y ~ (1 ||| g)", "'(1 ||| g)'"),
        ("y ~ (1 | g | h)", "'(1 | g | h)'"),
        ("y ~ (1 | | g)", "'(1 | | g)'"),
    ],
)
def test_too_many_bars(f, piece):
    raises(f, piece, "too many bars")


def test_nested_bar_in_lhs():
    raises("y ~ ((1 | h) | g)", "'((1 | h) | g)'", "nested")


# --------------------------------------------------------------------------
# nesting depth (issue 22 item 10): refused at once, never a quadratic scan


def _count_walked(monkeypatch) -> list[int]:
    """Count the characters the bracket scanner visits (the parser's unit of work)."""
    from mixedmodels.formula import bars

    walked = [0]
    original = bars._walk

    def counting(text, formula):
        for item in original(text, formula):
            walked[0] += 1
            yield item

    monkeypatch.setattr(bars, "_walk", counting)
    return walked


@pytest.mark.parametrize("opener", ["(", "log(", "["])
def test_ten_thousand_nested_brackets_are_refused_after_one_short_scan(monkeypatch, opener):
    closer = {"(": ")", "log(": ")", "[": "]"}[opener]
    formula = "y ~ " + opener * 10_000 + "x" + closer * 10_000
    walked = _count_walked(monkeypatch)
    with pytest.raises(FormulaError, match=r"more than 100 levels deep") as info:
        parse_formula(formula)
    # the refusal comes from the first scan, at the 101st bracket: a bounded amount of work
    assert walked[0] <= len("y ~ ") + 101 * len(opener)
    assert len(str(info.value)) < 400  # the message quotes an excerpt, not 30,000 characters


def test_allowed_depth_parses_with_work_linear_in_length(monkeypatch):
    from mixedmodels.formula.bars import MAX_DEPTH

    formula = "y ~ z + " + "(" * MAX_DEPTH + "x" + ")" * MAX_DEPTH + " + (1 | g)"
    walked = _count_walked(monkeypatch)
    p = parse_formula(formula)
    assert p.fixed.startswith("z + ((") and [str(t) for t in p.random] == ["(1 | g)"]
    # each bracket level is unwrapped once at most: work <= (depth + a few scans) x length
    assert walked[0] <= (MAX_DEPTH + 10) * len(formula)
