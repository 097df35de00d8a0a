"""End to end: the shrinkage explorer in a real headless Chromium, driven by Playwright.

The test starts the server on a free localhost port, opens the page, moves the
sigma_u slider with the keyboard as a person would, and reads back what the page
shows: the Chart.js datasets, the legend and the MSE table.  It checks the classic
demonstrations (sigma_u = 0.2: partial estimates on the grand mean; sigma_u = 5:
partial close to no pooling), that the chart holds the numbers of the REML fit
with the clusters ordered by size, that the page fits a 360, 390 and 1366 px wide
screen without sideways scrolling, that the view switch changes the plotted
estimates and the address, that a failed request leaves the last chart marked as
stale, and that the page loads nothing from the network and logs no error.
Screenshots go to tests/artifacts/ (git-ignored), one per width and state.

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
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright for Python is not installed (pip install playwright)"
)

CHROMIUM = os.environ.get("MIXEDMODELS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)", allow_module_level=True)

from mixedmodels.explore import start_server  # noqa: E402

ARTIFACTS = Path(__file__).parents[1] / "artifacts"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

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
  const rows = [...document.querySelectorAll('#cluster-table tbody tr')];
  return { params: window.explorer.data.params, view: window.explorer.view, sets, mse, best, current,
           order: window.explorer.order, rows: rows.length, row_clusters: rows.map((r) => r.dataset.cluster),
           row_sizes: rows.map((r) => +r.children[1].textContent),
           legend: [...document.querySelectorAll('#legend li')].map((li) => li.dataset.series),
           query: Object.fromEntries(new URLSearchParams(window.location.search)),
           stale: document.body.dataset.stale === 'true' && !document.getElementById('stale').hidden,
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


def _open(browser, server, width: int = 1366, height: int = 1000, query: str = ""):
    """A fresh page at this window size, watching for errors and for requests off this machine."""
    context = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1)
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
    page.goto(server.url + query)
    _wait_until(page, "() => window.explorer && window.explorer.data && document.body.dataset.state === 'ready'")
    return page


@pytest.fixture()
def page(browser, server):
    page = _open(browser, server)
    yield page
    assert page.problems == []
    page.context.close()


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
    _wait_until(
        page, f"() => {{ const d = window.explorer.data; return document.body.dataset.state === 'ready' && {checks}; }}"
    )
    return page.evaluate(READ_PAGE)


def _slide(page, selector: str, key: str, presses: int) -> None:
    page.focus(selector)
    for _ in range(presses):
        page.keyboard.press(key)


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.wait_for_timeout(700)  # let the chart's animation finish
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def _by_size(clusters: list[dict]) -> list[dict]:
    """Clusters smallest first, ties in cluster order (the page's default order)."""
    return sorted(clusters, key=lambda c: c["n"])  # sorted() is stable


def test_defaults_show_the_reml_fit(page):
    shown = _wait_for(page, sigma_u=1.5)
    expected = shrinkage_demo(ExploreParams())
    ordered = _by_size(expected["clusters"])
    assert [c["n"] for c in ordered] != [c["n"] for c in expected["clusters"]]  # the order is visible
    assert shown["view"] == "partial" and shown["title"] == "Partial pooling estimates"
    # the course's point, small clusters move most, needs the clusters ordered by size: the default
    assert shown["order"] == "size" and page.is_checked("#sort-by-size")
    assert shown["row_clusters"] == [c["cluster"] for c in ordered]
    assert shown["row_sizes"] == sorted(shown["row_sizes"])
    assert shown["sets"]["estimates"]["x"] == list(range(1, 17))
    np.testing.assert_allclose(shown["sets"]["estimates"]["y"], [c["partial"] for c in ordered], rtol=1e-12)
    np.testing.assert_allclose(shown["sets"]["nopool"]["y"], [c["no_pool"] for c in ordered], rtol=1e-12)
    ticks = page.evaluate("() => window.explorer.chart.scales.x.ticks.map((t) => t.label)")
    assert ticks == [str(c["n"]) for c in ordered]  # each tick names its cluster's size
    assert "size" in page.evaluate("() => window.explorer.chart.options.scales.x.title.text")
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
    np.testing.assert_allclose(partial, [c["partial"] for c in _by_size(expected["clusters"])], rtol=1e-12)
    _shot(page, "explorer_sigma_u_5.png")


def test_view_switch_plots_each_approach(page):
    data = page.evaluate("() => window.explorer.data")
    assert page.evaluate(READ_PAGE)["legend"] == ["estimates", "nopool", "path", "truth", "grand", "muhat"]
    page.get_by_role("radio", name="No pooling").click()
    shown = page.evaluate(READ_PAGE)
    assert shown["view"] == "no" and shown["title"] == "No pooling estimates" and shown["current"] == ["no"]
    np.testing.assert_allclose(
        shown["sets"]["estimates"]["y"], [c["no_pool"] for c in _by_size(data["clusters"])], rtol=1e-12
    )
    assert not any(shown["sets"][k]["visible"] for k in ("path", "nopool", "muhat"))
    assert shown["sets"]["grand"]["visible"]
    assert shown["legend"] == ["estimates", "truth", "grand"]  # the legend lists what is drawn

    page.get_by_role("radio", name="Complete").click()
    shown = page.evaluate(READ_PAGE)
    assert shown["view"] == "complete" and shown["current"] == ["complete"]
    np.testing.assert_allclose(shown["sets"]["estimates"]["y"], data["grand_mean"], rtol=1e-12)
    _shot(page, "explorer_complete.png")


def test_number_inputs_ordering_and_new_data(page):
    page.fill("#J-input", "30")
    page.press("#J-input", "Enter")
    shown = _wait_for(page, J=30)
    assert shown["rows"] == 30 and len(shown["sets"]["estimates"]["y"]) == 30
    sizes = shown["row_sizes"]
    assert sizes == sorted(sizes) and len(set(sizes)) > 1
    page.uncheck("#sort-by-size")  # back to cluster order: c01, c02, ...
    shown = page.evaluate(READ_PAGE)
    data = page.evaluate("() => window.explorer.data")
    assert shown["order"] == "cluster" and shown["query"]["order"] == "cluster"
    assert shown["row_clusters"] == [c["cluster"] for c in data["clusters"]] and shown["row_sizes"] != sorted(sizes)
    np.testing.assert_allclose(shown["sets"]["estimates"]["y"], [c["partial"] for c in data["clusters"]], rtol=1e-12)

    seed = shown["params"]["seed"]
    page.click("#new-data")
    _wait_until(page, f"() => document.body.dataset.state === 'ready' && window.explorer.data.params.seed !== {seed}")
    assert page.input_value("#seed-input") == str(page.evaluate("() => window.explorer.data.params.seed"))


# --------------------------------------------------------------------------- phone and desktop widths
# the element that decides the width is the layout's narrowest column; these are the boxes that
# once pushed a 390 px page to 502 px (the cluster table) or squeezed the title (the status pill)
FITS_SCREEN = """() => {
  const box = (sel) => document.querySelector(sel).getBoundingClientRect();
  const scroll = document.querySelector('.table-scroll');
  const title = box('.top h1'), status = box('#status'), lede = box('.top .lede');
  const overlap = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  return { scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
           tableScrolls: scroll.scrollWidth > scroll.clientWidth, chartWidth: box('#chart').width,
           statusOverlapsTitle: overlap(status, title) || overlap(status, lede), titleWidth: title.width,
           rightmost: Math.max(...[...document.querySelectorAll('.panel, .top > *')].map((e) => e.getBoundingClientRect().right)) };
}"""


@pytest.mark.parametrize("width,height", [(360, 780), (390, 844), (1366, 900)])
def test_page_fits_the_screen_without_sideways_scrolling(browser, server, width, height):
    page = _open(browser, server, width, height)
    try:
        fit = page.evaluate(FITS_SCREEN)
        assert fit["scrollWidth"] <= fit["innerWidth"] == width
        assert fit["rightmost"] <= width
        assert not fit["statusOverlapsTitle"]
        assert fit["chartWidth"] > 0.75 * width if width < 720 else fit["chartWidth"] > 500
        if width < 720:  # on a phone the cluster table fits its panel (it drops the constant column)
            assert not fit["tableScrolls"]
        shown = page.evaluate(READ_PAGE)
        assert shown["order"] == "size" and shown["row_sizes"] == sorted(shown["row_sizes"])
        _shot(page, f"explorer_{width}px.png")
        assert page.problems == []
    finally:
        page.context.close()


# --------------------------------------------------------------------------- address, stale chart
def test_view_and_order_are_kept_in_the_address(browser, server, page):
    assert page.evaluate(READ_PAGE)["query"] == {
        "J": "16",
        "nbar": "8",
        "sigma_u": "1.5",
        "sigma_e": "2",
        "seed": "48",
        "view": "partial",
        "order": "size",
    }
    page.get_by_role("radio", name="No pooling").click()
    assert page.evaluate(READ_PAGE)["query"]["view"] == "no"
    page.get_by_role("radio", name="Complete").click()
    page.uncheck("#sort-by-size")
    query = page.evaluate("() => window.location.search")
    assert "view=complete" in query and "order=cluster" in query
    # the address, opened again, shows the same page
    again = _open(browser, server, query=query)
    try:
        shown = again.evaluate(READ_PAGE)
        assert shown["view"] == "complete" and shown["order"] == "cluster" and shown["current"] == ["complete"]
        assert not again.is_checked("#sort-by-size")
        assert again.get_attribute("#view-switch [data-view='complete']", "aria-checked") == "true"
        assert again.problems == []
    finally:
        again.context.close()


def test_failed_request_marks_the_last_chart_stale(page):
    before = page.evaluate(READ_PAGE)
    assert not before["stale"]
    page.fill("#sigma_u-input", "11")  # out of range: the server says why, the page shows it
    page.press("#sigma_u-input", "Enter")
    page.wait_for_selector("body[data-state='error']")
    page.problems.clear()  # the browser logs the 400 response as a console error: expected here
    shown = page.evaluate(READ_PAGE)
    assert shown["stale"] and page.is_visible("#stale")
    banner = page.text_content("#stale")
    assert "Not updated" in banner and "sigma_u" in banner and "between 0 and 10" in banner
    assert "got 11.0." in banner and "σᵤ = 1.5" in banner  # which settings the chart still shows
    assert shown["sets"]["estimates"]["y"] == before["sets"]["estimates"]["y"]
    assert shown["query"]["sigma_u"] == "1.5"  # the address describes what is on screen
    page.wait_for_timeout(400)  # the dimming's transition
    opacity = page.evaluate("() => +getComputedStyle(document.querySelector('.chart-box')).opacity")
    assert opacity < 0.6
    _shot(page, "explorer_stale.png")

    page.fill("#sigma_u-input", "2.5")
    page.press("#sigma_u-input", "Enter")
    shown = _wait_for(page, sigma_u=2.5)
    assert not shown["stale"] and not page.is_visible("#stale") and shown["query"]["sigma_u"] == "2.5"


# --------------------------------------------------------------------------- legend and MSE table
LEGEND_SWATCHES = """() => Object.fromEntries([...document.querySelectorAll('#legend li')].map((li) => {
  const line = li.querySelector('svg line'), circle = li.querySelector('svg circle');
  return [li.dataset.series, { dash: line ? line.getAttribute('stroke-dasharray') : null,
    vertical: line ? line.getAttribute('x1') === line.getAttribute('x2') : null,
    stroke: (line || circle || li.querySelector('svg path')).getAttribute('stroke'),
    fill: circle ? circle.getAttribute('fill') : null, text: li.textContent }];
}))"""


def test_legend_draws_each_series_as_the_chart_does(page):
    swatches = page.evaluate(LEGEND_SWATCHES)
    dashes = page.evaluate(
        "() => Object.fromEntries(window.explorer.chart.data.datasets.map((d) => [d.id, d.borderDash || null]))"
    )
    assert swatches["grand"]["dash"] == " ".join(map(str, dashes["grand"])) == "6 5"  # dashed, as on the chart
    assert swatches["muhat"]["dash"] == " ".join(map(str, dashes["muhat"])) == "2 3"  # dotted
    assert swatches["path"]["dash"] in (None, "none") and dashes["path"] is None  # solid
    # grand mean and shrink path: different swatches (a horizontal dashed line, a vertical solid one)
    assert not swatches["grand"]["vertical"] and swatches["path"]["vertical"]
    assert swatches["estimates"]["fill"] == "#e8590c" and swatches["nopool"]["fill"] != swatches["estimates"]["fill"]
    assert "μ̂" in swatches["muhat"]["text"] and "grand mean" in swatches["grand"]["text"]
    page.get_by_role("radio", name="No pooling").click()
    assert page.evaluate(LEGEND_SWATCHES)["estimates"]["fill"] == "#2563eb"  # the view's colour
    # the course's name for the shrinkage factor
    assert "α" in page.text_content("#cluster-table thead") and "α" in page.text_content(".formula")


MSE_BOXES = """() => [...document.querySelectorAll('#mse-table tbody tr')].map((row) => {
  const bar = row.querySelector('.bar').getBoundingClientRect(), value = row.querySelector('.mse-value').getBoundingClientRect();
  return { approach: row.dataset.approach, bar: [bar.left, bar.width], valueRight: value.right, valueLeft: value.left };
})"""


def test_mse_table_keeps_its_scale_and_reads_well(page):
    page.wait_for_timeout(400)  # the bars' width transition
    boxes = {}
    for view, name in [("partial", None), ("no", "No pooling"), ("complete", "Complete")]:
        if name:
            page.get_by_role("radio", name=name).click()
            page.wait_for_timeout(400)
        boxes[view] = page.evaluate(MSE_BOXES)
    assert boxes["partial"] == boxes["no"] == boxes["complete"]  # bars and numbers stay put across views
    rows = boxes["partial"]
    assert len({round(r["valueRight"], 1) for r in rows}) == 1  # "lowest" does not push its number aside
    mse = page.evaluate("() => window.explorer.data.mse")
    top = max(mse.values())
    widths = {r["approach"]: r["bar"][1] for r in rows}
    for approach, value in mse.items():  # one scale: the largest MSE fills the track
        assert widths[approach] == pytest.approx(widths[max(mse, key=mse.get)] * value / top, abs=1.0)
    # what a screen reader says: the approach, "lowest error" on the best one, the view shown, the number
    snapshot = page.locator("#mse-table").aria_snapshot()
    assert 'row "Partial pooling (lowest error) 0.219"' in snapshot.replace(f"{mse['partial']:.3f}", "0.219")
    assert 'row "Complete pooling (the view in the chart) ' in snapshot
    assert 'row "No pooling 1.364"' in snapshot.replace(f"{mse['no']:.3f}", "1.364")
    assert "bar" not in snapshot.lower()
