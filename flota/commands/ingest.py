"""`flota ingest ...`: the cloud's ingest processes."""

from __future__ import annotations

import typer

from flota.commands.bridge import _stop_on_signals

app = typer.Typer(help="Cloud ingest processes (store, geo).", no_args_is_help=True)


@app.command("store")
def store(
    json_logs: bool = typer.Option(False, "--json-logs", help="Log one JSON object per line."),
) -> None:
    """Consume telemetry, vehicle events and sensor samples from Kafka into the database;
    commit offsets after the database, then acknowledge the stored seqs to each vehicle.

    Configured by FLOTA_* environment variables: FLOTA_KAFKA_*, FLOTA_DATABASE_URL,
    FLOTA_CONSUMER_GROUP, FLOTA_GROUP_INSTANCE_ID, FLOTA_BATCH_MAX_RECORDS, FLOTA_CLOUD_ID (named
    in every stored-ack, default flota), FLOTA_METRICS_PORT, the quarantine limits."""
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


@app.command("maintain")
def maintain(
    once: bool = typer.Option(False, "--once", help="One pass, then exit (cron, tests)."),
    json_logs: bool = typer.Option(False, "--json-logs", help="Log one JSON object per line."),
) -> None:
    """Retention (native policy or our own drop of whole chunks) and hourly/daily rollups.

    Configured by FLOTA_DATABASE_URL, FLOTA_RETENTION_FIXES_DAYS (90),
    FLOTA_RETENTION_QUARANTINE_DAYS (30), FLOTA_RETENTION_EVENTS_DAYS (365),
    FLOTA_ROLLUP_LOOKBACK_HOURS (48), FLOTA_MAINTAIN_INTERVAL_S (300), FLOTA_METRICS_PORT."""
    import json

    from cloud.db.connection import connect
    from cloud.ingest.logs import use_json_logs
    from cloud.ingest.maintain import maintain_once, run_loop
    from cloud.ingest.metrics import IngestMetrics
    from cloud.settings import MaintainSettings

    if json_logs:
        use_json_logs()
    settings = MaintainSettings()  # type: ignore[call-arg]  # fields come from the environment
    metrics = IngestMetrics("maintain")
    if once:
        with connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
            result = maintain_once(conn, settings, metrics=metrics)
        typer.echo(json.dumps(
            {"partitions_created": result.partitions_created, "dropped": result.dropped,
             "rollup_rows": result.rollup_rows, "failed": result.failed}
        ))  # fmt: skip
        if result.failed:
            raise typer.Exit(1)
        return
    metrics.serve(settings.metrics_port)
    run_loop(settings, _stop_on_signals(), metrics)
