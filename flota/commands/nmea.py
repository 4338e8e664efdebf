"""`flota nmea`: NMEA 0183 tools."""

from __future__ import annotations

import typer

from flota.commands._common import not_built

app = typer.Typer(help="NMEA 0183 tools.", no_args_is_help=True)


@app.command("status")
def status() -> None:
    """Not built yet."""
    not_built("nmea", 3)
