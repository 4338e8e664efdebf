"""Versioned schema migrations: ``migrations/NNNN_name.sql`` applied in order, once each.

Each file runs in its own transaction together with its row in ``schema_migrations``, so a
failed migration leaves nothing behind and is retried next time. A session-level advisory lock
serialises concurrent runners (two stores starting at once): the second waits, then finds
nothing to do. A file edited after it was applied is refused (its checksum no longer matches):
ship a new migration instead.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any, Literal

import psycopg

from cloud.db.capabilities import Capabilities, Storage, detect, ensure_timescaledb
from cloud.db.errors import ConfigError, LockTimeoutError, MigrationError

log = logging.getLogger(__name__)

# pg_advisory_lock key: ASCII "flotamig" as a signed 64-bit integer.
LOCK_KEY = int.from_bytes(b"flotamig", "big", signed=True)
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

StorageChoice = Literal["auto", "hypertable", "partitions"]

_HISTORY_DDL = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text        NOT NULL,
    checksum    text        NOT NULL,  -- sha256 of the file as applied
    applied_at  timestamptz NOT NULL DEFAULT now(),
    duration_ms integer     NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    """One shipped migration file."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class AppliedMigration:
    version: int
    name: str
    checksum: str
    applied_at: datetime


@dataclass(frozen=True, slots=True)
class MigrateResult:
    applied: list[Migration]
    capabilities: Capabilities
    partitions_created: int


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    """What is applied, what is pending, and how the time-series tables are stored."""

    capabilities: Capabilities
    applied: list[AppliedMigration]
    pending: list[Migration]
    mismatched: list[int]  # versions whose shipped file differs from what was applied
    tables: dict[str, Storage]


def load_migrations(package: str = "cloud.db", folder: str = "migrations") -> list[Migration]:
    """The shipped migrations in version order; a malformed name or a repeated version is a bug."""
    found: dict[int, Migration] = {}
    for entry in resources.files(package).joinpath(folder).iterdir():
        if not entry.name.endswith(".sql"):
            continue
        m = _FILE.match(entry.name)
        if not m:
            raise MigrationError(f"migration file {entry.name!r} is not named NNNN_name.sql")
        version = int(m.group(1))
        if version in found:
            raise MigrationError(f"two migrations with version {version}")
        found[version] = Migration(version, m.group(2), entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def _applied(conn: psycopg.Connection[Any]) -> list[AppliedMigration]:
    exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return []
    rows = conn.execute(
        "SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version"
    ).fetchall()
    return [AppliedMigration(*r) for r in rows]


def _tables(conn: psycopg.Connection[Any]) -> dict[str, Storage]:
    exists = conn.execute("SELECT to_regclass('timeseries_tables') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return {}
    rows = conn.execute("SELECT table_name, storage FROM timeseries_tables ORDER BY 1").fetchall()
    return {str(name): storage for name, storage in rows}


def _check_history(shipped: list[Migration], applied: list[AppliedMigration]) -> list[int]:
    by_version = {m.version: m for m in shipped}
    mismatched = []
    for a in applied:
        m = by_version.get(a.version)
        if m is None:
            raise MigrationError(
                f"the database has migration {a.version} ({a.name}) that this code does not ship;"
                " it was migrated by a newer version"
            )
        if m.checksum != a.checksum:
            mismatched.append(a.version)
    return mismatched


def status(conn: psycopg.Connection[Any]) -> SchemaStatus:
    """Read the schema's state without changing it."""
    shipped = load_migrations()
    applied = _applied(conn)
    done = {a.version for a in applied}
    mismatched = _check_history(shipped, applied)
    return SchemaStatus(
        capabilities=detect(conn),
        applied=applied,
        pending=[m for m in shipped if m.version not in done],
        mismatched=mismatched,
        tables=_tables(conn),
    )


def migrate(
    conn: psycopg.Connection[Any],
    *,
    storage: StorageChoice = "auto",
    lock_timeout_s: float = 60.0,
    migrations: list[Migration] | None = None,
) -> MigrateResult:
    """Bring the schema up to date. ``conn`` must be in autocommit mode (each migration opens its
    own transaction). ``storage`` forces the time-series storage of new tables; ``auto`` makes
    hypertables where TimescaleDB can be installed and partitions elsewhere."""
    if not conn.autocommit:
        raise ConfigError("migrate() needs a connection in autocommit mode")
    shipped = load_migrations() if migrations is None else migrations
    conn.execute(f"SET lock_timeout = {int(lock_timeout_s * 1000)}")
    try:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
    except psycopg.errors.LockNotAvailable as err:
        raise LockTimeoutError(
            f"another migration held the lock for over {lock_timeout_s} s"
        ) from err
    finally:
        conn.execute("RESET lock_timeout")
    try:
        caps = detect(conn) if storage == "partitions" else ensure_timescaledb(conn)
        chosen: Storage = caps.storage if storage == "auto" else storage
        if chosen == "hypertable" and not caps.timescaledb_version:
            raise ConfigError("storage 'hypertable' asked for, but TimescaleDB is not installed")
        conn.execute("SELECT set_config('flota.storage', %s, false)", (chosen,))
        conn.execute("SET client_min_messages = warning")
        conn.execute(_HISTORY_DDL)
        applied = _applied(conn)
        mismatched = _check_history(shipped, applied)
        if mismatched:
            raise MigrationError(
                f"migrations {mismatched} were edited after they were applied; "
                "add a new migration instead of changing an applied one"
            )
        done = {a.version for a in applied}
        ran: list[Migration] = []
        for m in shipped:
            if m.version in done:
                continue
            t0 = time.monotonic()
            try:
                with conn.transaction():
                    conn.execute(m.sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum, duration_ms) "
                        "VALUES (%s, %s, %s, %s)",
                        (m.version, m.name, m.checksum, int((time.monotonic() - t0) * 1000)),
                    )
            except psycopg.Error as err:
                raise MigrationError(f"migration {m.version:04d}_{m.name} failed: {err}") from err
            log.info("applied migration %04d_%s (%s storage)", m.version, m.name, chosen)
            ran.append(m)
        created = 0
        if _tables(conn):
            row = conn.execute("SELECT flota_ensure_partitions()").fetchone()
            created = int(row[0]) if row else 0
        return MigrateResult(applied=ran, capabilities=detect(conn), partitions_created=created)
    finally:
        conn.execute("RESET flota.storage")
        conn.execute("RESET client_min_messages")
        conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
