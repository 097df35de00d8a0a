"""The relative covariance factor of one random-effects term, and its structures.

A term with ``k`` columns has random effects with covariance
``sigma**2 * lambda @ lambda.T``, where ``lambda`` (k x k, lower triangular)
is the term's relative covariance factor and ``theta`` holds its parameters.
How ``theta`` makes ``lambda`` is the term's :class:`CovarianceStructure`
(glmmTMB's and lme4 2.0's names):

==========  =========================================  ==========================================
structure   covariance ``Sigma / sigma^2``              theta
==========  =========================================  ==========================================
``us``      any (lme4's default ``(x | g)``)            the lower triangle of ``lambda``, column
                                                        by column (lme4's order)
``diag``    ``diag(t_1^2, ..., t_k^2)``                 the relative SDs ``t_j >= 0``
``cs``      ``D R D``, ``R = (1 - rho) I + rho 11'``    ``t_1, ..., t_k >= 0`` (``D = diag(t)``) and
                                                        ``-1/(k-1) <= rho <= 1``
``ar1``     ``t^2 R``, ``R_ij = phi^|i - j|``           ``t >= 0`` and ``-1 <= phi <= 1``
==========  =========================================  ==========================================

``lambda`` is the Cholesky factor of the structured covariance: ``diag(t)``
for ``diag``; ``D C(rho)`` with ``C(rho)`` the Cholesky factor of the
compound-symmetry matrix for ``cs``; and for ``ar1`` the closed form

    lambda_ij = t phi^(i - j) s_j  (i >= j),   s_0 = 1,  s_j = sqrt(1 - phi^2) (j > 0),

which is the AR(1) recursion ``b_0 = t e_0``, ``b_i = phi b_{i-1} + t sqrt(1 - phi^2) e_i``.

Each structure also gives ``d lambda / d theta`` (:meth:`CovarianceStructure.dlam`,
with ``has_derivative``), where theta may start the optimizer
(:meth:`~CovarianceStructure.from_column_sds`), and how theta changes when the
term's columns are rescaled (:meth:`~CovarianceStructure.scale_factors`):
the model divides each column by its root-mean-square before forming
cross-products, and ``lambda`` for the scaled columns is ``diag(scales) lambda``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = [
    "lower_triangle",
    "theta_to_lambda",
    "initial_theta",
    "theta_lower_bounds",
    "theta_names",
    "covariance_to_theta",
    "canonical_theta",
    "CovarianceStructure",
    "Unstructured",
    "Diagonal",
    "CompoundSymmetry",
    "AutoRegressive1",
    "UNSTRUCTURED",
    "STRUCTURES",
    "get_structure",
]


@lru_cache(maxsize=64)
def lower_triangle(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of a ``k x k`` lower triangle in column-major order (read-only, cached)."""
    cols, rows = np.triu_indices(k)
    rows.flags.writeable = False
    cols.flags.writeable = False
    return rows, cols


def theta_to_lambda(theta: np.ndarray, k: int) -> np.ndarray:
    """The ``k x k`` lower-triangular relative covariance factor from its theta slice (unstructured)."""
    lam = np.zeros((k, k))
    lam[lower_triangle(k)] = theta
    return lam


def initial_theta(k: int) -> np.ndarray:
    """lme4's starting value: the identity factor (1 on the diagonal, 0 below)."""
    rows, cols = lower_triangle(k)
    return (rows == cols).astype(float)


def theta_lower_bounds(k: int) -> np.ndarray:
    """Diagonal elements are non-negative; off-diagonal ones are unbounded."""
    rows, cols = lower_triangle(k)
    return np.where(rows == cols, 0.0, -np.inf)


def theta_names(group: str, columns: tuple[str, ...]) -> list[str]:
    """lme4's names: ``Subject.(Intercept)``, ``Subject.Days.(Intercept)``, ``Subject.Days``."""
    rows, cols = lower_triangle(len(columns))
    return [f"{group}.{columns[r]}" if r == c else f"{group}.{columns[r]}.{columns[c]}" for r, c in zip(rows, cols)]


def covariance_to_theta(cov: np.ndarray, sigma: float) -> np.ndarray:
    """Theta slice for a given covariance matrix and residual SD (Cholesky factor / sigma)."""
    k = cov.shape[0]
    lam = np.linalg.cholesky(cov) / sigma if np.all(np.linalg.eigvalsh(cov) > 0) else _semidefinite_factor(cov) / sigma
    return lam[lower_triangle(k)]


