"""`flota bench`: Benchmarks that print figures."""

from __future__ import annotations

import typer

from flota.commands._common import not_built

app = typer.Typer(help="Benchmarks that print figures.", no_args_is_help=True)


@app.command("status")
def status() -> None:
    """Not built yet."""
    not_built("bench", 0)
