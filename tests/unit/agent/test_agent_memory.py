"""Resident-memory hygiene: only clean read-only file mappings are ever dropped."""

from __future__ import annotations

import numpy as np

from edge_agent import memory

SMAPS = """\
7f0000000000-7f0000010000 r--p 00000000 08:01 1 /usr/lib/libx.so
Rss:                  64 kB
Anonymous:             0 kB
7f0000010000-7f0000020000 r-xp 00010000 08:01 1 /usr/lib/libx.so
Rss:                  64 kB
Anonymous:             0 kB
7f0000020000-7f0000030000 r--p 00020000 08:01 1 /usr/lib/libx.so
Rss:                  64 kB
Anonymous:            64 kB
7f0000030000-7f0000040000 rw-p 00030000 08:01 1 /usr/lib/libx.so
Anonymous:             8 kB
7f0000040000-7f0000050000 r--s 00000000 08:01 2 /data/shared.bin
Anonymous:             0 kB
7f0000050000-7f0000060000 r--p 00000000 00:00 0
Anonymous:             0 kB
7f0000060000-7f0000070000 r--p 00000000 08:01 3 /tmp/gone.so (deleted)
Anonymous:             0 kB
7f0000070000-7f0000080000 r-xp 00000000 08:01 4 /opt/with space/liby.so
Anonymous:             0 kB
7f0000080000-7f0000090000 r--p 00000000 08:01 5 /usr/lib/locale/locale-archive
Anonymous:             0 kB
7f0000090000-7f00000a0000 r-xp 00000000 08:01 6 /usr/lib/libz.so.1.3
Anonymous:             0 kB
"""


def test_only_clean_private_readonly_file_mappings_are_chosen() -> None:
    got = memory._clean_readonly_file_mappings(SMAPS)
    # not: relocated (COW) read-only data, writable, shared, anonymous, deleted, not a library
    assert got == [
        (0x7F0000000000, 0x10000),
        (0x7F0000010000, 0x10000),
        (0x7F0000070000, 0x10000),
        (0x7F0000090000, 0x10000),
    ]


def test_release_keeps_code_and_data_working() -> None:
    a = np.arange(1000, dtype=np.float64)
    want = float(np.sum(np.sqrt(a)))
    released = memory.release_file_pages()
    assert released >= 0.0
    # code and constants fault back in from the page cache: the same results after the drop
    assert float(np.sum(np.sqrt(a))) == want
    assert memory.rss_mb() > 0
