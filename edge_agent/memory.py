"""Resident-memory hygiene for a long-running agent on a small device (glibc only; elsewhere
these are no-ops).

- ``limit_arenas``: glibc gives each thread that allocates its own malloc arena; the agent's
  few threads (GPS, MCU, paho, the loop) need no more than two.
- ``trim``: onnxruntime frees its graph-building scratch after a session is made, and glibc
  keeps it; ``malloc_trim`` hands such free pages back (measured: 3.5 MB after two sessions).
- ``release_file_pages``: shared libraries' static initialisers (onnxruntime's op schemas and
  kernel registries above all) touch tens of MB of code and read-only data once; those pages
  stay mapped, and counted in VmRSS, though only a few are used again. Unmapping the
  libraries' clean read-only pages lets the running agent fault back in (from the page cache,
  no disk) only what it uses: 15 MB less with onnxruntime, 9 with numpy (docs/agent.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from functools import cache
from typing import Any

log = logging.getLogger(__name__)
M_ARENA_MAX = -8  # mallopt parameter number (malloc.h)
MADV_DONTNEED = 4  # madvise advice (sys/mman.h)


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


def _clean_readonly_file_mappings(smaps: str) -> list[tuple[int, int]]:
    """(start, length) of shared libraries' private read-only mappings holding no private (COW)
    page: their contents equal the file's, so dropping them loses nothing. Only libraries: the
    interpreter never unloads one, so no other mapping can take a range between the read of
    smaps and the madvise (a temporary file mapping could be replaced by written memory)."""
    out: list[tuple[int, int]] = []
    current: tuple[int, int] | None = None
    for line in smaps.splitlines():
        parts = line.split()
        if not parts:
            continue
        if "-" in parts[0] and len(parts) >= 5 and ":" in parts[3]:
            current = None
            path = " ".join(parts[5:])
            name = path.rsplit("/", 1)[-1]
            library = name.endswith(".so") or ".so." in name
            if parts[1] in ("r--p", "r-xp") and path.startswith("/") and library:
                start, end = (int(x, 16) for x in parts[0].split("-"))
                current = (start, end - start)
        elif parts[0] == "Anonymous:" and current is not None:
            if int(parts[1]) == 0:
                out.append(current)
            current = None
    return out


def release_file_pages() -> float:
    """Drop this process's resident pages of clean read-only file mappings (library code and
    constants); they come back from the page cache on the next touch. Returns MB released."""
    lib = _libc()
    if lib is None or not hasattr(lib, "madvise"):
        return 0.0
    try:
        with open("/proc/self/smaps") as f:
            ranges = _clean_readonly_file_mappings(f.read())
    except OSError:
        return 0.0
    before = rss_mb()
    madvise = lib.madvise
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    for start, length in ranges:
        madvise(start, length, MADV_DONTNEED)
    return max(0.0, before - rss_mb())


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
