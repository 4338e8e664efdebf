"""Create the cloud's Kafka topics up front, with deliberate partition counts, so no consumer
waits for a metadata refresh to see a topic a producer auto-created later."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from cloud.ingest.clients import kafka_common
from cloud.ingest.kafka_topics import KafkaTopics
from cloud.settings import KafkaSettings

log = logging.getLogger(__name__)

# Vehicle-keyed topics get many partitions (the unit of parallelism of the store); the control
# topics few.
VEHICLE_PARTITIONS = 8
CONTROL_PARTITIONS = 2


def ensure_topics(settings: KafkaSettings, extra: Mapping[str, int] | None = None) -> None:
    """Create every topic of the family (and ``extra``: name -> partitions) that does not exist
    yet, and return once all of them are served (idempotent)."""
    topics = KafkaTopics(settings.kafka_topic_prefix)
    wanted = {
        topics.telemetry: VEHICLE_PARTITIONS,
        topics.sensors: VEHICLE_PARTITIONS,
        topics.events: VEHICLE_PARTITIONS,
        topics.quarantine: CONTROL_PARTITIONS,
        topics.stored: VEHICLE_PARTITIONS,
        topics.commands: CONTROL_PARTITIONS,
        topics.command_acks: CONTROL_PARTITIONS,
        topics.domain_events: VEHICLE_PARTITIONS,
        **(extra or {}),
    }
    admin = KafkaAdminClient(client_id="flota-admin", **kafka_common(settings, pin_version=True))
    try:
        existing = set(admin.list_topics())
        missing = [
            NewTopic(name, num_partitions=n, replication_factor=1)
            for name, n in wanted.items()
            if name not in existing
        ]
        if missing:
            try:
                admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another process created them first
            except KafkaError as err:
                raise RuntimeError(f"creating Kafka topics failed: {err}") from err
            log.info("created Kafka topics: %s", ", ".join(t.name for t in missing))
        _wait_until_served(admin, list(wanted))
    finally:
        admin.close()


def _wait_until_served(admin: KafkaAdminClient, names: list[str], timeout_s: float = 30.0) -> None:
    """Return once every topic has a leader on every partition. A topic another process has
    only just created may not have one yet; a consumer subscribing then sees no partitions and
    waits for its next metadata refresh (5 minutes) before it reads the topic at all."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            described = admin.describe_topics(names)
        except KafkaError as err:
            described, reason = [], str(err)
        else:
            reason = ""
        ready = {
            d.get("name", d.get("topic"))
            for d in described
            if not d.get("error_code")
            and d.get("partitions")
            and all(p.get("leader_id", p.get("leader", -1)) >= 0 for p in d["partitions"])
        }
        waiting = sorted(set(names) - ready)
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"Kafka topics without leaders after {timeout_s:.0f} s: "
                               f"{', '.join(waiting)} {reason}")  # fmt: skip
        time.sleep(0.2)
