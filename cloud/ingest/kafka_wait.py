"""Wait until a new consumer sees its topics' partitions before it first joins its group.

A group's leader assigns only the partitions in its own metadata. Right after the topics were
created (``ensure_topics``) a fresh client can miss one, and kafka-python then leaves those
partitions unassigned until its next metadata refresh (minutes). Polling the metadata first
closes that window.
"""

from __future__ import annotations

import logging
import time

from kafka import KafkaConsumer

log = logging.getLogger(__name__)


def wait_for_partitions(consumer: KafkaConsumer, topics: list[str], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    missing = list(topics)
    while missing:
        missing = [t for t in missing if not consumer.partitions_for_topic(t)]
        if not missing:
            return
        if time.monotonic() > deadline:
            log.warning("no partition metadata yet for %s; starting anyway", ", ".join(missing))
            return
        time.sleep(0.2)