def _semidefinite_factor(cov: np.ndarray) -> np.ndarray:
    """A lower-triangular factor of a positive semi-definite matrix (pivot-free LDL)."""
    k = cov.shape[0]
    lam = np.zeros((k, k))
    for j in range(k):
        diag = cov[j, j] - lam[j, :j] @ lam[j, :j]
        lam[j, j] = np.sqrt(max(diag, 0.0))
        if lam[j, j] > 0:
            lam[j + 1 :, j] = (cov[j + 1 :, j] - lam[j + 1 :, :j] @ lam[j, :j]) / lam[j, j]
    return lam


def canonical_theta(theta: np.ndarray, k: int) -> np.ndarray:
    """The theta slice whose lambda has non-negative diagonal and the same ``lambda @ lambda.T``.

    Changing the sign of a column of lambda leaves the covariance (and every
    objective) unchanged, so an unconstrained optimizer may end with negative
    diagonal elements; this flips those columns back.
    """
    lam = theta_to_lambda(np.asarray(theta, dtype=float), k)
    signs = np.where(np.diagonal(lam) < 0, -1.0, 1.0)
    return (lam * signs)[lower_triangle(k)]


# --- structures ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CovarianceStructure:
    """How theta makes a term's relative covariance factor ``lambda`` (see the module docstring).

    A new structure provides every method below; ``has_derivative`` says
    whether :meth:`dlam` is available (gradient code falls back to finite
    differences where it is not).

    Attributes
    ----------
    name : str
        The formula's name (``"us"``, ``"diag"``, ``"cs"``, ``"ar1"``).
    has_derivative : bool
        Whether :meth:`dlam` gives ``d lambda / d theta``.
    """

    name: str = "us"
    has_derivative: bool = True

    def ntheta(self, k: int) -> int:
        """Number of theta elements of a ``k``-column term."""
        raise NotImplementedError

    def initial(self, k: int) -> np.ndarray:
        """lme4's kind of start: relative SDs 1, correlations 0."""
        raise NotImplementedError

    def lower(self, k: int) -> np.ndarray:
        """Lower bounds of theta (0 for the SDs: at 0 the fit is singular)."""
        raise NotImplementedError

    def upper(self, k: int) -> np.ndarray:
        """Upper bounds of theta (``inf`` where there is none)."""
        return np.full(self.ntheta(k), np.inf)

    def names(self, group: str, columns: tuple[str, ...]) -> list[str]:
        """A name per theta element, lme4's way (``Subject.Days``)."""
        raise NotImplementedError

    def lam(self, theta: np.ndarray, k: int) -> np.ndarray:
        """The ``k x k`` lower-triangular factor ``lambda(theta)``."""
        raise NotImplementedError

    def dlam(self, theta: np.ndarray, k: int) -> np.ndarray:
        """``d lambda / d theta_i`` for every theta element, shape ``(ntheta, k, k)``."""
        raise NotImplementedError

    def scale_factors(self, scales: np.ndarray) -> np.ndarray:
        """Per theta element, its factor when column j is multiplied by ``scales[j]``.

        ``diag(scales) lambda(theta) = lambda(theta * scale_factors(scales))``.
        """
        raise NotImplementedError

    def column_scales(self, rms: np.ndarray) -> np.ndarray:
        """The scales the model divides the columns by, from their root-mean-squares."""
        return rms

    def from_column_sds(self, sds: np.ndarray) -> np.ndarray:
        """Theta with (about) these relative SDs per column and no correlation: a start."""
        raise NotImplementedError

    def unit_index(self, k: int) -> np.ndarray:
        """Per theta element, the element whose size is its natural unit (-1: unit 1, e.g. a correlation).

        The GLMM fit measures each theta element relative to that element's
        first-stage value, so steps are relative.
        """
        raise NotImplementedError

    def is_default(self) -> bool:
        return self.name == "us"

    def wrap(self, text: str) -> str:
        """The term as written: ``(1 + Days | Subject)``, ``diag(1 + Days | Subject)``."""
        return text if self.is_default() else f"{self.name}{text}"


