"""`flota bench ...`: benchmarks that print figures (never timed assertions in tests).

Each benchmark lives in its own module ``flota.commands.bench_<name>`` exposing ``run``.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(help="Benchmarks that print figures.", no_args_is_help=True)

BENCHMARKS: tuple[str, ...] = ("ingest", "optimize", "wire", "edge", "models", "demo")

for _name in BENCHMARKS:
    _module = importlib.import_module(f"flota.commands.bench_{_name}")
    app.command(_name, help=_module.__doc__)(_module.run)
