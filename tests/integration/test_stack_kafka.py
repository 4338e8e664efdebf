"""Apache Kafka of the local stack, for real: a consumer group consumes exactly what a producer
wrote, commits, and a second member of the group then finds nothing new."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

pytestmark = pytest.mark.integration

RECORDS = 200
PARTITIONS = 3
WAIT_S = 30.0


@pytest.fixture
def admin(kafka_bootstrap: str) -> Iterator[KafkaAdminClient]:
    client = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="flota-test-admin")
    yield client
    client.close()


@pytest.fixture
def fresh_topic(admin: KafkaAdminClient) -> Iterator[str]:
    name = f"flota-test-{uuid.uuid4().hex[:12]}"
    admin.create_topics([NewTopic(name, num_partitions=PARTITIONS, replication_factor=1)])
    yield name
    admin.delete_topics([name])


def _consumer(bootstrap: str, group: str, topic: str) -> KafkaConsumer:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        client_id=f"{group}-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    consumer.subscribe([topic])
    return consumer


def _poll_values(consumer: KafkaConsumer, want: int) -> list[bytes]:
    """Poll until ``want`` records arrived (or the bounded wait ends)."""
    values: list[bytes] = []
    deadline = time.monotonic() + WAIT_S
    while len(values) < want and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            values.extend(r.value for r in records)
    return values


def _committed_offsets(admin: KafkaAdminClient, group: str) -> dict[TopicPartition, Any]:
    """The group's committed offsets (kafka-python 3 renamed the call; 2.x is still allowed)."""
    if hasattr(admin, "list_group_offsets"):
        return dict(admin.list_group_offsets(group)[group])
    return dict(admin.list_consumer_group_offsets(group))


def _wait_for_assignment(consumer: KafkaConsumer, topic: str) -> set[TopicPartition]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        records = consumer.poll(timeout_ms=500)
        assert not records, f"the group re-read committed records: {records}"
        assigned = set(consumer.assignment())
        if len(assigned) == PARTITIONS:
            return assigned
    pytest.fail(f"consumer never got the {PARTITIONS} partitions of {topic}")


def test_consumer_group_consumes_exactly_what_was_produced(
    kafka_bootstrap: str, admin: KafkaAdminClient, fresh_topic: str
) -> None:
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True)
    sent = [f"record-{i}".encode() for i in range(RECORDS)]
    try:
        futures = [
            producer.send(fresh_topic, key=f"vehicle-{i % 7}".encode(), value=v)
            for i, v in enumerate(sent)
        ]
        producer.flush(timeout=WAIT_S)
        metadata = [f.get(timeout=WAIT_S) for f in futures]
    finally:
        producer.close()
    assert {m.partition for m in metadata} == set(range(PARTITIONS)), "keys should spread"

    group = f"flota-test-group-{uuid.uuid4().hex[:8]}"
    first = _consumer(kafka_bootstrap, group, fresh_topic)
    try:
        received = _poll_values(first, RECORDS)
        # Nothing beyond the N records may follow: one more poll must come back empty.
        received += [r.value for rs in first.poll(timeout_ms=1000).values() for r in rs]
        assert sorted(received) == sorted(sent)
        first.commit()
    finally:
        first.close()

    committed = _committed_offsets(admin, group)
    ours = {tp: meta.offset for tp, meta in committed.items() if tp.topic == fresh_topic}
    assert len(ours) == PARTITIONS
    assert sum(ours.values()) == RECORDS
    per_partition: dict[int, int] = {}
    for m in metadata:
        per_partition[m.partition] = per_partition.get(m.partition, 0) + 1
    assert {tp.partition: off for tp, off in ours.items()} == per_partition

    second = _consumer(kafka_bootstrap, group, fresh_topic)
    try:
        assigned = _wait_for_assignment(second, fresh_topic)
        assert {tp: second.position(tp) for tp in assigned} == ours
        assert not any(second.poll(timeout_ms=1000).values())
    finally:
        second.close()
