"""Render the README's figures from the bundled data: ``python docs/make_figures.py``.

Writes ``docs/images/*.png`` (run from anywhere; uses the package in ``src/``
when it is not installed).  Needs the ``plot`` extra (matplotlib).
"""

from __future__ import annotations

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


def main() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    sleep = mm.datasets.load("sleepstudy")
    cmp = mm.compare_pooling("Reaction ~ Days + (Days | Subject)", sleep)
    _save(cmp.plot(), "pooling_sleepstudy.png")
    _save(cmp.plot_shrinkage(), "shrinkage_sleepstudy.png")
    _save(mm.plots.caterpillar(cmp.partial_fit), "caterpillar_sleepstudy.png")
    _save(mm.plots.ranef_scatter(cmp.partial_fit), "ranef_scatter_sleepstudy.png")
    _save(mm.plots.diagnostics(cmp.partial_fit), "diagnostics_sleepstudy.png")
    dyes = mm.compare_pooling("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
    _save(dyes.plot_shrinkage(figsize=(5.5, 5.0)), "shrinkage_dyestuff.png")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        penicillin = mm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", mm.datasets.load("Penicillin"))
    _save(mm.plots.caterpillar(penicillin), "caterpillar_penicillin.png")


if __name__ == "__main__":
    main()
