"""The dispatcher's own Kafka topic (orders) beside the ingest family (cloud.ingest)."""

from __future__ import annotations

from cloud.ingest.kafka_admin import ensure_topics
from cloud.settings import KafkaSettings

ORDERS_PARTITIONS = 2


def orders_topic(prefix: str) -> str:
    """Orders, cancellations, depots and vehicles (JSON, keyed ``tenant/depot``)."""
    return f"{prefix}.orders.v1"


def depot_key(tenant: str, depot: str) -> bytes:
    return f"{tenant}/{depot}".encode()


def ensure_dispatch_topics(settings: KafkaSettings) -> None:
    """The ingest family and the orders topic, created if missing and served (idempotent)."""
    ensure_topics(settings, {orders_topic(settings.kafka_topic_prefix): ORDERS_PARTITIONS})
