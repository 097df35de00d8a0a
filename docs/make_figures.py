"""Render every kind of picture the package draws, from the bundled data: ``python docs/make_figures.py``.

Writes ``docs/images/*.png`` (run from anywhere; uses the package in ``src/``
when it is not installed).  Needs the ``plot`` extra (matplotlib); the
explorer's screenshot also needs the ``explore`` extra, Playwright and a
Chromium (``MIXEDMODELS_CHROMIUM`` or ``chromium`` on the PATH), and is
skipped, saying why, without them.
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import mixedmodels as mm  # noqa: E402

IMAGES = HERE / "images"
DPI = 110


def _save(fig, name: str) -> None:
    path = IMAGES / name
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    print(f"wrote {path}")


def main(explorer: bool = True) -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    sleep = mm.datasets.load("sleepstudy")
    cmp = mm.compare_pooling("Reaction ~ Days + (Days | Subject)", sleep)
    _save(cmp.plot(), "pooling_sleepstudy.png")
    _save(cmp.plot_shrinkage(), "shrinkage_sleepstudy.png")
    _save(mm.plots.caterpillar(cmp.partial_fit), "caterpillar_sleepstudy.png")
    _save(mm.plots.ranef_scatter(cmp.partial_fit), "ranef_scatter_sleepstudy.png")
    _save(mm.plots.diagnostics(cmp.partial_fit), "diagnostics_sleepstudy.png")
    # the lecture's xyplot(Reaction ~ Days | Subject) with lowess, and the model's lines
    _save(mm.plots.by_group(sleep, "Days", "Reaction", "Subject", fit=cmp.partial_fit), "by_group_sleepstudy.png")
    # a random intercept with 18 levels: the 1-D shrinkage plot's crowded label column
    intercepts = mm.compare_pooling("Reaction ~ Days + (1 | Subject)", sleep)
    _save(intercepts.plot_shrinkage(), "shrinkage_sleepstudy_intercept.png")
    dyestuff = mm.datasets.load("Dyestuff")
    dyes = mm.compare_pooling("Yield ~ 1 + (1 | Batch)", dyestuff)
    _save(dyes.plot(), "pooling_dyestuff.png")
    _save(dyes.plot_shrinkage(figsize=(5.5, 5.0)), "shrinkage_dyestuff.png")
    _save(mm.plots.profile_zeta(dyes.partial_fit.profile()), "profile_dyestuff.png")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        penicillin = mm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", mm.datasets.load("Penicillin"))
        cbpp = mm.glmer(
            "cbind(incidence, size - incidence) ~ period + (1 | herd)", mm.datasets.load("cbpp"), family="binomial"
        )
    _save(mm.plots.caterpillar(penicillin), "caterpillar_penicillin.png")
    _save(mm.plots.diagnostics(cbpp), "diagnostics_cbpp.png")
    # pooling of a GLMM on the link scale, with levels whose no-pooling estimate is -inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ticks = mm.compare_pooling("TICKS ~ YEAR + (1 | LOCATION)", mm.datasets.load("grouseticks"), family="poisson")
    _save(ticks.plot_shrinkage(), "shrinkage_grouseticks.png")
    if explorer:
        explorer_screenshot(IMAGES / "explorer.png")


def explorer_screenshot(path: Path, width: int = 1366, height: int = 900) -> None:
    """The shrinkage explorer at its defaults, as a desktop browser shows it (headless Chromium)."""
    chromium = os.environ.get("MIXEDMODELS_CHROMIUM") or shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright

        from mixedmodels.explore import start_server
    except ImportError as error:
        print(f"skipped {path.name}: {error}")
        return
    if not chromium:
        print(f"skipped {path.name}: no Chromium (set MIXEDMODELS_CHROMIUM or install chromium)")
        return
    server = start_server(port=0)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=1)
            page.goto(server.url)
            page.wait_for_function(
                "() => window.explorer && window.explorer.data && document.body.dataset.state === 'ready'"
            )
            page.wait_for_timeout(800)  # the chart's animation
            page.screenshot(path=str(path), full_page=True)
            browser.close()
    finally:
        server.shutdown()
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