@dataclass(frozen=True)
class Unstructured(CovarianceStructure):
    """Any covariance: theta is the lower triangle of ``lambda`` (lme4's ``(x | g)``, glmmTMB's ``us``)."""

    name: str = "us"

    def ntheta(self, k: int) -> int:
        return k * (k + 1) // 2

    def initial(self, k: int) -> np.ndarray:
        return initial_theta(k)

    def lower(self, k: int) -> np.ndarray:
        return theta_lower_bounds(k)

    def names(self, group: str, columns: tuple[str, ...]) -> list[str]:
        return theta_names(group, columns)

    def lam(self, theta: np.ndarray, k: int) -> np.ndarray:
        return theta_to_lambda(theta, k)

    def dlam(self, theta: np.ndarray, k: int) -> np.ndarray:
        rows, cols = lower_triangle(k)
        out = np.zeros((rows.size, k, k))
        out[np.arange(rows.size), rows, cols] = 1.0
        return out

    def scale_factors(self, scales: np.ndarray) -> np.ndarray:
        return scales[lower_triangle(scales.size)[0]]

    def from_column_sds(self, sds: np.ndarray) -> np.ndarray:
        rows, cols = lower_triangle(sds.size)
        return np.where(rows == cols, sds[rows], 0.0)

    def unit_index(self, k: int) -> np.ndarray:
        rows, cols = lower_triangle(k)
        diagonal = {r: i for i, (r, c) in enumerate(zip(rows, cols)) if r == c}
        return np.array([diagonal[r] for r in rows], dtype=np.intp)


@dataclass(frozen=True)
class Diagonal(CovarianceStructure):
    """Independent random effects, a variance each (glmmTMB's ``diag``; also for a factor's columns)."""

    name: str = "diag"

    def ntheta(self, k: int) -> int:
        return k

    def initial(self, k: int) -> np.ndarray:
        return np.ones(k)

    def lower(self, k: int) -> np.ndarray:
        return np.zeros(k)

    def names(self, group: str, columns: tuple[str, ...]) -> list[str]:
        return [f"{group}.{c}" for c in columns]

    def lam(self, theta: np.ndarray, k: int) -> np.ndarray:
        return np.diag(np.asarray(theta, dtype=float))

    def dlam(self, theta: np.ndarray, k: int) -> np.ndarray:
        out = np.zeros((k, k, k))
        out[np.arange(k), np.arange(k), np.arange(k)] = 1.0
        return out

    def scale_factors(self, scales: np.ndarray) -> np.ndarray:
        return np.asarray(scales, dtype=float).copy()

    def from_column_sds(self, sds: np.ndarray) -> np.ndarray:
        return np.asarray(sds, dtype=float).copy()

    def unit_index(self, k: int) -> np.ndarray:
        return np.arange(k)


