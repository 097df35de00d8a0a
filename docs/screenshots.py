"""Open the built site in headless Chromium, check what a reader sees, and save screenshots.

``python docs/screenshots.py`` (after ``python docs/build.py``) opens

* the API page of ``mm.lmer``: its signature and parameter table are there;
* the pooling tutorial: every figure has loaded and has a size, the printed summary is there;
* a page of the user guide (pooling, with the README's pictures that moved there);
* the site's front page;

and fails when a page logs an error, requests anything from another host, or shows a broken
image. Screenshots (whole pages) go to ``docs/_build/screenshots/``: look at them.

Needs Playwright for Python and Debian's Chromium (``/usr/bin/chromium``, never a downloaded
browser); without them it says so and exits 0.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from urllib.parse import urlparse

DOCS = Path(__file__).resolve().parent
HTML = DOCS / "_build" / "html"
SHOTS = DOCS / "_build" / "screenshots"
CHROMIUM = os.environ.get("MIXEDMODELS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

# (file, screenshot name, what must be on the page, minimum number of loaded figures)
PAGES = [
    ("api/generated/lmer.html", "api-lmer", ["lmer(", "formula", "REML", "Returns"], 0),
    ("api/generated/LmerResults.html", "api-LmerResults", ["fixef", "varcorr", "ranef", "confint"], 0),
    ("tutorials/pooling.html", "tutorial-pooling", ["Complete, no and partial pooling", "REML criterion"], 3),
    ("tutorials/crossed.html", "tutorial-crossed", ["crossed", "emmean"], 1),
    ("tutorials/comparison.html", "tutorial-comparison", ["singular", "number of observations"], 2),
    ("tutorials/glmm.html", "tutorial-glmm", ["Generalized linear mixed models", "glmerMod"], 3),
    ("tutorials/bayes.html", "tutorial-bayes", ["NUTS", "hdi"], 2),
    ("tutorials/shrinkage.html", "tutorial-shrinkage", ["shrinkage", "partial"], 2),
    ("coming-from-lme4.html", "coming-from-lme4", ["ranef(m, condVar = TRUE)", "mm.emmeans", "Deliberately absent"], 0),
    (
        "guide/pooling.html",
        "guide-pooling",
        ["Complete, no and partial pooling", "share_fixed", "Shrinkage explorer"],
        4,
    ),
    ("index.html", "index", ["mixedmodels", "tutorials"], 0),
]

# images inside a collapsed output ("hide-output") are not shown until opened: not counted
READ_IMAGES = """() => Array.from(document.querySelectorAll('article img')).filter(
    (img) => !img.closest('details:not([open])')).map(
    (img) => ({src: img.getAttribute('src'), complete: img.complete, width: img.naturalWidth,
               shown: img.getBoundingClientRect().width}))"""


def check_page(browser, relative: str, name: str, texts: list[str], figures: int) -> list[str]:
    """Problems seen on one page (empty when it is fine); saves its screenshot."""
    problems: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
    page = context.new_page()
    page.on("console", lambda m: m.type == "error" and problems.append(f"console error: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on(
        "request",
        lambda r: (
            urlparse(r.url).scheme not in ("file", "data", "blob", "about")
            and problems.append(f"network request: {r.url}")
        ),
    )
    page.goto((HTML / relative).as_uri(), wait_until="load")
    page.wait_for_timeout(300)  # let the theme's scripts settle
    body = page.inner_text("article") if page.query_selector("article") else page.inner_text("body")
    problems += [f"missing text {text!r}" for text in texts if text not in body]
    images = page.evaluate(READ_IMAGES)
    broken = [img["src"] for img in images if not img["complete"] or img["width"] == 0 or img["shown"] < 50]
    problems += [f"broken or invisible figure {src}" for src in broken]
    if len(images) - len(broken) < figures:
        problems.append(f"{len(images) - len(broken)} figures shown, expected at least {figures}")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    page.screenshot(path=str(SHOTS / f"{name}-top.png"))
    context.close()
    print(f"{relative}: {len(images)} figure(s), {'ok' if not problems else 'PROBLEMS'} -> {SHOTS / name}.png")
    return [f"{relative}: {p}" for p in problems]


def main() -> int:
    if not (HTML / "index.html").exists():
        print(f"no built site in {HTML}: run python docs/build.py first")
        return 1
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("screenshots skipped: Playwright for Python is not installed (pip install playwright)")
        return 0
    if not Path(CHROMIUM).exists():
        print(f"screenshots skipped: no Chromium at {CHROMIUM} (apt-get install -y chromium)")
        return 0
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        for relative, name, texts, figures in PAGES:
            problems += check_page(browser, relative, name, texts, figures)
        browser.close()
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
