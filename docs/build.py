"""Build the documentation site: ``python docs/build.py`` (HTML in docs/_build/html).

Runs Sphinx with warnings as errors, the tutorials executed (a failing tutorial fails the
build), then checks that no page loads anything from the network. Sphinx runs quietly (warnings
and errors only); options are passed on to sphinx-build (e.g. ``-v`` for progress, ``-E`` to
re-read everything); ``MIXEDMODELS_DOCS_EXECUTE=force`` re-runs
every tutorial instead of reusing the execution cache in docs/_build/.jupyter_cache.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent
HTML = DOCS / "_build" / "html"
# src=, href= or url() that leave this machine (namespaces such as MathML's xmlns are not loads)
_REMOTE = re.compile(r"""(?:<script[^>]+src|<link[^>]+href|<img[^>]+src|<iframe[^>]+src)=["'](?:https?:)?//""", re.I)
_REMOTE_CSS = re.compile(r"""url\(["']?(?:https?:)?//""", re.I)


def remote_loads(root: Path) -> list[str]:
    """Pages and stylesheets of the built site that would load something from another host."""
    found = []
    for path in sorted(root.rglob("*")):
        if path.suffix == ".html" and _REMOTE.search(path.read_text(encoding="utf-8", errors="replace")):
            found.append(str(path.relative_to(root)))
        elif path.suffix == ".css" and _REMOTE_CSS.search(path.read_text(encoding="utf-8", errors="replace")):
            found.append(str(path.relative_to(root)))
    return found


def notebooks() -> list[Path]:
    """The pages that are executed: MyST notebooks (``file_format: mystnb`` in their front matter)."""
    return sorted(
        path
        for path in DOCS.rglob("*.md")
        if "_build" not in path.parts and path.read_text(encoding="utf-8").startswith("---\nfile_format: mystnb")
    )


def execute_in_parallel(jobs: int) -> None:
    """Run the notebooks that the execution cache lacks, ``jobs`` at a time.

    Sphinx (MyST-NB) executes notebooks one after another; running them here first, in
    parallel, fills the cache that the Sphinx build then reads. A notebook that fails here is
    executed again by Sphinx, which fails the build and prints the error.
    """
    from jupyter_cache import get_cache
    from jupyter_cache.executors import load_executor

    cache = get_cache(str(DOCS / "_build" / ".jupyter_cache"))
    records = [
        cache.add_nb_to_project(str(path), read_data={"name": "myst_nb_md", "type": "plugin"}) for path in notebooks()
    ]
    stale = [record.pk for record in records if cache.get_cached_project_nb(record.pk) is None]
    if not stale:
        return
    start = time.perf_counter()
    executor = load_executor("local-parallel" if jobs > 1 else "local-serial", cache=cache)
    result = executor.run_and_cache(filter_pks=stale, timeout=300)
    failed = len(stale) - len(result.succeeded)
    print(
        f"docs: executed {len(stale)} notebook(s) in {time.perf_counter() - start:.0f} s ({jobs} at a time); "
        f"{failed} failed" + (" (Sphinx runs them again and shows the error)" if failed else "")
    )


def main(argv: list[str]) -> int:
    os.environ["IPYTHONDIR"] = str(DOCS / "_ipython")  # the notebooks' kernels: see its startup file
    env = dict(os.environ, PYTHONWARNINGS="ignore::DeprecationWarning", MPLBACKEND="Agg")
    jobs = os.environ.get("MIXEDMODELS_DOCS_JOBS", "auto")
    if os.environ.get("MIXEDMODELS_DOCS_EXECUTE", "cache") == "cache":
        execute_in_parallel(os.cpu_count() or 1 if jobs == "auto" else int(jobs))
    command = [
        sys.executable,
        "-m",
        "sphinx",
        "-b",
        "html",
        "-q",
        "-W",
        "--keep-going",
        "-T",
        "-j",
        jobs,
        *argv,
        str(DOCS),
        str(HTML),
    ]
    start = time.perf_counter()
    status = subprocess.run(command, env=env, check=False).returncode
    print(f"docs: sphinx-build finished with status {status} in {time.perf_counter() - start:.0f} s")
    if status != 0:
        return status
    remote = remote_loads(HTML)
    if remote:
        print("docs: these files load something from the network:\n  " + "\n  ".join(remote))
        return 1
    print(f"docs: the site is in {HTML} (open index.html); nothing in it loads from the network")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
