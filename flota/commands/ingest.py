"""`flota ingest ...`: the cloud's ingest processes."""

from __future__ import annotations

import typer

from flota.commands._common import not_built
from flota.commands.bridge import _stop_on_signals

app = typer.Typer(help="Cloud ingest processes (store, geo).", no_args_is_help=True)


@app.command("store")
def store() -> None:
    """Consume telemetry from Kafka into the database; commit offsets after the database."""
    from cloud.ingest.store import Store
    from cloud.settings import StoreSettings

    settings = StoreSettings()  # type: ignore[call-arg]  # fields come from the environment
    Store(settings).run(_stop_on_signals())


@app.command("geo")
def geo() -> None:
    """Trips, stops, odometer, geofences (not built yet)."""
    not_built("ingest geo", 4)
