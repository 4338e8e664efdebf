"""Scheduled upkeep that the storage engine does not do for us.

On plain PostgreSQL, partitions must exist before rows for them arrive (else rows park in the
DEFAULT partition until the next run moves them). Retention is ours wherever native policies are
refused (Apache-licensed TimescaleDB, plain PostgreSQL): ``flota_drop_before`` drops whole
chunks or partitions, never row by row.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg


def ensure_partitions(
    conn: psycopg.Connection[Any], *, ahead: timedelta = timedelta(days=7)
) -> int:
    """Create partitions up to ``ahead`` from now (and for parked rows); return how many."""
    row = conn.execute("SELECT flota_ensure_partitions(%s)", (ahead,)).fetchone()
    return int(row[0]) if row else 0


def drop_before(conn: psycopg.Connection[Any], table: str, cutoff: datetime) -> int:
    """Drop the chunks or partitions of ``table`` that end at or before ``cutoff``."""
    row = conn.execute("SELECT flota_drop_before(%s, %s)", (table, cutoff)).fetchone()
    return int(row[0]) if row else 0
