"""How fast `flota demo` is ready: runs it several times (short drives) in child processes and
prints the end-to-end ready time of each (a fix read from a pseudo-terminal by an agent, stored,
and its acknowledgement back in that agent's outbox), with the median, as one JSON line."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

import typer


def run(
    runs: int = typer.Option(3, "--runs", min=1, max=10, help="Demo runs."),
    vehicles: int = typer.Option(5, "--vehicles", min=1, max=50, help="Vehicles per run."),
    duration: float = typer.Option(15.0, "--duration", min=5, help="Drive seconds per run."),
    as_json: bool = typer.Option(False, "--json", help="Print only the JSON line."),
) -> None:
    ready: list[float] = []
    wall: list[float] = []
    argv = [sys.executable, "-m", "flota", "demo", "--vehicles", str(vehicles)]
    argv += ["--duration", str(duration)]
    for i in range(runs):
        t0 = time.monotonic()
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=duration + 240,
            check=False,
        )
        wall.append(time.monotonic() - t0)
        if proc.returncode != 0:
            typer.echo(proc.stderr[-2000:], err=True)
            raise typer.Exit(1)
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
        if summary["ready_s"] is None:
            typer.echo(f"run {i + 1}: never ready", err=True)
            raise typer.Exit(1)
        ready.append(float(summary["ready_s"]))
        if not as_json:
            typer.echo(f"run {i + 1}: ready after {ready[-1]:.1f} s", err=True)
    typer.echo(json.dumps({
        "vehicles": vehicles,
        "runs": runs,
        "ready_s": ready,
        "ready_s_median": round(statistics.median(ready), 1),
        "ready_s_max": max(ready),
        "run_wall_s_median": round(statistics.median(wall), 1),
    }))  # fmt: skip
