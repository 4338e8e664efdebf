"""`flota agent`: Run the in-vehicle agent."""

from __future__ import annotations

import typer

from flota.commands._common import not_built

app = typer.Typer(help="Run the in-vehicle agent.", no_args_is_help=True)


@app.command("status")
def status() -> None:
    """Not built yet."""
    not_built("agent", 3)
