"""Throw-away databases on a real server, for tests and benchmarks that must not collide."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from cloud.db.connection import connect, with_database


def drop_database(url: str, name: str, *, attempts: int = 20) -> None:
    """Drop database ``name`` on the server of ``url``.

    ``WITH (FORCE)`` ends ordinary sessions; a background worker running as a superuser (such
    as a TimescaleDB job scheduler, which the local stack disables) cannot be ended by the
    owner, so a refusal is retried for a few seconds before it is raised."""
    stmt = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    for attempt in range(attempts):
        try:
            with connect(url, autocommit=True) as admin:
                admin.execute(stmt)
            return
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ObjectInUse):
            if attempt == attempts - 1:
                raise
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
