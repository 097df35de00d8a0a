"""MCMC diagnostics and interval summaries, in NumPy (no JAX or ArviZ needed).

For draws ``x`` of one quantity arranged as ``(chains, draws)``:

* **R-hat** (Vehtari, Gelman, Simpson, Carpenter & Buerkner 2021): split each
  chain in half, rank-normalise all draws (``z = Phi^-1((r - 3/8) / (S + 1/4))``),
  and take the larger of the classic ``sqrt(((N - 1)/N W + B/N) / W)`` for the
  rank-normalised draws (bulk) and for the rank-normalised ``|x - median|``
  (tails).  Values above 1.01 mean the chains disagree.
* **ESS**: ``S / tau`` with the integrated autocorrelation time ``tau``
  estimated by Geyer's initial monotone sequence over the split chains;
  *bulk* on the rank-normalised draws, *tail* the smaller ESS of the
  indicators ``x <= q05`` and ``x <= q95``, *mean* on the raw draws.
* **MCSE of the mean**: ``sd(x) / sqrt(ESS_mean)``.
* **HDI**: the shortest interval containing ``floor(prob S)`` + 1 sorted draws.

All follow ArviZ's reference implementation and agree with it to rounding.
"""

from __future__ import annotations

import numpy as np
from scipy import fft, special, stats

from ..errors import MixedModelsWarning
from .._validate import Instance, check_arguments, argument_kinds

__all__ = ["SamplingWarning", "rhat", "ess_bulk", "ess_tail", "ess_mean", "mcse_mean", "hdi", "summarize_draws"]


class SamplingWarning(MixedModelsWarning):
    """The sampler's draws may not represent the posterior: divergent transitions,
    R-hat above 1.01, or trajectories cut at the maximum tree depth."""


