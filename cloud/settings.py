"""Validated settings for the cloud processes, read from ``FLOTA_*`` environment variables.

One settings class per process (bridge, store, geo, optimizer service, API), built from shared
field groups. Every class refuses default or empty secrets at start, so a process pointed at
production can never run with a password copied from an example.
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# Secrets that appear in examples and images; a process refuses to start with any of them.
DEFAULT_SECRETS = frozenset(
    {"", "changeme", "change-me", "password", "secret", "admin", "postgres", "flota", "test"}
)


class SettingsError(ValueError):
    """A setting that a process must not start with."""


def _strong_secret(value: SecretStr) -> SecretStr:
    if value.get_secret_value().strip().lower() in DEFAULT_SECRETS:
        raise SettingsError("refusing a default or empty secret; set a real one")
    return value


def _database_url(value: SecretStr) -> SecretStr:
    url = value.get_secret_value()
    parts = urlsplit(url)
    if parts.scheme not in {"postgresql", "postgres"}:
        raise SettingsError("the database URL must start with postgresql://")
    local_socket = not parts.hostname or parts.hostname.startswith("/") or "host=/" in url
    if parts.password is None:
        if not local_socket:
            raise SettingsError("a database URL over TCP needs a password")
    elif parts.password.lower() in DEFAULT_SECRETS:
        raise SettingsError("refusing a default database password; set a real one")
    return value


Secret = Annotated[SecretStr, AfterValidator(_strong_secret)]
DatabaseUrl = Annotated[SecretStr, AfterValidator(_database_url)]

_CONFIG = SettingsConfigDict(env_prefix="FLOTA_", extra="ignore", frozen=True)


class MqttSettings(BaseSettings):
    """How a cloud process reaches the MQTT broker."""

    model_config = _CONFIG

    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = Field(default=1883, ge=1, le=65535)
    mqtt_username: str = "flota-bridge"
    mqtt_password: Secret
    mqtt_tls_ca: str | None = None
    mqtt_tls_cert: str | None = None
    mqtt_tls_key: str | None = None
    mqtt_client_id: str | None = None  # stable id -> persistent session across restarts


class KafkaSettings(BaseSettings):
    """How a cloud process reaches Kafka. ``kafka_api_version`` pins the protocol version of
    consumers for brokers whose newer group protocol does not serve kafka-python (Tansu needs
    ``2.0.0`` for consumer groups); producers are never pinned."""

    model_config = _CONFIG

    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_api_version: str | None = None
    kafka_topic_prefix: str = "flota"
    kafka_session_timeout_ms: int = Field(default=10_000, ge=6_000, le=300_000)
    """Consumer-group session timeout: a dead consumer's partitions move after this. A group
    join on Tansu takes about half of it, so a short one starts a process sooner."""

    def api_version_tuple(self) -> tuple[int, ...] | None:
        if not self.kafka_api_version:
            return None
        return tuple(int(p) for p in self.kafka_api_version.split("."))


class DatabaseSettings(BaseSettings):
    """How a cloud process reaches PostgreSQL / TimescaleDB."""

    model_config = _CONFIG

    database_url: DatabaseUrl


class BridgeSettings(MqttSettings, KafkaSettings):
    """`flota bridge`: MQTT <-> Kafka."""

    share_group: Annotated[str | None, AfterValidator(lambda v: v or None)] = "bridge"
    """``$share`` group of the subscription; empty: a plain one (brokers without $share)."""
    metrics_port: int | None = None
    """Serve Prometheus metrics on 127.0.0.1:PORT; unset: not served."""
    registry_database_url: DatabaseUrl | None = None
    """Device registry: the ``devices`` table of this database (cached, refreshed)."""
    registry_file: str | None = None
    """Device registry from a JSON file instead (``{"devices": [{"tenant", "vehicle"}]}``)."""
    registry_refresh_s: float = Field(default=30.0, gt=0)


def _cloud_id(value: str | None) -> str | None:
    if not value:
        return None
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", value):
        raise SettingsError("the cloud id must match [A-Za-z0-9_-]{1,64}")
    return value


class StoreSettings(KafkaSettings, DatabaseSettings):
    """`flota ingest store`: Kafka -> database."""

    cloud_id: Annotated[str | None, AfterValidator(_cloud_id)] = "flota"
    """Named in every stored ack (``FLOTA_CLOUD_ID``): devices configured with a cloud id act
    only on acks of their own cloud, so another cloud sharing the broker cannot make them
    forget rows. Give each deployment its own; empty: acks without it (devices whose wire
    decoder predates the field)."""
    consumer_group: str = "flota-store"
    group_instance_id: str | None = None
    """Kafka static membership: a store restarted with the same id takes its partitions back at
    once instead of waiting out the session timeout (one distinct id per store process)."""
    batch_max_records: int = Field(default=5000, ge=1)
    """Kafka records per batch (one transaction); a record holds one MQTT message's fixes."""
    batch_max_wait_ms: int = Field(default=200, ge=1)
    metrics_port: int | None = None
    """Serve Prometheus metrics on 127.0.0.1:PORT; unset: not served."""
    future_tolerance_s: float = Field(default=120.0, gt=0)
    max_age_s: float = Field(default=30 * 86400.0, gt=0)
    max_speed_mps: float = Field(default=90.0, gt=0)


class MaintainSettings(DatabaseSettings):
    """`flota ingest maintain`: retention and rollups on a schedule."""

    retention_fixes_days: float = Field(default=90.0, gt=0)
    """Raw fixes (and sensor samples) older than this are dropped, whole chunks at a time."""
    retention_quarantine_days: float = Field(default=30.0, gt=0)
    retention_events_days: float = Field(default=365.0, gt=0)
    rollup_lookback_hours: float = Field(default=48.0, gt=0)
    """Each run recomputes the hourly rollups of this many past hours (late data lands)."""
    maintain_interval_s: float = Field(default=300.0, gt=0)
    metrics_port: int | None = None


class DispatchSettings(KafkaSettings, DatabaseSettings):
    """`flota optimize serve`: live dispatch (orders and vehicle events in, route plans out)."""

    dispatch_group: str = "flota-dispatch"
    """Kafka consumer group of the orders, domain-events and command-acks topics."""
    dispatch_time_limit_s: float = Field(default=5.0, gt=0)
    """Solver budget per re-optimisation of one depot."""
    dispatch_min_interval_s: float = Field(default=10.0, ge=0)
    """Debounce: at most one re-optimisation per depot this often."""
    dispatch_settle_s: float = Field(default=1.0, ge=0)
    """Wait this long after the first trigger, so a burst of orders makes one solve."""
    dispatch_refresh_s: float = Field(default=300.0, gt=0)
    """Re-optimise a depot with open orders at least this often (fresh positions)."""
    dispatch_late_after_s: float = Field(default=300.0, gt=0)
    """A vehicle this far past the ETA of its next stop counts as running late."""
    dispatch_position_check_s: float = Field(default=30.0, gt=0)
    """How often the vehicles' latest positions are compared with their plans (lateness)."""
    dispatch_eta_tolerance_s: float = Field(default=120.0, ge=0)
    """Same stops, ETAs within this: the vehicle's plan has not changed (no new version)."""
    dispatch_position_max_age_s: float = Field(default=6 * 3600.0, gt=0)
    """Older positions are ignored: the vehicle starts at its depot."""
    dispatch_circuity: float = Field(default=1.3, ge=1.0)
    dispatch_speed_mps: float = Field(default=30 / 3.6, gt=0)
    metrics_port: int | None = None
    """Serve Prometheus metrics on 127.0.0.1:PORT; unset: not served."""
