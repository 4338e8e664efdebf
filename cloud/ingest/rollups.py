"""Hourly and daily rollups per vehicle (distance, driving time, idling, events), maintained by
our own job on every engine (see migration 0006 for why and for the definitions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from cloud.ingest.validate import Limits


def refresh_rollups(
    conn: psycopg.Connection[Any],
    *,
    lookback: timedelta,
    now: datetime | None = None,
    limits: Limits | None = None,
    max_gap_s: float = 60.0,
) -> int:
    """Recompute the hours from ``now - lookback`` to the current hour (and their days).
    Returns the number of hourly rows written."""
    now = now or datetime.now(UTC)
    limits = limits or Limits()
    row = conn.execute(
        "SELECT flota_rollup(%s, %s, %s, %s)",
        (now - lookback, now, limits.max_speed_mps, max_gap_s),
    ).fetchone()
    return int(row[0]) if row else 0
