"""End to end: the shrinkage explorer in a real headless Chromium, driven by Playwright.

The test starts the server on a free localhost port, opens the page, moves the
sigma_u slider with the keyboard as a person would, and reads back what the page
shows: the Chart.js datasets and the MSE table.  It checks the classic
demonstrations (sigma_u = 0.2: partial estimates on the grand mean; sigma_u = 5:
partial close to no pooling), that the chart holds the numbers of the REML fit,
that the view switch changes the plotted estimates, and that the page loads
nothing from the network and logs no error.  Screenshots go to tests/artifacts/.

Needs Playwright for Python and Debian's chromium (/usr/bin/chromium); never
``playwright install``.  Skipped, with the reason, when either is missing.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest

from mixedmodels.explore import ExploreParams, shrinkage_demo

pytest.importorskip("flask", reason="the explorer's server needs Flask (pip install 'mixedmodels[explore]')")
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed (pip install playwright)")

CHROMIUM = os.environ.get("MIXEDMODELS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)", allow_module_level=True)

from mixedmodels.explore import start_server  # noqa: E402

ARTIFACTS = Path(__file__).parents[1] / "artifacts"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]

# what the page shows, read from the live Chart.js instance and the DOM
READ_PAGE = """() => {
  const chart = window.explorer.chart;
  const sets = Object.fromEntries(chart.data.datasets.map((d, i) => [d.id, {
    y: d.data.map((p) => p.y), x: d.data.map((p) => p.x), visible: chart.isDatasetVisible(i), label: d.label }]));
  const mse = {}, best = [], current = [];
  for (const row of document.querySelectorAll('#mse-table tbody tr')) {
    mse[row.dataset.approach] = row.querySelector('.mse-value').textContent;
    if (row.classList.contains('best')) best.push(row.dataset.approach);
    if (row.classList.contains('current')) current.push(row.dataset.approach);
  }
  return { params: window.explorer.data.params, view: window.explorer.view, sets, mse, best, current,
           rows: document.querySelectorAll('#cluster-table tbody tr').length,
           title: document.getElementById('chart-title').textContent,
           slider: document.getElementById('sigma_u-slider').value,
           state: document.body.dataset.state };
}"""


@pytest.fixture(scope="module")
def server():
    srv = start_server(port=0)
    yield srv
    srv.shutdown()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser, server):
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, device_scale_factor=1)
    page = context.new_page()
    page.problems = []  # console errors, page errors, requests that left this machine
    page.on("console", lambda m: m.type == "error" and page.problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: page.problems.append(f"page error: {e}"))

    def _route(route):
        host = urlparse(route.request.url).hostname
        if route.request.url.startswith("data:") or host in {"127.0.0.1", "localhost"}:
            return route.continue_()
        page.problems.append(f"network request: {route.request.url}")
        return route.abort()

    page.route("**/*", _route)
    page.goto(server.url)
    _wait_until(page, "() => window.explorer && window.explorer.data && document.body.dataset.state === 'ready'")
    yield page
    assert page.problems == []
    context.close()


def _wait_until(page, predicate: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if page.evaluate(predicate):
            return
        page.wait_for_timeout(50)
    pytest.fail(f"the page never reached: {predicate}")


def _wait_for(page, **params) -> dict:
    """Wait until the page shows the answer for these settings, then read it."""
    checks = " && ".join(f"d.params.{k} === {v!r}" for k, v in params.items())
    _wait_until(page, f"() => {{ const d = window.explorer.data; return document.body.dataset.state === 'ready' && {checks}; }}")
    return page.evaluate(READ_PAGE)


def _slide(page, selector: str, key: str, presses: int) -> None:
    page.focus(selector)
    for _ in range(presses):
        page.keyboard.press(key)


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.wait_for_timeout(700)  # let the chart's animation finish
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_defaults_show_the_reml_fit(page):
    shown = _wait_for(page, sigma_u=1.5)
    expected = shrinkage_demo(ExploreParams())
    partial = [c["partial"] for c in expected["clusters"]]
    assert shown["view"] == "partial" and shown["title"] == "Partial pooling estimates"
    np.testing.assert_allclose(shown["sets"]["estimates"]["y"], partial, rtol=1e-12)
    np.testing.assert_allclose(shown["sets"]["nopool"]["y"], [c["no_pool"] for c in expected["clusters"]], rtol=1e-12)
    assert shown["sets"]["grand"]["y"] == [pytest.approx(expected["grand_mean"])] * 2
    assert shown["sets"]["muhat"]["visible"] and shown["sets"]["muhat"]["y"] == [pytest.approx(expected["mu_hat"])] * 2
    assert shown["sets"]["path"]["visible"] and len(shown["sets"]["path"]["y"]) == 3 * 16
    assert shown["rows"] == 16
    assert shown["mse"] == {k: f"{v:.3f}" for k, v in expected["mse"].items()}
    assert shown["best"] == ["partial"] and shown["current"] == ["partial"]
    _shot(page, "explorer.png")


def test_sigma_u_slider_moves_partial_pooling_between_grand_mean_and_no_pooling(page):
    before = page.evaluate(READ_PAGE)
    _slide(page, "#sigma_u-slider", "ArrowLeft", 13)  # 1.5 -> 0.2 in steps of 0.1
    small = _wait_for(page, sigma_u=0.2)
    assert small["slider"] == "0.2"
    partial = np.array(small["sets"]["estimates"]["y"])
    no_pool = np.array(small["sets"]["nopool"]["y"])
    grand = small["sets"]["grand"]["y"][0]
    assert not np.allclose(partial, before["sets"]["estimates"]["y"])
    # partial estimates collapse onto the (dashed) grand mean; no-pooling means stay spread out
    assert np.max(np.abs(partial - grand)) < 0.05 * np.mean(np.abs(no_pool - grand))
    mse = {k: float(v) for k, v in small["mse"].items()}
    assert mse["partial"] < mse["no"] and "partial" in small["best"]
    _shot(page, "explorer_sigma_u_0.2.png")

    _slide(page, "#sigma_u-slider", "ArrowRight", 48)  # 0.2 -> 5.0
    big = _wait_for(page, sigma_u=5)
    assert big["slider"] == "5"
    partial = np.array(big["sets"]["estimates"]["y"])
    no_pool = np.array(big["sets"]["nopool"]["y"])
    grand = big["sets"]["grand"]["y"][0]
    # partial estimates now (almost) match no pooling, far from the grand mean
    assert np.mean(np.abs(partial - no_pool)) < 0.15 * np.mean(np.abs(no_pool - grand))
    mse = {k: float(v) for k, v in big["mse"].items()}
    assert mse["complete"] > 5 * mse["partial"] and big["best"] == ["partial"]
    assert big["mse"] != small["mse"]
    expected = shrinkage_demo(ExploreParams(sigma_u=5.0))
    np.testing.assert_allclose(partial, [c["partial"] for c in expected["clusters"]], rtol=1e-12)
    _shot(page, "explorer_sigma_u_5.png")


def test_view_switch_plots_each_approach(page):
    data = page.evaluate("() => window.explorer.data")
    page.get_by_role("radio", name="No pooling").click()
    shown = page.evaluate(READ_PAGE)
    assert shown["view"] == "no" and shown["title"] == "No pooling estimates" and shown["current"] == ["no"]
    np.testing.assert_allclose(shown["sets"]["estimates"]["y"], [c["no_pool"] for c in data["clusters"]], rtol=1e-12)
    assert not any(shown["sets"][k]["visible"] for k in ("path", "nopool", "muhat"))
    assert shown["sets"]["grand"]["visible"]

    page.get_by_role("radio", name="Complete").click()
    shown = page.evaluate(READ_PAGE)
    assert shown["view"] == "complete" and shown["current"] == ["complete"]
    np.testing.assert_allclose(shown["sets"]["estimates"]["y"], data["grand_mean"], rtol=1e-12)
    _shot(page, "explorer_complete.png")


def test_number_inputs_sorting_and_new_data(page):
    page.fill("#J-input", "30")
    page.press("#J-input", "Enter")
    shown = _wait_for(page, J=30)
    assert shown["rows"] == 30 and len(shown["sets"]["estimates"]["y"]) == 30
    page.check("#sort-by-size")
    sizes = page.eval_on_selector_all("#cluster-table tbody tr td:nth-child(2)", "cells => cells.map(c => +c.textContent)")
    assert sizes == sorted(sizes) and len(set(sizes)) > 1

    page.fill("#sigma_u-input", "11")  # out of range: the server says why, the page shows it
    page.press("#sigma_u-input", "Enter")
    page.wait_for_selector("body[data-state='error']")
    assert "sigma_u" in page.text_content("#messages")
    page.problems.clear()  # the browser logs the 400 response as a console error: expected here

    page.fill("#sigma_u-input", "1.5")
    page.press("#sigma_u-input", "Enter")
    seed = _wait_for(page, J=30, sigma_u=1.5)["params"]["seed"]
    page.click("#new-data")
    _wait_until(page, f"() => document.body.dataset.state === 'ready' && window.explorer.data.params.seed !== {seed}")
    assert page.input_value("#seed-input") == str(page.evaluate("() => window.explorer.data.params.seed"))
