"""R's spellings turned into formulaic's (formula/rsyntax.py): the text rewriting itself.

The rewritten formulas are fitted against R in tests/design/test_formula_language.py; these
tests pin down the token rules: what is rewritten, and what is left as Python.
"""

from __future__ import annotations

import pytest

from mixedmodels.errors import FormulaError
from mixedmodels.formula import expand_dot, has_dot, is_plain_name, quote_name, to_formulaic, with_bar_parentheses


@pytest.mark.parametrize(
    "written, code",
    [
        ("Sepal.Length", "`Sepal.Length`"),
        ("log(log.dose) + x.y:z", "log(`log.dose`) + `x.y`:z"),
        ("poly(Days, 2, raw = TRUE)", "poly(Days, 2, raw = True)"),
        ("scale(x, center = FALSE, scale = TRUE)", "scale(x, center = False, scale = True)"),
        ("ns(x, knots = NULL)", "ns(x, knots = None)"),
        ("as.numeric(Species) + as.factor(g)", "as_numeric(Species) + as_factor(g)"),
        ("ns(x, df = 3, Boundary.knots = c(0, 10))", "ns(x, df = 3, Boundary_knots = c(0, 10))"),
        ('Q("my days") + Q(\'x.y\') + Q("Days")', "`my days` + `x.y` + Days"),
        # left as Python: namespaces, methods, numbers, strings, backticks, the dot operator
        ("np.log(x) + C(f, contr.sum) + I(x * math.pi)", "np.log(x) + C(f, contr.sum) + I(x * math.pi)"),
        ("I(x.clip(0)) + (x).mean()", "I(x.clip(0)) + (x).mean()"),
        ("I(1.5e-3 * x + .5 + 2.) + 0x1F", "I(1.5e-3 * x + .5 + 2.) + 0x1F"),
        ("C(f, levels=['a.b', \"TRUE\"]) + `x.y` + `TRUE`", "C(f, levels=['a.b', \"TRUE\"]) + `x.y` + `TRUE`"),
        (". - Species", ". - Species"),
        ("x1.5 + .x + x.", "`x1.5` + `.x` + `x.`"),
        ("I(a.b == 2)", "I(`a.b` == 2)"),
    ],
)
def test_r_spellings_become_formulaic_code(written, code):
    assert to_formulaic(written) == code


def test_q_of_a_name_with_a_backtick_is_refused():
    with pytest.raises(FormulaError, match="contains a backtick"):
        to_formulaic('Q("a`b")')


@pytest.mark.parametrize(
    "name, plain",
    [
        ("Days", True),
        ("Sepal.Length", True),
        ("_x", True),
        (".x", True),
        ("é", True),
        ("Sepal Width", False),
        ("1", False),
        (".5x", False),
        ("if", False),
        ("TRUE", False),
        ("a-b", False),
    ],
)
def test_plain_names_are_written_bare_others_in_backticks(name, plain):
    assert is_plain_name(name) is plain
    assert quote_name(name) == (name if plain else f"`{name}`")


@pytest.mark.parametrize(
    "text, expanded",
    [
        (".", "a + `b c` + d"),
        (". - d", "a + `b c` + d - d"),
        ("x + . + z", "x + a + `b c` + d + z"),
        (".^2", "(a + `b c` + d)^2"),
        ("x - .", "x - (a + `b c` + d)"),
        ("x:.", "x:(a + `b c` + d)"),
        ("(.)", "(a + `b c` + d)"),
        ("I(x.y) + Sepal.Length", "I(x.y) + Sepal.Length"),  # dots inside names are not the operator
        ("`.` + '.'", "`.` + '.'"),
    ],
)
def test_dot_expands_to_the_other_columns(text, expanded):
    assert has_dot(text) is (text != expanded)
    assert expand_dot(text, ["a", "b c", "d"]) == expanded


def test_dot_with_no_other_columns_is_an_error():
    with pytest.raises(FormulaError, match="no(ne| other)"):
        expand_dot(".", [])


@pytest.mark.parametrize(
    "re_form, expected",
    [
        ("~ 1 | Subject", "~ (1 | Subject)"),
        ("~Days|Subject", "~ (Days|Subject)"),
        ("~ x + z || g", "~ (x + z || g)"),
        ("~ (1 | g) + (1 | h)", "~ (1 | g) + (1 | h)"),
        ("~ 0", "~ 0"),
        ("~ I('|')", "~ I('|')"),
    ],
)
def test_re_form_bars_get_parentheses(re_form, expected):
    assert with_bar_parentheses(re_form) == expected
