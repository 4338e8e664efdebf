"""Shared set-up for tests of the dispatcher against the real Kafka and TimescaleDB: settings
with a topic prefix and consumer group of the test's own, so tests never see each other."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import SecretStr

from cloud.optimizer.dispatch.topics import ensure_dispatch_topics
from cloud.settings import DispatchSettings


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
