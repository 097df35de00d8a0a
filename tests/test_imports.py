"""A fit imports only what it uses.

Every module a process holds adds gc-tracked objects, and each ``gc.collect()`` (benchmarks/run.py
runs one before every fit, as any long-lived program does now and then) walks all of them: a fit
is slower in a process that merely holds modules it never calls.  scipy.stats alone is ~17k
objects, and with scipy.interpolate it brings scipy.optimize, scipy.spatial and scipy.ndimage.
They belong to p-values, profiles and splines, not to fitting.
"""

from __future__ import annotations

import ast
import subprocess
import sys

_NOT_FOR_A_FIT = ("scipy.stats", "scipy.interpolate", "scipy.optimize", "scipy.spatial", "scipy.ndimage")


def _modules_after(code: str) -> list[str]:
    """Which of _NOT_FOR_A_FIT a fresh interpreter holds after running ``code``."""
    script = f"import sys\n{code}\nprint([m for m in {_NOT_FOR_A_FIT!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return ast.literal_eval(out.stdout.strip().splitlines()[-1])


def test_fits_do_not_import_stats_interpolate_or_optimize():
    code = (
        "import mixedmodels as mm\n"
        "mm.lmer('Reaction ~ Days + (Days | Subject)', mm.datasets.load('sleepstudy'))\n"
        "mm.glmer('cbind(incidence, size - incidence) ~ period + (1 | herd)', mm.datasets.load('cbpp'),"
        " family='binomial')\n"
        "mm.glmer('TICKS ~ YEAR + (1 | BROOD)', mm.datasets.load('grouseticks'), family='poisson')\n"
        "mm.lm('Reaction ~ Days', mm.datasets.load('sleepstudy'))\n"
        "mm.glm('cbind(incidence, size - incidence) ~ period', mm.datasets.load('cbpp'), family='binomial')\n"
    )
    assert _modules_after(code) == []


def test_summary_and_splines_still_import_what_they_use():
    """The lazy imports are still made where they are used: p-values and bs()."""
    code = (
        "import mixedmodels as mm\n"
        "fit = mm.lmer('Reaction ~ bs(Days, df=4) + (1 | Subject)', mm.datasets.load('sleepstudy'))\n"
        "assert 'scipy.interpolate' in sys.modules\n"
        "str(mm.glmer('cbind(incidence, size - incidence) ~ period + (1 | herd)', mm.datasets.load('cbpp'),"
        " family='binomial').summary())\n"
    )
    assert "scipy.stats" in _modules_after(code)
