"""Shared set-up for tests of the dispatcher against the real Kafka and TimescaleDB: settings
with a topic prefix and consumer group of the test's own, so tests never see each other."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition
from pydantic import SecretStr

from cloud.ingest.kafka_topics import KafkaTopics
from cloud.optimizer.dispatch.topics import ensure_dispatch_topics
from cloud.settings import DispatchSettings
from flota_wire import Channel, Command, decode, topic


def dispatch_settings(
    database_url: str, kafka_bootstrap: str, **overrides: Any
) -> DispatchSettings:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    fields: dict[str, Any] = {
        "kafka_bootstrap": kafka_bootstrap,
        "kafka_topic_prefix": prefix,
        "database_url": SecretStr(database_url),
        "dispatch_group": f"dispatch-{prefix}",
        **overrides,
    }
    return DispatchSettings(**fields)


def fast_dispatch_settings(database_url: str, kafka_bootstrap: str) -> DispatchSettings:
    """Short solves and triggers, topics created: a service test runs in seconds."""
    s = dispatch_settings(
        database_url,
        kafka_bootstrap,
        dispatch_time_limit_s=1.0,
        dispatch_min_interval_s=0.5,
        dispatch_settle_s=0.5,
    )
    ensure_dispatch_topics(s)
    return s


def first_plan(settings: DispatchSettings, vehicle: str, timeout: float = 60.0) -> Command:
    """The first route plan for ``vehicle`` on the commands topic (as the bridge reads it)."""
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap.split(","))
    name = KafkaTopics(settings.kafka_topic_prefix).commands
    try:
        parts = consumer.partitions_for_topic(name) or set()
        consumer.assign([TopicPartition(name, p) for p in parts])
        consumer.seek_to_beginning()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                for rec in records:
                    tenant, _, veh = rec.key.decode().partition("/")
                    msg = decode(topic(tenant, veh, Channel.COMMANDS), rec.value).message
                    if veh == vehicle and isinstance(msg, Command):
                        return msg
    finally:
        consumer.close()
    pytest.fail(f"no route plan for {vehicle}")
