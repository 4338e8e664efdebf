"""`flota demo`: the whole system on the embedded default, from one command."""

from __future__ import annotations

import typer

app = typer.Typer(help="Run the whole system on the embedded default.", invoke_without_command=True)


@app.callback()
def demo(
    vehicles: int = typer.Option(5, "--vehicles", min=1, max=500, help="Simulated vehicles."),
    duration: float | None = typer.Option(
        None, "--duration", min=5, help="Seconds to run, then print a JSON summary and exit."
    ),
    amqtt: bool = typer.Option(False, "--amqtt", help="Use amqtt even if Mosquitto is on PATH."),
    keep: bool = typer.Option(False, "--keep", help="Keep the work folder with the logs."),
) -> None:
    """Start embedded PostgreSQL, Tansu (Kafka protocol), an MQTT broker, the cloud services
    and a fleet of real edge agents fed by simulated hardware; Ctrl-C stops everything. With
    --duration, print a JSON summary at the end and exit non-zero on any loss or error."""
    from flota.demo.infra import InfraError
    from flota.demo.run import print_summary, problems, run_demo

    try:
        summary = run_demo(vehicles=vehicles, duration=duration, force_amqtt=amqtt, keep=keep)
    except KeyboardInterrupt:
        typer.echo("[flota demo] interrupted; everything stopped.", err=True)
        raise typer.Exit(130) from None
    except InfraError as err:
        typer.echo(f"[flota demo] failed: {err} (run with --keep to keep the logs)", err=True)
        raise typer.Exit(1) from err
    print_summary(summary)
    found = problems(summary)
    if found:
        typer.echo(f"[flota demo] failed: {'; '.join(found)}", err=True)
        raise typer.Exit(1)
