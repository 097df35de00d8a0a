"""polars DataFrames and pyarrow Tables are converted at the entry (mixedmodels.design.tables)."""

from __future__ import annotations

import pytest

import mixedmodels as mm
from conftest import dataset, fitted_lmer
from mixedmodels.design.tables import as_pandas, is_arrow_table, is_polars_frame

FORMULA = "Reaction ~ Days + (Days | Subject)"


def test_polars_frame_fits_as_its_pandas_copy():
    pl = pytest.importorskip("polars")
    frame = pl.from_pandas(dataset("sleepstudy"))
    assert is_polars_frame(frame) and not is_arrow_table(frame)
    fit = mm.lmer(FORMULA, frame)
    memory = fitted_lmer(FORMULA, "sleepstudy")
    assert fit.objective == memory.objective
    assert fit.ranef()["Subject"].index.tolist() == memory.ranef()["Subject"].index.tolist()


def test_arrow_table_fits_as_its_pandas_copy_in_lmer_and_glmer():
    pa = pytest.importorskip("pyarrow")
    table = pa.Table.from_pandas(dataset("sleepstudy"))
    assert is_arrow_table(table)
    assert mm.lmer(FORMULA, table).objective == fitted_lmer(FORMULA, "sleepstudy").objective
    cbpp = pa.Table.from_pandas(dataset("cbpp"))
    fit = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family="binomial")
    assert fit.objective == pytest.approx(
        mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", dataset("cbpp")).objective, rel=1e-12
    )


def test_other_inputs_pass_through_unchanged():
    frame = dataset("sleepstudy")
    assert as_pandas(frame) is frame and as_pandas([1, 2]) == [1, 2]
