"""The cloud's database: connections, versioned migrations, capability detection, upkeep.

One schema serves two engines: TimescaleDB (hypertables; native policies where the licence
allows) and plain PostgreSQL (range partitions kept by our own jobs). See docs/database.md.
"""

from cloud.db.capabilities import Capabilities, detect, ensure_timescaledb
from cloud.db.connection import connect, redact, resolve_url, with_database
from cloud.db.errors import (
    ConfigError,
    DbError,
    DbUnavailableError,
    LockTimeoutError,
    MigrationError,
)
from cloud.db.migrate import MigrateResult, SchemaStatus, load_migrations, migrate, status

__all__ = [
    "Capabilities",
    "ConfigError",
    "DbError",
    "DbUnavailableError",
    "LockTimeoutError",
    "MigrateResult",
    "MigrationError",
    "SchemaStatus",
    "connect",
    "detect",
    "ensure_timescaledb",
    "load_migrations",
    "migrate",
    "redact",
    "resolve_url",
    "status",
    "with_database",
]
