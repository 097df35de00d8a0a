"""Memory: sizes written as text, what this machine has available, and the refusal before a big allocation.

A model whose matrices do not fit should stop before they are allocated,
with the estimate and what to do -- not grow to the machine's limit and
fail with numpy's "Unable to allocate 7.81 KiB" for the last small array.
The estimates themselves are made where the sizes are known (the design
for X, :mod:`mixedmodels.linalg.memory` for the cross-products and the
factor); this module compares them with the limit: ``max_memory=`` when
given, else the memory available now (Linux: ``MemAvailable``, within a
cgroup's limit).
"""

from __future__ import annotations

import math
import os
import re
import time
from pathlib import Path
from typing import Any

from .errors import MixedModelsError

__all__ = [
    "parse_size",
    "format_size",
    "available_memory",
    "memory_limit",
    "worth_checking",
    "check_memory",
    "MemoryEstimate",
]

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1e3,
    "kb": 1e3,
    "m": 1e6,
    "mb": 1e6,
    "g": 1e9,
    "gb": 1e9,
    "t": 1e12,
    "tb": 1e12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(value: Any) -> float:
    """Bytes from a positive number or a text such as ``"8GB"``, ``"1.5 GiB"``, ``"500MB"``.

    Raises TypeError or ValueError for anything else (booleans, NaN, zero,
    negative numbers, unknown units).
    """
    if isinstance(value, bool):
        raise TypeError("a size is not a bool")
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match is None or match.group(2).lower() not in _UNITS:
            raise ValueError(f"cannot read the size {value!r}")
        size = float(match.group(1)) * _UNITS[match.group(2).lower()]
    else:
        size = float(value)  # TypeError for non-numbers
    if not math.isfinite(size) or size <= 0:
        raise ValueError(f"a size must be a positive number of bytes, not {value!r}")
    return size


def format_size(nbytes: float) -> str:
    """``10.6 GB``, ``430 MB``, ``12 kB`` (decimal units, 3 significant digits)."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:.3g} {unit}"
    return f"{int(nbytes)} bytes"


def _cgroup_room() -> float | None:
    """Bytes left under this process's cgroup (v2) memory limit, or None without one."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit == "max":
            return None
        used = float(Path("/sys/fs/cgroup/memory.current").read_text())
        return max(float(limit) - used, 0.0)
    except (OSError, ValueError):
        return None


# How long a reading of the available memory is reused: reading it costs two or three file reads
# (~30 us), a tenth of a small model's whole set-up when done for every check of every fit.
_READING_LIFETIME = 1.0
_last_reading: tuple[float, float | None] | None = None
_clock = time.monotonic


def available_memory() -> float | None:
    """Bytes of memory available to this process now, or None where it cannot be told.

    Read at most once per second (:data:`_READING_LIFETIME`): a loop of small
    fits does not read ``/proc/meminfo`` for each, and a refusal, which
    compares against a limit far above any small model, does not depend on
    the memory freed or taken within the last second.
    """
    global _last_reading
    now = _clock()
    if _last_reading is None or now - _last_reading[0] > _READING_LIFETIME:
        _last_reading = (now, _read_available_memory())
    return _last_reading[1]


def _read_available_memory() -> float | None:
    """:func:`available_memory` read now: ``MemAvailable``, within a cgroup's limit."""
    room = None
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    room = float(line.split()[1]) * 1024
                    break
    except OSError:
        try:
            room = float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            room = None
    cgroup = _cgroup_room()
    if cgroup is not None:
        room = cgroup if room is None else min(room, cgroup)
    return room


# Without max_memory=, an estimate up to this size is never refused: it is a fraction of what this process
# already holds (Python with numpy and pandas, ~100 MB), so the available memory is not read for it.
NEVER_REFUSED_BYTES = 16 * 2**20


def worth_checking(nbytes: float, max_memory: Any) -> bool:
    """Whether an estimate of ``nbytes`` is compared with a limit: always with ``max_memory=`` (the caller's
    limit, however small), else only above :data:`NEVER_REFUSED_BYTES`.  A small model's checks then read
    no file: reading the available memory costs ~30 us warm and ~220 us after a ``gc.collect()``, once a
    second (:data:`_READING_LIFETIME`), a tenth of a small fit."""
    return max_memory is not None or nbytes > NEVER_REFUSED_BYTES


def memory_limit(max_memory: Any = None) -> tuple[float | None, str]:
    """The limit to check estimates against and how it was set: ``max_memory=`` or what is available."""
    if max_memory is not None:
        return parse_size(max_memory), f"max_memory={max_memory!r}"
    room = available_memory()
    return room, "the memory available now"


class MemoryEstimate:
    """An estimate of a model's peak memory, by part, for the message that refuses it."""

    def __init__(self) -> None:
        self.parts: list[tuple[str, float]] = []

    def add(self, what: str, nbytes: float) -> "MemoryEstimate":
        self.parts.append((what, float(nbytes)))
        return self

    @property
    def total(self) -> float:
        return sum(n for _, n in self.parts)

    def describe(self) -> str:
        return "; ".join(f"{what}: {format_size(n)}" for what, n in self.parts if n >= 1e6) or "small"


def check_memory(estimate: MemoryEstimate, max_memory: Any, what: str, advice: str, *, settable: bool = True) -> None:
    """Refuse (MixedModelsError) when ``estimate`` exceeds the limit, stating both and ``advice``.

    ``settable``: the caller takes ``max_memory=``, so the message says how to raise the limit.
    """
    limit, source = memory_limit(max_memory)
    if limit is None or estimate.total <= limit:
        return
    message = (
        f"{what} needs about {format_size(estimate.total)} of memory ({estimate.describe()}), more than "
        f"{source} ({format_size(limit)}); {advice}"
    )
    if settable:
        larger = format_size(estimate.total * 1.25).replace(" ", "")
        message += f". If the memory is there after all (e.g. swap), pass a larger max_memory=, such as '{larger}'"
    raise MixedModelsError(message)
