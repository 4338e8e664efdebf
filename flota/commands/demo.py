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
    """Start embedded PostgreSQL, Tansu (Kafka protocol), an MQTT broker, the bridge and the
    store, and drive a simulated fleet through them; Ctrl-C stops everything."""
    from flota.demo.run import print_summary, run_demo

    try:
        summary = run_demo(vehicles=vehicles, duration=duration, force_amqtt=amqtt, keep=keep)
    except KeyboardInterrupt:
        typer.echo("[flota demo] interrupted; everything stopped.", err=True)
        raise typer.Exit(130) from None
    print_summary(summary)
    if summary["lost"] or summary["duplicates"] or summary["fixes_sent"] == 0:
        raise typer.Exit(1)