def _as_chains(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x[None, :]
    return x


def _split(x: np.ndarray) -> np.ndarray:
    """``(chains, draws)`` -> ``(2 chains, draws // 2)``: first and last halves."""
    half = x.shape[1] // 2
    return np.concatenate([x[:, :half], x[:, x.shape[1] - half :]], axis=0)


def _z_scale(x: np.ndarray) -> np.ndarray:
    ranks = stats.rankdata(x, method="average").reshape(x.shape)
    return special.ndtri((ranks - 0.375) / (x.size + 0.25))


def _degenerate(x: np.ndarray) -> bool:
    return x.shape[1] < 4 or not np.all(np.isfinite(x)) or np.all(x == x.flat[0])


def _rhat_classic(x: np.ndarray) -> float:
    n = x.shape[1]
    between = n * np.var(x.mean(axis=1), ddof=1)
    within = np.mean(np.var(x, axis=1, ddof=1))
    return float(np.sqrt((between / within + n - 1) / n))


@argument_kinds(x=Instance(np.ndarray, list, tuple, what="an array of draws"))
def rhat(x: np.ndarray) -> float:
    """Rank-normalised split R-hat (max of bulk and folded); NaN for constant draws."""
    check_arguments(locals())
    x = _as_chains(x)
    if _degenerate(x):
        return np.nan
    split = _split(x)
    bulk = _rhat_classic(_z_scale(split))
    folded = np.abs(split - np.median(x))
    tail = _rhat_classic(_z_scale(folded)) if not np.all(folded == folded.flat[0]) else np.nan
    return float(np.nanmax([bulk, tail]))


def _autocov(x: np.ndarray) -> np.ndarray:
    """Biased autocovariance of each chain (rows), by FFT."""
    n = x.shape[1]
    m = fft.next_fast_len(2 * n)
    centred = x - x.mean(axis=1, keepdims=True)
    spec = np.fft.rfft(centred, n=m, axis=1)
    return np.fft.irfft(spec * np.conjugate(spec), n=m, axis=1)[:, :n] / n


def _ess(x: np.ndarray) -> float:
    """ESS of ``(chains, draws)`` draws by Geyer's initial monotone sequence (ArviZ's ``_ess``)."""
    if _degenerate(x):
        return np.nan
    n_chain, n_draw = x.shape
    acov = _autocov(x)
    mean_var = np.mean(acov[:, 0]) * n_draw / (n_draw - 1.0)
    var_plus = mean_var * (n_draw - 1.0) / n_draw
    if n_chain > 1:
        var_plus += np.var(x.mean(axis=1), ddof=1)
    rho = np.zeros(n_draw)
    even, odd = 1.0, 1.0 - (mean_var - np.mean(acov[:, 1])) / var_plus
    rho[0], rho[1] = even, odd
    t = 1
    while t < n_draw - 3 and even + odd > 0.0:
        even = 1.0 - (mean_var - np.mean(acov[:, t + 1])) / var_plus
        odd = 1.0 - (mean_var - np.mean(acov[:, t + 2])) / var_plus
        if even + odd >= 0:
            rho[t + 1], rho[t + 2] = even, odd
        t += 2
    max_t = t - 2
    if even > 0:
        rho[max_t + 1] = even
    t = 1
    while t <= max_t - 2:
        if rho[t + 1] + rho[t + 2] > rho[t - 1] + rho[t]:
            rho[t + 1] = rho[t + 2] = (rho[t - 1] + rho[t]) / 2.0
        t += 2
    size = n_chain * n_draw
    tau = -1.0 + 2.0 * np.sum(rho[: max_t + 1]) + np.sum(rho[max_t + 1 : max_t + 2])
    tau = max(tau, 1.0 / np.log10(size))
    return float(size / tau)


@argument_kinds(x=Instance(np.ndarray, list, tuple, what="an array of draws"))
def ess_bulk(x: np.ndarray) -> float:
    """Bulk effective sample size (rank-normalised split chains)."""
    check_arguments(locals())
    x = _as_chains(x)
    return np.nan if _degenerate(x) else _ess(_z_scale(_split(x)))


def ess_tail(x: np.ndarray) -> float:
    """Tail effective sample size: the smaller ESS of the 5 % and 95 % quantile indicators."""
    x = _as_chains(x)
    if _degenerate(x):
        return np.nan
    values = [_ess(_split((x <= np.quantile(x, p)).astype(float))) for p in (0.05, 0.95)]
    return float(np.nanmin(values)) if not np.all(np.isnan(values)) else np.nan


def ess_mean(x: np.ndarray) -> float:
    """ESS for the posterior mean (raw split chains)."""
    x = _as_chains(x)
    return np.nan if _degenerate(x) else _ess(_split(x))


def mcse_mean(x: np.ndarray) -> float:
    """Monte-Carlo standard error of the posterior mean; 0 for constant draws."""
    x = _as_chains(x)
    if np.all(x == x.flat[0]):
        return 0.0
    return float(np.std(x, ddof=1) / np.sqrt(ess_mean(x)))


@argument_kinds(draws=Instance(np.ndarray, list, tuple, what="an array of draws"))
def hdi(draws: np.ndarray, prob: float = 0.95) -> np.ndarray:
    """Highest-density intervals of each column of ``draws`` (``(S,)`` or ``(S, K)``).

    Returns ``(2,)`` or ``(K, 2)``: the shortest interval holding ``floor(prob S) + 1``
    of the sorted draws.
    """
    check_arguments(locals())
    if not 0.0 < prob < 1.0:
        from ..errors import MixedModelsError

        raise MixedModelsError(f"prob must be between 0 and 1 (e.g. 0.95), got {prob!r}")
    x = np.sort(np.asarray(draws, dtype=float), axis=0)
    flat = x.ndim == 1
    x = x[:, None] if flat else x.reshape(x.shape[0], -1)
    n = x.shape[0]
    inc = int(np.floor(prob * n))
    widths = x[inc:] - x[: n - inc]
    start = np.argmin(widths, axis=0)
    cols = np.arange(x.shape[1])
    out = np.column_stack([x[start, cols], x[start + inc, cols]])
    return out[0] if flat else out


def summarize_draws(draws: np.ndarray, prob: float = 0.95) -> dict[str, float]:
    """Mean, SD, HDI bounds, MCSE, bulk and tail ESS and R-hat of ``(chains, draws)`` draws."""
    x = _as_chains(draws)
    low, high = hdi(x.ravel(), prob)
    return {
        "mean": float(np.mean(x)),
        "sd": float(np.std(x, ddof=1)) if x.size > 1 else np.nan,
        "lower": float(low),
        "upper": float(high),
        "mcse": mcse_mean(x),
        "ess_bulk": ess_bulk(x),
        "ess_tail": ess_tail(x),
        "r_hat": rhat(x),
    }
