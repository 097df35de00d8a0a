"""Stored cross-product pieces A(c) = sum_k c_k A_k (residual structures, issue #19)."""

import numpy as np
import pytest

import mixedmodels as mm
from conftest import issue19_dataset
from mixedmodels.linalg import blocked, weighted_blocks
from mixedmodels.linalg.weighted_blocks import WeightedBlocks

pytestmark = pytest.mark.numerics  # .ci/run runs these again under another BLAS kernel


def _model():
    """Two terms (so the rest block holds random effects too), three strata and AR(1) pairs across them."""
    return mm.LinearMixedModel.from_formula(
        "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)",
        issue19_dataset("sleepstudy"),
        weights=mm.var_ident("Phase3"),
        correlation=mm.cor_ar1("Days", group="Subject"),
    )


def _sparse_path(monkeypatch) -> None:
    """Build the pieces with the sparse builder and keep A21 sparse (as for large data)."""
    monkeypatch.setattr(weighted_blocks, "_DENSE_ENTRIES", 0)
    monkeypatch.setattr(blocked, "_DENSE_LIMIT", 0)


def _pieces(model, monkeypatch, dense: bool) -> WeightedBlocks:
    if not dense:
        _sparse_path(monkeypatch)
    inputs = model.inputs
    xy = np.column_stack([inputs.fixed.matrix, inputs.y])
    return WeightedBlocks.build(
        [t.refs for t in inputs.terms],
        [t.z for t in inputs.terms],
        [t.nlevels for t in inputs.terms],
        xy,
        model.layouts,
        model.residual.structure.pieces,
    )


def test_dense_and_sparse_builds_agree(monkeypatch):
    model = _model()
    dense = _pieces(model, monkeypatch, dense=True)
    sparse = _pieces(model, monkeypatch, dense=False)
    assert dense.npieces == sparse.npieces == len(model.residual.structure.pieces) == 3 + 3 + 5
    c = np.random.default_rng(1).normal(size=dense.npieces)
    a, b = dense.combine(c), sparse.combine(c)
    np.testing.assert_allclose(a.a11, b.a11, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(a.a22, b.a22, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(
        np.asarray(a.a21), np.asarray(b.a21.toarray() if hasattr(b.a21, "toarray") else b.a21), rtol=1e-12, atol=1e-9
    )


def test_dense_pieces_place_each_pieces_blocks(monkeypatch):
    """All pieces as dense matrices at once are each piece's blocks as one matrix (dense_crossproducts),
    exactly (the same numbers, placed), on the dense and the sparse build; they add up as combine does."""
    from mixedmodels.linalg.dense_system import dense_crossproducts

    model = _model()
    dense = _pieces(model, monkeypatch, dense=True)
    sparse = _pieces(model, monkeypatch, dense=False)
    for blocks in (dense, sparse):
        expected = np.stack([dense_crossproducts(blocks.piece(k)) for k in range(blocks.npieces)])
        np.testing.assert_array_equal(blocks.dense_pieces(), expected)
    c = np.random.default_rng(2).normal(size=dense.npieces)
    np.testing.assert_allclose(
        np.tensordot(c, dense.dense_pieces(), axes=1), dense_crossproducts(dense.combine(c)), rtol=1e-12, atol=1e-9
    )


def test_pieces_add_up_to_the_unweighted_cross_products(monkeypatch):
    """With every stratum weight 1 and phi 0, A(c) is [Z X y]'[Z X y]: lmer's own blocks."""
    model = _model()
    plain = mm.LinearMixedModel.from_formula(
        "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", issue19_dataset("sleepstudy")
    )
    for dense in (True, False):
        combined = _pieces(model, monkeypatch, dense).combine(
            model.residual.structure.coefficients(np.array([1.0, 1.0, 0.0]))
        )
        np.testing.assert_allclose(combined.a11, plain.crossprods.a11, rtol=1e-12)
        np.testing.assert_allclose(combined.a22, plain.crossprods.a22, rtol=1e-12, atol=1e-8)


def test_a_fit_with_sparse_pieces_is_the_same_fit(monkeypatch):
    dense = _model().fit()
    _sparse_path(monkeypatch)
    model = _model()
    assert not isinstance(model.crossprods.a21, np.ndarray)
    sparse = model.fit()
    assert sparse.loglik == pytest.approx(dense.loglik, abs=1e-7)
    np.testing.assert_allclose(sparse.residual_params, dense.residual_params, rtol=1e-4)
