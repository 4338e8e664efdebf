"""Prometheus metrics of the ingest processes, one registry per process object.

Each process (bridge, store, maintenance) builds its own :class:`IngestMetrics` and may serve it
over HTTP on 127.0.0.1 (``metrics_port``). Names carry the ``flota_`` prefix; every quarantine
reason is a label value, so counts per reason are exact and visible.
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

_SIZE_BUCKETS = (1, 10, 50, 100, 500, 1_000, 5_000, 10_000, 50_000, 100_000)
_LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class IngestMetrics:
    """The metrics of one ingest process; ``process`` is a constant label (bridge, store...)."""

    def __init__(self, process: str) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.process = process
        self.messages_in = Counter(
            "flota_ingest_messages_in", "Messages or records received", ["process", "channel"],
            registry=r,
        )  # fmt: skip
        self.messages_out = Counter(
            "flota_ingest_messages_out", "Messages or records passed on", ["process", "channel"],
            registry=r,
        )  # fmt: skip
        self.quarantined = Counter(
            "flota_ingest_quarantined", "Messages or fixes quarantined, per reason",
            ["process", "reason"], registry=r,
        )  # fmt: skip
        self.fixes_in = Counter("flota_ingest_fixes_in", "Fixes decoded", ["process"], registry=r)
        self.fixes_stored = Counter(
            "flota_ingest_fixes_stored", "Fixes committed to the database", ["process"], registry=r
        )
        self.errors = Counter(
            "flota_ingest_errors", "Failures (Kafka produce, database write)", ["process", "kind"],
            registry=r,
        )  # fmt: skip
        self.batch_records = Histogram(
            "flota_ingest_batch_records", "Records per store batch", ["process"],
            buckets=_SIZE_BUCKETS, registry=r,
        )  # fmt: skip
        self.batch_fixes = Histogram(
            "flota_ingest_batch_fixes", "Fixes per store batch", ["process"],
            buckets=_SIZE_BUCKETS, registry=r,
        )  # fmt: skip
        self.write_seconds = Histogram(
            "flota_ingest_write_seconds", "Database transaction time per batch", ["process"],
            buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.produce_seconds = Histogram(
            "flota_ingest_produce_seconds", "MQTT receipt to Kafka acknowledgement", ["process"],
            buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.consumer_lag = Gauge(
            "flota_ingest_consumer_lag", "Records behind the partition's high watermark",
            ["process", "topic", "partition"], registry=r,
        )  # fmt: skip
        self.registered_devices = Gauge(
            "flota_ingest_registered_devices", "Devices in the bridge's registry cache",
            ["process"], registry=r,
        )  # fmt: skip

    def quarantine(self, reason: str, n: int = 1) -> None:
        if n:
            self.quarantined.labels(self.process, reason).inc(n)

    def serve(self, port: int | None, host: str = "127.0.0.1") -> None:
        """Serve /metrics on ``host:port`` (loopback by default); None or 0: not served."""
        if port:
            start_http_server(port, addr=host, registry=self.registry)
            log.info("metrics on http://%s:%d/metrics", host, port)
