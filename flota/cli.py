"""The `flota` console command: one entry point whose subcommands start every part."""

from __future__ import annotations

import importlib
import logging
import os

import typer

from flota import __version__

# (name, module) pairs; each module defines `app`, a typer.Typer. Kept as data so adding a
# part is one line here and one module in flota/commands/.
SUBCOMMANDS: tuple[tuple[str, str], ...] = (
    ("agent", "flota.commands.agent"),
    ("bridge", "flota.commands.bridge"),
    ("ingest", "flota.commands.ingest"),
    ("optimize", "flota.commands.optimize"),
    ("demo", "flota.commands.demo"),
    ("bench", "flota.commands.bench"),
    ("nmea", "flota.commands.nmea"),
    ("models", "flota.commands.models"),
    ("db", "flota.commands.db"),
)

app = typer.Typer(
    name="flota",
    help="Flota: edge-plus-cloud telematics and transport management.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    log_level: str = typer.Option(
        os.environ.get("FLOTA_LOG_LEVEL", "INFO"), "--log-level", help="Python log level."
    ),
) -> None:
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )


@app.command("version")
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


for _name, _module in SUBCOMMANDS:
    app.add_typer(importlib.import_module(_module).app, name=_name)


def main() -> None:
    app()
