"""`flota agent`: Run the in-vehicle agent."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path

import typer

app = typer.Typer(help="Run the in-vehicle agent.", no_args_is_help=True)


@app.command("run")
def run(
    env_file: Path | None = typer.Option(
        None,
        "--env-file",
        help="A file of FLOTA_AGENT_*=value lines, or a .toml of fields (beside the environment).",
    ),
) -> None:
    """Run until SIGINT/SIGTERM. Settings come from FLOTA_AGENT_* variables (docs/agent.md)."""
    from edge_agent.agent import Agent
    from edge_agent.settings import SettingsError, load_settings

    try:
        settings = load_settings(env_file)
    except SettingsError as err:
        typer.echo(f"flota agent: bad settings:\n{err}", err=True)
        raise typer.Exit(2) from err
    from edge_agent.can_signals import CanConfigError

    try:
        agent = Agent(settings)
    except CanConfigError as err:
        typer.echo(f"flota agent: bad settings:\ncan_dbc/can_signals: {err}", err=True)
        raise typer.Exit(2) from err
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    agent.run(stop)


@app.command("stats")
def stats(
    state_dir: Path = typer.Option(
        Path("/var/lib/flota-agent"), "--state-dir", help="The agent's FLOTA_AGENT_STATE_DIR."
    ),
) -> None:
    """Print the counters the running agent last wrote (outbox, uplink, sources, commands)."""
    path = state_dir / "stats.json"
    if not path.exists():
        typer.echo(f"no {path}: is the agent running with this state dir?", err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps(json.loads(path.read_text()), indent=2, sort_keys=True))


@app.command("outbox")
def outbox(
    state_dir: Path = typer.Option(
        Path("/var/lib/flota-agent"), "--state-dir", help="The agent's FLOTA_AGENT_STATE_DIR."
    ),
) -> None:
    """Print the outbox's queue sizes, counters and integrity check (safe while the agent
    runs: WAL lets it read beside the writer)."""
    from edge_agent.outbox import Outbox

    path = state_dir / "outbox.sqlite"
    if not path.exists():
        typer.echo(f"no outbox at {path}", err=True)
        raise typer.Exit(1)
    box = Outbox(path)
    try:
        out = box.stats()
        out["integrity_ok"] = box.integrity_ok()
    finally:
        box.close()
    typer.echo(json.dumps(out, sort_keys=True))
