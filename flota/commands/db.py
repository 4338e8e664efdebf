"""`flota db`: the schema's versioned migrations, its status, and storage upkeep."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from cloud.db.errors import DbError

app = typer.Typer(help="Database schema: migrate, status, maintain.", no_args_is_help=True)

URL_OPTION = typer.Option(
    None, "--url", help="postgresql:// URL; default: the FLOTA_DATABASE_URL environment variable."
)


def _fail(err: DbError) -> typer.Exit:
    hint = " (retriable)" if err.retriable else ""
    typer.echo(f"flota db: {err}{hint}", err=True)
    return typer.Exit(2 if err.retriable else 1)


@app.command("migrate")
def migrate_cmd(
    url: str | None = URL_OPTION,
    storage: str = typer.Option(
        "auto",
        "--storage",
        help="auto: hypertables where TimescaleDB can be installed, else partitions; "
        "or force 'hypertable' / 'partitions' for new time-series tables.",
    ),
    lock_timeout: float = typer.Option(60.0, help="Seconds to wait for another migrator."),
) -> None:
    """Apply pending migrations (idempotent; safe to run from several processes at once)."""
    from cloud.db import DbError, connect, migrate, redact, resolve_url

    if storage not in {"auto", "hypertable", "partitions"}:
        raise typer.BadParameter("must be auto, hypertable or partitions", param_hint="--storage")
    try:
        resolved = resolve_url(url)
        with connect(resolved, autocommit=True) as conn:
            result = migrate(conn, storage=storage, lock_timeout_s=lock_timeout)  # type: ignore[arg-type]
    except DbError as err:
        raise _fail(err) from err
    typer.echo(f"database: {redact(resolved)}")
    typer.echo(f"engine:   {result.capabilities.describe()}")
    if result.applied:
        for m in result.applied:
            typer.echo(f"applied:  {m.version:04d}_{m.name}")
    else:
        typer.echo("applied:  nothing (schema up to date)")
    if result.partitions_created:
        typer.echo(f"partitions created: {result.partitions_created}")


@app.command("status")
def status_cmd(url: str | None = URL_OPTION) -> None:
    """Show the engine, licence, applied and pending migrations, and how tables are stored."""
    from cloud.db import DbError, connect, redact, resolve_url, status

    try:
        resolved = resolve_url(url)
        with connect(resolved, autocommit=True) as conn:
            st = status(conn)
    except DbError as err:
        raise _fail(err) from err
    typer.echo(f"database: {redact(resolved)}")
    typer.echo(f"engine:   {st.capabilities.describe()}")
    for a in st.applied:
        mark = "  EDITED AFTER APPLY" if a.version in st.mismatched else ""
        typer.echo(f"applied:  {a.version:04d}_{a.name}  {a.applied_at:%Y-%m-%d %H:%M:%S%z}{mark}")
    for m in st.pending:
        typer.echo(f"pending:  {m.version:04d}_{m.name}")
    for table, how in st.tables.items():
        typer.echo(f"table:    {table} ({how})")
    if st.pending or st.mismatched:
        raise typer.Exit(1)


@app.command("maintain")
def maintain_cmd(
    url: str | None = URL_OPTION,
    ahead_days: int = typer.Option(7, min=1, help="Create partitions this many days ahead."),
) -> None:
    """Create partitions ahead of time and for rows parked in DEFAULT partitions (plain
    PostgreSQL; a no-op for hypertables). Run it daily, e.g. from cron or the store."""
    from datetime import timedelta

    from cloud.db import DbError, connect, resolve_url
    from cloud.db.maintenance import ensure_partitions

    try:
        with connect(resolve_url(url), autocommit=True) as conn:
            created = ensure_partitions(conn, ahead=timedelta(days=ahead_days))
    except DbError as err:
        raise _fail(err) from err
    typer.echo(f"partitions created: {created}")
