"""`flota db`: Database schema and migrations."""

from __future__ import annotations

import typer

from flota.commands._common import not_built

app = typer.Typer(help="Database schema and migrations.", no_args_is_help=True)


@app.command("status")
def status() -> None:
    """Not built yet."""
    not_built("db", 2)
