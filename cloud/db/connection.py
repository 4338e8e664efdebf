"""Where the database is and how to connect to it.

The URL comes from ``--url`` or ``FLOTA_DATABASE_URL``; both go through the cloud settings'
validation (:class:`cloud.settings.DatabaseSettings`), which refuses default passwords.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from pydantic import ValidationError

from cloud.db.errors import ConfigError, DbUnavailableError
from cloud.settings import DatabaseSettings


def resolve_url(url: str | None = None) -> str:
    """The validated database URL: ``url`` if given, else ``FLOTA_DATABASE_URL``."""
    try:
        if url is None:
            settings = DatabaseSettings()  # type: ignore[call-arg]  # read from the environment
        else:
            settings = DatabaseSettings.model_validate({"database_url": url})
    except ValidationError as err:
        if url is None and any(e["type"] == "missing" for e in err.errors()):
            raise ConfigError(
                "no database: set FLOTA_DATABASE_URL (deploy/local/timescaledb.sh start writes "
                ".stack/env.d/timescaledb.env) or pass --url"
            ) from err
        raise ConfigError(f"unusable database URL: {err.errors()[0]['msg']}") from err
    return settings.database_url.get_secret_value()


def redact(url: str) -> str:
    """The URL with its password replaced, for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def with_database(url: str, dbname: str) -> str:
    """The same server and credentials, another database."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{dbname}"))


def connect(url: str, *, autocommit: bool = False, **kwargs: Any) -> psycopg.Connection[Any]:
    """Open a connection; a failure to connect becomes :class:`DbUnavailableError` (retriable)."""
    kwargs.setdefault("application_name", "flota")
    kwargs.setdefault("connect_timeout", 10)
    try:
        return psycopg.connect(url, autocommit=autocommit, **kwargs)
    except psycopg.OperationalError as err:
        raise DbUnavailableError(f"cannot connect to {redact(url)}: {err}") from err
