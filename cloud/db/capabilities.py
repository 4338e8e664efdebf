"""What the connected database can do: TimescaleDB or not, and under which licence.

The Apache-licensed TimescaleDB (Debian's build) has hypertables and ``time_bucket`` but refuses
compression, continuous aggregates and retention policies; the Timescale licence allows them.
Plain PostgreSQL (the embedded demo) has none of it. Later code reads :class:`Capabilities` to
choose between native policies and our own jobs (``flota_drop_before``, rollup tables).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import psycopg

log = logging.getLogger(__name__)

Storage = Literal["hypertable", "partitions"]


@dataclass(frozen=True, slots=True)
class Capabilities:
    """Detected features of one database."""

    server_version: str
    timescaledb_version: str | None  # installed in this database; None on plain PostgreSQL
    timescaledb_available: bool  # the server ships the extension (installed or not)
    license: str | None  # 'apache' or 'timescale'; None without TimescaleDB

    @property
    def storage(self) -> Storage:
        """How new time-series tables are stored here."""
        return "hypertable" if self.timescaledb_version else "partitions"

    @property
    def native_policies(self) -> bool:
        """Compression, continuous aggregates and retention policies may be used."""
        return self.timescaledb_version is not None and self.license == "timescale"

    def describe(self) -> str:
        if not self.timescaledb_version:
            return f"PostgreSQL {self.server_version}, no TimescaleDB: range partitions, own jobs"
        jobs = "native policies" if self.native_policies else "own retention and rollup jobs"
        return (
            f"PostgreSQL {self.server_version}, TimescaleDB {self.timescaledb_version} "
            f"({self.license} licence): hypertables, {jobs}"
        )


def detect(conn: psycopg.Connection[Any]) -> Capabilities:
    """Read the capabilities without changing anything."""
    row = conn.execute(
        """
        SELECT current_setting('server_version'),
               (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'),
               EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'),
               current_setting('timescaledb.license', true)
        """
    ).fetchone()
    assert row is not None
    version, ts_version, available, license_ = row
    return Capabilities(
        server_version=str(version).split()[0],
        timescaledb_version=ts_version,
        timescaledb_available=bool(available),
        license=license_ if ts_version else None,
    )


def ensure_timescaledb(conn: psycopg.Connection[Any]) -> Capabilities:
    """Install TimescaleDB in this database if the server offers it and we may; else say why not.

    It is a trusted extension, so a database owner without superuser can create it. Failure
    (not preloaded, no privilege) is not an error: the schema falls back to plain partitions.
    """
    caps = detect(conn)
    if caps.timescaledb_version or not caps.timescaledb_available:
        return caps
    try:
        with conn.transaction():
            conn.execute("SET LOCAL client_min_messages = warning")
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.Error as err:
        log.warning("TimescaleDB is available but could not be created (%s); using partitions", err)
        return caps
    return detect(conn)
