"""Throw-away databases on a real server, for tests and benchmarks that must not collide."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from psycopg import sql

from cloud.db.connection import connect, with_database


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
        with connect(url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
