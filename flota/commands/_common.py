"""Helpers shared by the subcommand modules."""

from __future__ import annotations

from typing import NoReturn

import typer

NOT_BUILT_EXIT = 3


def not_built(what: str, issue: int) -> NoReturn:
    """Say plainly that a part is not built yet, and exit non-zero.

    A subcommand whose part lands in a later issue must never pretend to work.
    """
    typer.echo(f"flota {what}: not built yet (tracked in issue {issue}).", err=True)
    raise typer.Exit(NOT_BUILT_EXIT)
