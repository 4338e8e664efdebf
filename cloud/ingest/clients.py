"""Factories for the Kafka and MQTT clients of the cloud processes, configured once here."""

from __future__ import annotations

import ssl
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer
from paho.mqtt.enums import CallbackAPIVersion

from cloud.ingest.kafka_wait import wait_for_partitions
from cloud.settings import KafkaSettings, MqttSettings


def kafka_common(settings: KafkaSettings, pin_version: bool) -> dict[str, Any]:
    common: dict[str, Any] = {"bootstrap_servers": settings.kafka_bootstrap.split(",")}
    api_version = settings.api_version_tuple()
    if pin_version and api_version is not None:
        common["api_version"] = api_version
    return common


def make_producer(settings: KafkaSettings, client_id: str) -> KafkaProducer:
    """An idempotent producer: acks from all in-sync replicas, no duplicates on retry, order
    kept per partition."""
    return KafkaProducer(
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        batch_size=512 * 1024,
        max_request_size=4 * 1024 * 1024,
        retries=2_147_483_647,
        # Never pinned: with a pinned 2.0 protocol Tansu refuses InitProducerId, and the
        # idempotent producer is what keeps retries from writing duplicates.
        **kafka_common(settings, pin_version=False),
    )


def make_consumer(
    settings: KafkaSettings,
    group: str,
    topics: list[str],
    client_id: str,
    listener: ConsumerRebalanceListener | None = None,
    group_instance_id: str | None = None,
) -> KafkaConsumer:
    """A group consumer that commits offsets only when told to (after the database commit)."""
    consumer = KafkaConsumer(
        group_id=group,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=5000,
        fetch_max_bytes=32 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        # A group join completes after about half the session timeout on Tansu; the 10-s
        # default keeps start-up short while tolerating a slow database commit between polls.
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=max(1_000, settings.kafka_session_timeout_ms // 3),
        max_poll_interval_ms=120_000,
        group_instance_id=group_instance_id,
        **kafka_common(settings, pin_version=True),
    )
    if listener is None:
        consumer.subscribe(topics)
    else:
        consumer.subscribe(topics, listener=listener)
    wait_for_partitions(consumer, topics)
    return consumer


def make_mqtt_client(settings: MqttSettings, client_id: str | None, prefix: str) -> mqtt.Client:
    """An MQTT 3.1.1 client with manual acknowledgements, so a message is acknowledged to the
    broker only once the work it asked for is durable. With a stable ``client_id`` the session
    is persistent: after a crash the broker redelivers what was never acknowledged."""
    persistent = client_id is not None
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id or f"{prefix}-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv311,
        clean_session=not persistent,
        manual_ack=True,
    )
    client.username_pw_set(settings.mqtt_username, settings.mqtt_password.get_secret_value())
    if settings.mqtt_tls_ca:
        client.tls_set(
            ca_certs=settings.mqtt_tls_ca,
            certfile=settings.mqtt_tls_cert,
            keyfile=settings.mqtt_tls_key,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    return client
