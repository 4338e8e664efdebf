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


# The native path's statements (TimescaleDB with the ``timescale`` licence). The Apache edition
# of the local stack refuses them as unlicensed, so they are checked there only up to that
# refusal: names and argument types resolve against the real functions
# (tests/integration/test_ingest_retention_native.py); they have not run to completion here.
POLICY_OF = """
SELECT job_id, (config->>'drop_after')::interval = %s::interval
FROM timescaledb_information.jobs
WHERE proc_name = 'policy_retention' AND hypertable_schema = current_schema()
  AND hypertable_name = %s
"""
ADD_POLICY = (
    "SELECT add_retention_policy(%s::regclass, drop_after => %s::interval, if_not_exists => true)"
)
REMOVE_POLICY = "SELECT remove_retention_policy(%s::regclass, if_exists => true)"


def native_retention(conn: psycopg.Connection[Any], table: str, keep: timedelta) -> str:
    """Make TimescaleDB's retention job of ``table`` drop chunks older than ``keep``:
    ``unchanged`` (already so), ``added``, or ``replaced`` (a job with another ``drop_after``,
    e.g. after FLOTA_RETENTION_FIXES_DAYS changed: ``if_not_exists`` alone would keep it)."""
    rows = conn.execute(POLICY_OF, (keep, table)).fetchall()
    if rows and all(bool(same) for _, same in rows):
        return "unchanged"
    if rows:
        conn.execute(REMOVE_POLICY, (table,))
    conn.execute(ADD_POLICY, (table, keep))
    return "replaced" if rows else "added"


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
            change = native_retention(conn, table, keep)
            if change != "unchanged":
                log.info("retention: native policy of %s %s (drop after %s)", table, change, keep)
            done[table] = -1
        else:
            done[table] = drop_before(conn, table, now - keep)
            if done[table]:
                log.info(
                    "retention: dropped %d chunks of %s before %s", done[table], table, now - keep
                )
    return done
