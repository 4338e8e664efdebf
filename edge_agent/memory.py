"""Resident-memory hygiene for a long-running agent on a small device (glibc only; elsewhere
these are no-ops).

- ``limit_arenas``: glibc gives each thread that allocates its own malloc arena; the agent's
  few threads (GPS, MCU, paho, the loop) need no more than two.
- ``trim``: onnxruntime frees its graph-building scratch after a session is made, and glibc
  keeps it; ``malloc_trim`` hands such free pages back (measured: 3.5 MB after two sessions).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from functools import cache
from typing import Any

log = logging.getLogger(__name__)
M_ARENA_MAX = -8  # mallopt parameter number (malloc.h)


@cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    return lib if hasattr(lib, "malloc_trim") and hasattr(lib, "mallopt") else None


def limit_arenas(n: int = 2) -> bool:
    """At most ``n`` malloc arenas from now on (call before starting threads)."""
    lib = _libc()
    return bool(lib is not None and lib.mallopt(M_ARENA_MAX, n) == 1)


def trim() -> bool:
    """Return free heap pages to the system; True if some were released."""
    lib = _libc()
    return bool(lib is not None and lib.malloc_trim(0))


def rss_mb() -> float:
    """This process's resident set (VmRSS) in MB, or NaN where /proc is missing."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")
