"""`flota bridge`: the MQTT <-> Kafka bridge."""

from __future__ import annotations

import signal
import threading

import typer

app = typer.Typer(help="Run the MQTT <-> Kafka bridge.", no_args_is_help=True)

JSON_LOGS = typer.Option(False, "--json-logs", help="Log one JSON object per line.")


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


@app.command("run")
def run(json_logs: bool = JSON_LOGS) -> None:
    """Bridge every vehicle's uplink to Kafka and Kafka's downlink to the vehicles.

    Configured by FLOTA_* environment variables: FLOTA_MQTT_*, FLOTA_KAFKA_*, the device
    registry (FLOTA_REGISTRY_DATABASE_URL or FLOTA_REGISTRY_FILE; neither: every device the
    broker lets in is accepted), FLOTA_SHARE_GROUP, FLOTA_METRICS_PORT."""
    import logging
    from pathlib import Path

    from cloud.ingest.bridge import Bridge
    from cloud.ingest.checks import check_payload
    from cloud.ingest.logs import use_json_logs
    from cloud.ingest.metrics import IngestMetrics
    from cloud.ingest.registry import DeviceRegistry, load_from_database, load_from_file
    from cloud.settings import BridgeSettings

    if json_logs:
        use_json_logs()
    settings = BridgeSettings()  # type: ignore[call-arg]  # fields come from the environment
    registry: DeviceRegistry | None = None
    if settings.registry_database_url is not None:
        url = settings.registry_database_url.get_secret_value()
        registry = DeviceRegistry(lambda: load_from_database(url), settings.registry_refresh_s)
    elif settings.registry_file:
        path = Path(settings.registry_file)
        registry = DeviceRegistry(lambda: load_from_file(path), settings.registry_refresh_s)
    else:
        logging.getLogger(__name__).warning("no device registry configured: no registry check")
    metrics = IngestMetrics("bridge")
    metrics.serve(settings.metrics_port)
    if registry is not None:
        registry.start()
        metrics.registered_devices.labels("bridge").set_function(lambda: len(registry))
    bridge = Bridge(
        settings,
        check=check_payload,
        is_registered=registry.is_registered if registry else None,
        metrics=metrics,
    )
    bridge.run(_stop_on_signals())
