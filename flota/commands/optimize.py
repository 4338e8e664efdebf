"""`flota optimize`: Route optimisation (solve, serve)."""

from __future__ import annotations

import typer

from flota.commands._common import not_built

app = typer.Typer(help="Route optimisation (solve, serve).", no_args_is_help=True)


@app.command("status")
def status() -> None:
    """Not built yet."""
    not_built("optimize", 5)
