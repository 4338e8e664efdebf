"""`flota ingest`: Cloud ingest processes (store, geo)."""

from __future__ import annotations

import typer

from flota.commands._common import not_built

app = typer.Typer(help="Cloud ingest processes (store, geo).", no_args_is_help=True)


@app.command("status")
def status() -> None:
    """Not built yet."""
    not_built("ingest", 4)
