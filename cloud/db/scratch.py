"""Throw-away databases on a real server, for tests and benchmarks that must not collide."""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from cloud.db.connection import connect, with_database

log = logging.getLogger(__name__)


def _stop_timescaledb_workers(url: str) -> None:
    """Stop TimescaleDB's background-worker scheduler of one database.

    The scheduler is connected to every database holding the extension and runs as a
    superuser, so ``DROP DATABASE ... WITH (FORCE)`` by an ordinary owner cannot terminate it.
    ``timescaledb_pre_restore()`` (allowed for the database owner) makes it exit.
    """
    with contextlib.suppress(psycopg.Error), connect(url, autocommit=True) as conn:
        has_ext = conn.execute(
            "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'"
        ).fetchone()
        if has_ext:
            conn.execute("SELECT timescaledb_pre_restore()")


def drop_database(url: str, name: str, *, attempts: int = 20) -> None:
    """Drop database ``name`` on the server of ``url``, waiting out background workers."""
    stmt = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    for attempt in range(attempts):
        try:
            with connect(url, autocommit=True) as admin:
                admin.execute(stmt)
            return
        except psycopg.errors.InsufficientPrivilege:
            if attempt == attempts - 1:
                raise
            _stop_timescaledb_workers(with_database(url, name))
            time.sleep(0.25)


@contextmanager
def scratch_database(url: str, *, prefix: str = "flota_test") -> Iterator[str]:
    """Create ``<prefix>_<random>`` on the server of ``url``, yield its URL, drop it after.

    The role needs CREATEDB (the local stack's ``flota`` role has it).
    """
    name = f"{prefix}_{secrets.token_hex(4)}"
    with connect(url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_database(url, name)
    finally:
        drop_database(url, name)
