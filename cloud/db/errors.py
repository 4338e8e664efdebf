"""Errors of the database layer. ``retriable`` says whether trying again later can help."""

from __future__ import annotations


class DbError(Exception):
    """Base of the database layer's errors."""

    retriable = False


class DbUnavailableError(DbError):
    """The server cannot be reached or refused the connection; it may come back."""

    retriable = True


class ConfigError(DbError):
    """No usable database URL, or an option that cannot work on this database."""


class MigrationError(DbError):
    """A migration failed or the recorded history does not match the shipped files."""


class LockTimeoutError(MigrationError):
    """Another process held the migration lock for too long."""

    retriable = True
