"""Retention: raw telemetry kept for a configured time, then dropped whole chunks at a time.

Where the TimescaleDB licence allows native policies (``timescale``), a retention policy per
table is registered once and TimescaleDB's scheduler runs it. Elsewhere (the Apache edition,
plain PostgreSQL) our maintenance loop calls ``flota_drop_before`` itself: ``drop_chunks`` on
hypertables, detach-and-drop of whole partitions otherwise. Never row-by-row DELETEs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from cloud.db.capabilities import Capabilities
from cloud.db.maintenance import drop_before

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionPlan:
    """How long each time-series table keeps its rows."""

    keep: dict[str, timedelta]

    @classmethod
    def from_days(cls, fixes: float, quarantine: float, events: float) -> RetentionPlan:
        return cls(
            {
                "fixes": timedelta(days=fixes),
                "sensor_samples": timedelta(days=fixes),
                "quarantine": timedelta(days=quarantine),
                "events": timedelta(days=events),
            }
        )


def _registered(conn: psycopg.Connection[Any]) -> set[str]:
    return {str(r[0]) for r in conn.execute("SELECT table_name FROM timeseries_tables")}


def apply_retention(
    conn: psycopg.Connection[Any],
    caps: Capabilities,
    plan: RetentionPlan,
    now: datetime | None = None,
) -> dict[str, int]:
    """Enforce the plan once. Returns, per table, the chunks or partitions dropped now (-1:
    left to a native policy)."""
    now = now or datetime.now(UTC)
    tables = _registered(conn)
    done: dict[str, int] = {}
    for table, keep in plan.keep.items():
        if table not in tables:
            continue
        if caps.native_policies:
            conn.execute(
                "SELECT add_retention_policy(%s::regclass, drop_after => %s,"
                " if_not_exists => true)",
                (table, keep),
            )
            done[table] = -1
        else:
            done[table] = drop_before(conn, table, now - keep)
            if done[table]:
                log.info(
                    "retention: dropped %d chunks of %s before %s", done[table], table, now - keep
                )
    return done
