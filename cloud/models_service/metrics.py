"""Prometheus metrics of one service instance (its own registry, so tests can run several)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class ServiceMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "flota_models_requests",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "flota_models_request_seconds",
            "Request handling time by route",
            ["route"],
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
            registry=r,
        )
        self.rejected = Counter(
            "flota_models_rejected",
            "Requests refused as bad input, by reason",
            ["route", "reason"],
            registry=r,
        )
        self.predictions = Counter(
            "flota_models_predictions", "Legs or cells predicted, by model", ["model"], registry=r
        )
        self.reloads = Counter(
            "flota_models_reloads", "Model (re)loads by result", ["model", "result"], registry=r
        )
        self.info = Gauge(
            "flota_models_info",
            "1 for the version serving",
            ["model", "version", "sha256"],
            registry=r,
        )
