"""Running NUTS: NumPyro's kernels, one compiled program per model structure.

Each chain is ``init_kernel`` (NumPyro's NUTS with Stan's windowed warmup:
step size by dual averaging to ``target_accept``, diagonal mass matrix)
followed by ``warmup + draws`` transitions in a ``lax.scan``; the draws are
mapped to the reported quantities inside the same program.  Chains run in
parallel on the XLA CPU devices with ``jax.pmap`` (more chains than devices
run in rounds).  The compiled program depends only on the model's
:class:`~mixedmodels.bayes.model.ModelSpec`, the array shapes and the sampler
settings, and is cached, so refitting a model to new data of the same shape
(simulation studies, other priors of the same kinds) costs no compilation.

Reproducibility: chain ``c`` gets the ``c``-th key of ``jax.random.split(PRNGKey(seed))``
and starting values from ``numpy.random.default_rng(seed)``; results do
not depend on how many devices there are.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any

import numpy as np

from ..errors import ModelSpecError
from ._backend import backend, cpu_devices
from .density import constrained, log_density

__all__ = ["SamplerSettings", "SamplerOutput", "run_nuts"]


@dataclass(frozen=True)
class SamplerSettings:
    """NUTS settings (hashable: part of the compiled program's key)."""

    warmup: int = 1000
    draws: int = 1000
    target_accept: float = 0.8
    max_tree_depth: int = 10
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("warmup", "draws", "max_tree_depth"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < (1 if name != "warmup" else 0):
                raise ModelSpecError(f"{name} must be a whole number >= {1 if name != 'warmup' else 0}, got {value!r}")
        if not 0.0 < float(self.target_accept) < 1.0:
            raise ModelSpecError(f"target_accept must be between 0 and 1 (e.g. 0.9), got {self.target_accept!r}")


@dataclass(frozen=True, eq=False)
class SamplerOutput:
    """Draws ``(chains, draws, ...)`` and per-transition statistics from :func:`run_nuts`."""

    draws: dict
    stats: dict
    step_size: np.ndarray
    seconds: float


# --------------------------------------------------------------------------- progress bar
_PROGRESS: dict[str, Any] = {"bar": None}
_PROGRESS_LOCK = threading.Lock()


def _advance(count) -> None:
    with _PROGRESS_LOCK:
        bar = _PROGRESS["bar"]
        if bar is not None:
            if bar.n == 0:
                bar.set_description("Sampling")
            bar.update(int(np.asarray(count).ravel()[0]))


def _tick(i, every: int) -> None:
    B = backend()
    B.lax.cond(i % every == every - 1, lambda: B.jax.debug.callback(_advance, every), lambda: None)


# --------------------------------------------------------------------------- one chain
def _chain(key, init, data, *, spec, settings: SamplerSettings):
    B = backend()
    jnp, lax = B.jnp, B.lax

    def potential_fn_gen(d):
        return lambda params: -log_density(params, d, spec)

    init_kernel, sample_kernel = B.hmc(potential_fn_gen=potential_fn_gen, algo="NUTS")
    state = init_kernel(
        init,
        settings.warmup,
        target_accept_prob=settings.target_accept,
        max_tree_depth=settings.max_tree_depth,
        model_args=(data,),
        rng_key=key,
    )
    total = settings.warmup + settings.draws
    every = max(1, total // 50)

    def record(state):
        stats = {
            "diverging": state.diverging,
            "n_steps": state.num_steps,
            "acceptance_rate": state.accept_prob,
            "energy": state.energy,
            "lp": -state.potential_energy,
        }
        return constrained(state.z, data, spec), stats

    def step(i, carry):
        # one loop over warmup and draws keeps a single copy of the NUTS kernel in the
        # compiled program; warmup iterations write to slot 0, which the first draw overwrites
        state, buffer = carry
        state = sample_kernel(state, model_args=(data,))
        if settings.progress:
            _tick(i, every)
        slot = jnp.maximum(i - settings.warmup, 0)
        buffer = B.jax.tree.map(
            lambda buf, new: lax.dynamic_update_index_in_dim(buf, new, slot, 0), buffer, record(state)
        )
        return state, buffer

    shapes = B.jax.eval_shape(record, state)
    buffer = B.jax.tree.map(lambda s: jnp.zeros((settings.draws,) + s.shape, s.dtype), shapes)
    state, (values, stats) = lax.fori_loop(0, total, step, (state, buffer))
    return values, stats, state.adapt_state.step_size


@lru_cache(maxsize=32)
def _runner(spec, settings: SamplerSettings, ndev: int):
    B = backend()
    fun = partial(_chain, spec=spec, settings=settings)
    return B.jax.pmap(fun, in_axes=(0, 0, None), devices=cpu_devices()[:ndev])


def _stack(inits: list[dict]) -> Any:
    B = backend()
    return B.jax.tree.map(lambda *xs: np.stack(xs), *inits)


def _to_numpy(tree: Any) -> Any:
    return backend().jax.tree.map(np.asarray, tree)


def _concat(parts: list) -> Any:
    return backend().jax.tree.map(lambda *xs: np.concatenate(xs, axis=0), *parts)


def run_nuts(model, chains: int, settings: SamplerSettings, seed: int, inits: list[dict]) -> SamplerOutput:
    """Sample ``chains`` chains of ``model``'s posterior with NUTS.

    ``inits`` holds one unconstrained starting point per chain (see
    :meth:`BayesModel.initial_values`).  Returns NumPy draws of the reported
    quantities and the sampler statistics.
    """
    B = backend()
    jax = B.jax
    ndev = max(1, min(chains, len(cpu_devices())))
    start = time.perf_counter()
    bar = _open_bar(chains * (settings.warmup + settings.draws)) if settings.progress else None
    try:
        with B.x64(True):
            keys = jax.random.split(jax.random.PRNGKey(seed), chains)
            parts = []
            for first in range(0, chains, ndev):
                batch = list(range(first, min(chains, first + ndev)))
                runner = _runner(model.spec, settings, len(batch))
                out = runner(keys[np.array(batch)], _stack([inits[c] for c in batch]), model.data)
                parts.append(_to_numpy(out))
            values, stats, step = _concat(parts) if len(parts) > 1 else parts[0]
    finally:
        _close_bar(bar)
    draws = {
        "beta": values["beta"],
        "sd": list(values["sd"]),
        "cor": [c if t.ncols > 1 else None for c, t in zip(values["cor"], model.spec.terms)],
        "b": list(values["b"]),
        "sigma": values.get("sigma"),
    }
    stats = dict(stats)
    stats["tree_depth"] = np.ceil(np.log2(stats["n_steps"] + 1.0)).astype(int)
    return SamplerOutput(draws, stats, np.asarray(step), time.perf_counter() - start)


def _open_bar(total: int):
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc="Compiling", unit="it", leave=False)
    with _PROGRESS_LOCK:
        _PROGRESS["bar"] = bar
    return bar


def _close_bar(bar) -> None:
    with _PROGRESS_LOCK:
        _PROGRESS["bar"] = None
    if bar is not None:
        bar.close()
