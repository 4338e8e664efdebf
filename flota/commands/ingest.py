"""`flota ingest ...`: the cloud's ingest processes."""

from __future__ import annotations

import typer

from flota.commands.bridge import _stop_on_signals

app = typer.Typer(help="Cloud ingest processes (store, geo).", no_args_is_help=True)


@app.command("store")
def store(
    json_logs: bool = typer.Option(False, "--json-logs", help="Log one JSON object per line."),
) -> None:
    """Consume telemetry from Kafka into the database; commit offsets after the database.

    Configured by FLOTA_* environment variables: FLOTA_KAFKA_*, FLOTA_DATABASE_URL,
    FLOTA_CONSUMER_GROUP, FLOTA_BATCH_MAX_RECORDS, FLOTA_METRICS_PORT, the quarantine limits."""
    from cloud.ingest.logs import use_json_logs
    from cloud.ingest.metrics import IngestMetrics
    from cloud.ingest.store import Store
    from cloud.settings import StoreSettings

    if json_logs:
        use_json_logs()
    settings = StoreSettings()  # type: ignore[call-arg]  # fields come from the environment
    metrics = IngestMetrics("store")
    metrics.serve(settings.metrics_port)
    Store(settings, metrics=metrics).run(_stop_on_signals())


@app.command("geo")
def geo(
    sink: bool = typer.Option(True, help="Also run the sink: domain events -> events table."),
    processor: bool = typer.Option(True, help="Run the processor: telemetry -> domain events."),
) -> None:
    """Trips, stops, odometer, speeding, idling, geofences: telemetry and vehicle events in,
    domain events out on Kafka and into the events table (see docs/geo.md)."""
    import threading

    from cloud.ingest.geo.config import GeoSettings
    from cloud.ingest.geo.processor import GeoProcessor
    from cloud.ingest.geo.sink import EventSink
    from cloud.ingest.metrics import IngestMetrics

    settings = GeoSettings()  # type: ignore[call-arg]  # fields come from the environment
    stop = _stop_on_signals()
    metrics = IngestMetrics("geo")
    metrics.serve(settings.geo_metrics_port)
    parts: list[GeoProcessor | EventSink] = []
    if processor:
        parts.append(GeoProcessor(settings, metrics=metrics))
    if sink:
        parts.append(EventSink(settings, metrics=metrics))
    threads = [threading.Thread(target=p.run, args=(stop,), name=type(p).__name__) for p in parts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
