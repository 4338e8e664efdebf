"""`flota ingest maintain`: the scheduled upkeep of the ingest's tables, one pass or a loop.

Each pass: partitions ahead (plain PostgreSQL), retention (native policy or our drop of whole
chunks), hourly and daily rollups of the recent hours. Each step runs in its own transaction
and a failing step is logged and counted, never stops the others or the loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from cloud.db.capabilities import detect
from cloud.db.connection import connect
from cloud.db.maintenance import ensure_partitions
from cloud.ingest.metrics import IngestMetrics
from cloud.ingest.retention import RetentionPlan, apply_retention
from cloud.ingest.rollups import refresh_rollups
from cloud.settings import MaintainSettings

log = logging.getLogger(__name__)


@dataclass
class PassResult:
    """What one maintenance pass did."""

    partitions_created: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    rollup_rows: int = 0
    failed: list[str] = field(default_factory=list)


def maintain_once(
    conn: psycopg.Connection[Any],
    settings: MaintainSettings,
    now: datetime | None = None,
    metrics: IngestMetrics | None = None,
) -> PassResult:
    """One pass of every step on an autocommit connection."""
    now = now or datetime.now(UTC)
    caps = detect(conn)
    out = PassResult()
    plan = RetentionPlan.from_days(
        settings.retention_fixes_days,
        settings.retention_quarantine_days,
        settings.retention_events_days,
    )
    steps: dict[str, Callable[[], None]] = {
        "partitions": lambda: setattr(
            out,
            "partitions_created",
            ensure_partitions(conn) if caps.storage == "partitions" else 0,
        ),
        "retention": lambda: setattr(out, "dropped", apply_retention(conn, caps, plan, now)),
        "rollups": lambda: setattr(
            out,
            "rollup_rows",
            refresh_rollups(
                conn, lookback=timedelta(hours=settings.rollup_lookback_hours), now=now
            ),
        ),
    }
    for name, step in steps.items():
        try:
            with conn.transaction():
                step()
        except psycopg.Error as err:
            log.error("maintenance step %s failed: %s", name, err)
            out.failed.append(name)
            if metrics is not None:
                metrics.errors.labels(metrics.process, f"maintain_{name}").inc()
    log.info(
        "maintenance: %s; partitions +%d, dropped %s, %d hourly rollup rows, failed %s",
        caps.describe(), out.partitions_created, out.dropped, out.rollup_rows, out.failed,
    )  # fmt: skip
    return out


def run_loop(settings: MaintainSettings, stop: threading.Event, metrics: IngestMetrics) -> None:
    """A pass every ``maintain_interval_s`` until stopped; reconnects when the database fails."""
    url = settings.database_url.get_secret_value()
    while not stop.is_set():
        started = time.monotonic()
        try:
            with connect(url, autocommit=True) as conn:
                maintain_once(conn, settings, metrics=metrics)
        except Exception as err:  # a pass that fails is retried next interval
            log.error("maintenance pass failed: %s", err)
            metrics.errors.labels(metrics.process, "maintain").inc()
        stop.wait(max(1.0, settings.maintain_interval_s - (time.monotonic() - started)))
