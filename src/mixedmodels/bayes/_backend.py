"""Lazy access to JAX and NumPyro, the optional sampling backend (``pip install mixedmodels[bayes]``).

Nothing here is imported until a model is sampled.  On first use, if JAX has
not been imported yet, the CPU is split into several XLA host devices (at
least 4, at most 8, never fewer than the cores) so that chains run in
parallel with ``jax.pmap``; a user's own ``XLA_FLAGS`` setting is respected.
Sampling runs in 64-bit floats through ``jax.enable_x64`` without changing
the global JAX configuration.
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from types import SimpleNamespace

__all__ = ["backend", "cpu_devices", "INSTALL_HINT"]

INSTALL_HINT = (
    "mixedmodels.bayes needs NumPyro and JAX: install them with "
    "`pip install mixedmodels[bayes]` (or `pip install numpyro jax`)"
)
_DEVICE_FLAG = "xla_force_host_platform_device_count"


def _configure_host_devices() -> None:
    """Ask XLA for several CPU devices, unless JAX is already imported or the user chose."""
    if "jax" in sys.modules:
        return
    flags = os.environ.get("XLA_FLAGS", "")
    if _DEVICE_FLAG in flags:
        return
    count = max(4, min(os.cpu_count() or 1, 8))
    os.environ["XLA_FLAGS"] = f"{flags} --{_DEVICE_FLAG}={count}".strip()


@lru_cache(maxsize=None)
def backend() -> SimpleNamespace:
    """The imported modules: ``jax``, ``jnp``, ``lax``, ``hmc`` (NumPyro's NUTS kernels), ``corr_cholesky``
    (NumPyro's transform to Cholesky factors of correlation matrices) and ``x64`` (64-bit context manager).

    Raises
    ------
    ImportError
        With the install command, when NumPyro or JAX is missing.
    """
    _configure_host_devices()
    try:
        import jax
        import jax.numpy as jnp
        from jax import lax
        from jax.scipy import special as jsp
        from numpyro.distributions import constraints
        from numpyro.distributions.transforms import biject_to
        from numpyro.infer.hmc import hmc
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(f"{INSTALL_HINT} ({exc})") from exc
    enable_x64 = getattr(jax, "enable_x64", None)
    if enable_x64 is None:  # JAX before 0.7 kept the context manager in jax.experimental
        from jax.experimental import enable_x64
    return SimpleNamespace(
        jax=jax,
        jnp=jnp,
        lax=lax,
        jsp=jsp,
        hmc=hmc,
        corr_cholesky=biject_to(constraints.corr_cholesky),
        x64=enable_x64,
    )


def cpu_devices() -> list:
    """The CPU devices chains are spread over."""
    return backend().jax.devices("cpu")