@lru_cache(maxsize=16)
def _compound_symmetry_factor(rho: float, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Cholesky factor ``C`` of ``(1 - rho) I + rho 11'`` and ``dC / d rho``.

    After j elimination steps the trailing block is again compound symmetric,
    with diagonal ``a_j`` and off-diagonal ``b_j`` (``a_0 = 1``, ``b_0 = rho``):
    column j of C is ``sqrt(a_j)`` on the diagonal and ``b_j / sqrt(a_j)`` below,
    then ``a_{j+1} = a_j - b_j^2 / a_j`` and ``b_{j+1} = b_j - b_j^2 / a_j``.
    At a semidefinite boundary (``rho = 1`` or ``-1/(k-1)``) a column with
    ``a_j = 0`` stays zero (and so does its derivative).  Cached (read-only):
    an evaluation and its gradient ask for the same rho several times.
    """
    factor, deriv = np.zeros((k, k)), np.zeros((k, k))
    a, b, da, db = 1.0, float(rho), 0.0, 1.0
    for j in range(k):
        if a <= 0.0:
            break
        root = np.sqrt(a)
        factor[j, j], deriv[j, j] = root, da / (2.0 * root)
        factor[j + 1 :, j] = b / root
        deriv[j + 1 :, j] = db / root - b * da / (2.0 * a * root)
        ratio, dratio = b * b / a, (2.0 * b * db * a - b * b * da) / (a * a)
        a, b, da, db = a - ratio, b - ratio, da - dratio, db - dratio
    return _read_only(factor), _read_only(deriv)


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


@dataclass(frozen=True)
class CompoundSymmetry(CovarianceStructure):
    """A variance per column and one common correlation (glmmTMB's ``cs``)."""

    name: str = "cs"

    def ntheta(self, k: int) -> int:
        return k + 1

    def initial(self, k: int) -> np.ndarray:
        return np.append(np.ones(k), 0.0)

    def lower(self, k: int) -> np.ndarray:
        return np.append(np.zeros(k), -1.0 / (k - 1))

    def upper(self, k: int) -> np.ndarray:
        return np.append(np.full(k, np.inf), 1.0)

    def names(self, group: str, columns: tuple[str, ...]) -> list[str]:
        return [f"{group}.{c}" for c in columns] + [f"{group}.rho"]

    def lam(self, theta: np.ndarray, k: int) -> np.ndarray:
        factor, _ = _compound_symmetry_factor(_clip(theta[k], -1.0 / (k - 1), 1.0), k)
        return np.asarray(theta[:k], dtype=float)[:, None] * factor

    def dlam(self, theta: np.ndarray, k: int) -> np.ndarray:
        factor, deriv = _compound_symmetry_factor(_clip(theta[k], -1.0 / (k - 1), 1.0), k)
        out = np.zeros((k + 1, k, k))
        out[np.arange(k), np.arange(k), :] = factor
        out[k] = np.asarray(theta[:k], dtype=float)[:, None] * deriv
        return out

    def scale_factors(self, scales: np.ndarray) -> np.ndarray:
        return np.append(scales, 1.0)

    def from_column_sds(self, sds: np.ndarray) -> np.ndarray:
        return np.append(sds, 0.0)

    def unit_index(self, k: int) -> np.ndarray:
        return np.append(np.arange(k), -1)


@lru_cache(maxsize=64)
def _ar1_lags(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lags ``i - j`` below the diagonal (0 above), the below-diagonal mask, and ``max(lag - 1, 0)`` (cached)."""
    lag = np.subtract.outer(np.arange(k), np.arange(k))
    lower = lag >= 0
    lags, below = np.where(lower, lag, 0), lower & (lag > 0)
    for array in (lags, lower, below):
        array.flags.writeable = False
    return lags, lower, below


@lru_cache(maxsize=16)
def _ar1_factor(phi: float, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Cholesky factor of the AR(1) correlation ``phi^|i-j|`` (k x k) and its derivative in phi (cached, read-only)."""
    lags, lower, below = _ar1_lags(k)
    powers = phi ** np.arange(k, dtype=float)  # phi^0 .. phi^(k-1): 0^0 = 1
    power = np.where(lower, powers[lags], 0.0)
    dpower = np.where(below, lags * powers[np.maximum(lags - 1, 0)], 0.0)
    innovation = np.sqrt(max(1.0 - phi * phi, 0.0))
    column = np.full(k, innovation)
    column[0] = 1.0
    dcolumn = np.full(k, -phi / innovation if innovation > 0 else 0.0)
    dcolumn[0] = 0.0
    return _read_only(power * column), _read_only(dpower * column + power * dcolumn)


@dataclass(frozen=True)
class AutoRegressive1(CovarianceStructure):
    """One variance and an AR(1) correlation over the ordered columns (glmmTMB's ``ar1``)."""

    name: str = "ar1"

    def ntheta(self, k: int) -> int:
        return 2

    def initial(self, k: int) -> np.ndarray:
        return np.array([1.0, 0.0])

    def lower(self, k: int) -> np.ndarray:
        return np.array([0.0, -1.0])

    def upper(self, k: int) -> np.ndarray:
        return np.array([np.inf, 1.0])

    def names(self, group: str, columns: tuple[str, ...]) -> list[str]:
        return [f"{group}.sd", f"{group}.phi"]

    def lam(self, theta: np.ndarray, k: int) -> np.ndarray:
        factor, _ = _ar1_factor(_clip(theta[1], -1.0, 1.0), k)
        return float(theta[0]) * factor

    def dlam(self, theta: np.ndarray, k: int) -> np.ndarray:
        factor, deriv = _ar1_factor(_clip(theta[1], -1.0, 1.0), k)
        return np.stack([factor, float(theta[0]) * deriv])

    def column_scales(self, rms: np.ndarray) -> np.ndarray:
        """One common scale (the columns share one variance): the root-mean-square over all columns."""
        return np.full(rms.size, np.sqrt(np.mean(rms * rms)) or 1.0)

    def scale_factors(self, scales: np.ndarray) -> np.ndarray:
        return np.array([scales[0], 1.0])

    def from_column_sds(self, sds: np.ndarray) -> np.ndarray:
        return np.array([np.sqrt(np.mean(np.square(sds))), 0.0])

    def unit_index(self, k: int) -> np.ndarray:
        return np.array([0, -1])


def _clip(value: float, low: float, high: float) -> float:
    """A correlation parameter held inside its range (finite differences may step just outside)."""
    return float(min(max(value, low), high))


UNSTRUCTURED = Unstructured()
STRUCTURES: dict[str, CovarianceStructure] = {
    s.name: s for s in (UNSTRUCTURED, Diagonal(), CompoundSymmetry(), AutoRegressive1())
}


def get_structure(name: str) -> CovarianceStructure:
    """The structure of a formula name (``"us"``, ``"diag"``, ``"cs"``, ``"ar1"``)."""
    try:
        return STRUCTURES[name]
    except KeyError:
        raise ValueError(f"unknown covariance structure {name!r}; choose one of {', '.join(STRUCTURES)}") from None
