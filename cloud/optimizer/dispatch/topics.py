"""The dispatcher's own Kafka topic (orders) beside the ingest family (cloud.ingest)."""

from __future__ import annotations

import logging

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from cloud.ingest.clients import kafka_common
from cloud.ingest.kafka_admin import ensure_topics
from cloud.settings import KafkaSettings

log = logging.getLogger(__name__)

ORDERS_PARTITIONS = 2


def orders_topic(prefix: str) -> str:
    """Orders, cancellations, depots and vehicles (JSON, keyed ``tenant/depot``)."""
    return f"{prefix}.orders.v1"


def depot_key(tenant: str, depot: str) -> bytes:
    return f"{tenant}/{depot}".encode()


def ensure_dispatch_topics(settings: KafkaSettings) -> None:
    """The ingest family and the orders topic, created if missing (idempotent)."""
    ensure_topics(settings)
    name = orders_topic(settings.kafka_topic_prefix)
    admin = KafkaAdminClient(client_id="flota-admin", **kafka_common(settings, pin_version=True))
    try:
        if name in set(admin.list_topics()):
            return
        try:
            admin.create_topics([NewTopic(name, ORDERS_PARTITIONS, replication_factor=1)])
        except TopicAlreadyExistsError:
            pass
        except KafkaError as err:
            raise RuntimeError(f"creating Kafka topic {name} failed: {err}") from err
        log.info("created Kafka topic %s", name)
    finally:
        admin.close()
