"""No server endpoint evaluates a formula taken from a request (issue 22, item 11).

Formulas are code (``I()`` evaluates Python), so the explorer's server must
never turn request text into a formula.  Every route of the app (read from its
URL map, so a new endpoint is covered too) gets requests whose query strings,
form fields and JSON bodies carry formula text, including one whose
evaluation would leave a mark; the formulas the model code parses are
recorded, and each must be the explorer's own fixed formula.
"""

from __future__ import annotations

import builtins
from urllib.parse import quote

import pytest

import mixedmodels.design.inputs as inputs_module
from mixedmodels.explore.core import FORMULA

flask = pytest.importorskip("flask", reason="the explorer's server needs Flask (pip install 'mixedmodels[explore]')")

from mixedmodels.explore import create_app  # noqa: E402

MARK = "_mixedmodels_formula_was_evaluated"
PAYLOADS = [
    f"y ~ I(__import__('builtins').__setattr__('{MARK}', 1)) + (1 | cluster)",
    f"I(__import__('builtins').__setattr__('{MARK}', 1))",
    "y ~ x + (1 | g)",
]
FIELDS = ["formula", "f", "q", "model", "J", "nbar", "sigma_u", "sigma_e", "seed", "re_form", "data"]


@pytest.fixture()
def parsed(monkeypatch):
    """The formula texts the model code parses during the test."""
    seen: list[str] = []
    original = inputs_module.parse_formula

    def recording(formula, *args, **kwargs):
        seen.append(formula)
        return original(formula, *args, **kwargs)

    monkeypatch.setattr(inputs_module, "parse_formula", recording)
    return seen


def _routes(app) -> list[tuple[str, set[str]]]:
    out = []
    for rule in app.url_map.iter_rules():
        path = rule.rule
        for argument in rule.arguments:  # /static/<path:filename> and the like
            path = path.replace(f"<path:{argument}>", "x").replace(f"<{argument}>", "x")
        out.append((path, set(rule.methods or ()) - {"HEAD", "OPTIONS"}))
    return out


def test_the_routes_are_found():
    paths = {path for path, _ in _routes(create_app())}
    assert {"/", "/api/simulate"} <= paths


def test_no_endpoint_evaluates_formula_text_from_a_request(parsed):
    app = create_app()
    client = app.test_client()
    assert not hasattr(builtins, MARK)
    requests = 0
    for path, methods in _routes(app):
        for payload in PAYLOADS:
            query = {field: payload for field in FIELDS}
            for method in methods or {"GET"}:
                call = getattr(client, method.lower())
                call(path, query_string=query)
                call(path.rstrip("/") + "/" + quote(payload, safe=""))  # the formula as a path segment
                if method in ("POST", "PUT", "PATCH", "DELETE"):
                    call(path, json=query)
                    call(path, data=query)
                requests += 1
            # methods the route does not declare are refused, not routed to code
            client.post(path, json=query)
    assert requests >= len(PAYLOADS) * 2
    assert not hasattr(builtins, MARK), "a request's formula text was evaluated"
    assert set(parsed) <= {FORMULA}, f"formulas parsed from requests: {set(parsed) - {FORMULA}}"


def test_the_fixed_formula_is_the_only_one_parsed(parsed):
    """The recorder sees the explorer's own fit (so the check above is not vacuous)."""
    client = create_app().test_client()
    response = client.get("/api/simulate", query_string={"J": "5", "formula": PAYLOADS[0]})
    assert response.status_code == 400  # a formula field is an unknown parameter, refused before any fit
    assert "formula" in response.get_json()["error"]
    assert parsed == []
    response = client.get("/api/simulate", query_string={"J": "5"})
    assert response.status_code == 200
    assert parsed == [FORMULA]
