"""`flota bridge`: the MQTT <-> Kafka bridge."""

from __future__ import annotations

import signal
import threading

import typer

app = typer.Typer(help="Run the MQTT <-> Kafka bridge.", no_args_is_help=True)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


@app.command("run")
def run() -> None:
    """Bridge every vehicle's uplink to Kafka and Kafka's downlink to the vehicles.

    Configured by FLOTA_* environment variables (see the README)."""
    from cloud.ingest.bridge import Bridge
    from cloud.ingest.checks import check_payload
    from cloud.settings import BridgeSettings

    settings = BridgeSettings()  # type: ignore[call-arg]  # fields come from the environment
    Bridge(settings, check=check_payload).run(_stop_on_signals())
