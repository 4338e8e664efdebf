"""`flota models`: Train and evaluate the ONNX models."""

from __future__ import annotations

import typer

from flota.commands._common import not_built

app = typer.Typer(help="Train and evaluate the ONNX models.", no_args_is_help=True)


@app.command("status")
def status() -> None:
    """Not built yet."""
    not_built("models", 6)
