"""`flota demo`: Run the whole system on the embedded default."""

from __future__ import annotations

import typer

from flota.commands._common import not_built

app = typer.Typer(help="Run the whole system on the embedded default.", no_args_is_help=True)


@app.command("status")
def status() -> None:
    """Not built yet."""
    not_built("demo", 7)
