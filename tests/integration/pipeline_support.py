"""The cloud's ingest path (bridge + store) for tests, set up once here instead of in each test.

Import it like ``stack_support`` (tests in tests/integration get their folder on sys.path;
tests elsewhere insert it, as tests/faults/ingest_fault_support.py does). Everything is private
to one test module: a Kafka topic prefix, share group, consumer group and cloud id of its own,
so pipelines of other tests on the shared stack never consume its messages, and the stored-acks
of other clouds on the shared broker are ignored by :class:`AckDevice` exactly as the agent
ignores them.

- :func:`ingest_database`: a migrated scratch database, optionally with devices registered.
- :class:`Pipeline`: a :class:`~cloud.ingest.bridge.Bridge` and a
  :class:`~cloud.ingest.store.Store` running in threads (``with Pipeline(...) as p:``).
- :func:`process_env`: the same configuration as ``FLOTA_*`` variables, for tests that run
  ``flota bridge run`` / ``flota ingest store`` as processes (fault tests).
- :class:`AckDevice`: a device with its own credentials that publishes and collects the
  end-to-end acknowledgements of its cloud, per stream.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import SecretStr
from stack_support import MqttBroker, MqttDevice

from cloud.db.connection import connect
from cloud.db.migrate import migrate
from cloud.db.scratch import scratch_database
from cloud.ingest.bridge import Bridge
from cloud.ingest.checks import check_payload
from cloud.ingest.registry import DeviceRegistry, load_from_database
from cloud.ingest.store import Store
from cloud.settings import BridgeSettings, StoreSettings
from flota_wire import topics as wt
from flota_wire.acks import accepts_stored_ack, decode_stored_ack
from flota_wire.schema import Stream

__all__ = [
    "AckDevice",
    "Pipeline",
    "ingest_database",
    "process_env",
    "query",
    "wait_for",
]


@contextlib.contextmanager
def ingest_database(
    database_url: str, prefix: str, register: Iterable[tuple[str, str]] = ()
) -> Iterator[str]:
    """A migrated scratch database (dropped afterwards) with ``register``'s (tenant, vehicle)
    pairs in ``devices``; yields its URL."""
    with scratch_database(database_url, prefix=prefix) as url:
        with connect(url, autocommit=True) as conn:
            migrate(conn)
            for tenant, vehicle in register:
                conn.execute(
                    "INSERT INTO tenants (tenant_id) VALUES (%s) ON CONFLICT DO NOTHING", (tenant,)
                )
                conn.execute(
                    "INSERT INTO devices (tenant_id, vehicle_id) VALUES (%s, %s)", (tenant, vehicle)
                )
        yield url


class Pipeline:
    """Bridge and store in threads, with names of their own (``tag``) on the shared stack."""

    def __init__(
        self,
        broker: MqttBroker,
        kafka_bootstrap: str,
        database_url: str,
        *,
        registry: bool = False,
        tag: str | None = None,
        **store: Any,
    ) -> None:
        self.tag = tag or f"t{uuid.uuid4().hex[:8]}"
        self.cloud_id = f"cloud-{self.tag}"
        self.bridge_settings = BridgeSettings(
            mqtt_host=broker.host,
            mqtt_port=broker.port,
            mqtt_username=broker.bridge.username,
            mqtt_password=SecretStr(broker.bridge.password),
            kafka_bootstrap=kafka_bootstrap,
            kafka_topic_prefix=self.tag,
            share_group=f"g{self.tag}",
        )
        self.store_settings = StoreSettings(
            kafka_bootstrap=kafka_bootstrap,
            kafka_topic_prefix=self.tag,
            database_url=SecretStr(database_url),
            consumer_group=f"store-{self.tag}",
            cloud_id=self.cloud_id,
            **{"batch_max_wait_ms": 50, **store},
        )
        is_registered = None
        if registry:
            is_registered = DeviceRegistry(lambda: load_from_database(database_url)).is_registered
        self.bridge = Bridge(self.bridge_settings, check=check_payload, is_registered=is_registered)
        self.store = Store(self.store_settings)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self.bridge.run, args=(self._stop,), daemon=True),
            threading.Thread(target=self.store.run, args=(self._stop,), daemon=True),
        ]

    def __enter__(self) -> Pipeline:
        for t in self._threads:
            t.start()
        # A message published before the bridge's shared subscription exists reaches nobody.
        if not self.bridge.subscribed.wait(30):
            self.__exit__()
            raise AssertionError("the bridge never got its MQTT subscription confirmed")
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=20)


def process_env(stack: dict[str, str], database_url: str, tag: str) -> dict[str, str]:
    """``FLOTA_*`` variables for ``flota bridge run`` and ``flota ingest store`` processes with
    names of their own (``tag``); the cloud id is ``cloud-{tag}``."""
    return {
        **stack,
        "FLOTA_DATABASE_URL": database_url,
        "FLOTA_REGISTRY_DATABASE_URL": database_url,
        "FLOTA_KAFKA_TOPIC_PREFIX": tag,
        "FLOTA_SHARE_GROUP": f"g{tag}",
        "FLOTA_CONSUMER_GROUP": f"store-{tag}",
        "FLOTA_MQTT_CLIENT_ID": f"bridge-{tag}",  # a persistent session across restarts
        "FLOTA_CLOUD_ID": f"cloud-{tag}",
        "FLOTA_LOG_LEVEL": "WARNING",
    }


class AckDevice:
    """A device publishing with its own credentials; it keeps the seqs its cloud's stored-acks
    name, per stream (acks of other clouds are counted in ``foreign`` and otherwise ignored)."""

    def __init__(
        self,
        host: str,
        port: int,
        dev: MqttDevice | dict[str, str],
        cloud: str | None,
    ) -> None:
        if isinstance(dev, dict):
            dev = MqttDevice(dev["username"], dev["password"], dev["tenant"], dev["vehicle"])
        self.dev = dev
        self.cloud = cloud
        self.acked: dict[Stream, set[int]] = defaultdict(set)
        self.foreign = 0
        self.lock = threading.Lock()
        subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"dev-{uuid.uuid4().hex[:8]}"
        )
        self.client.username_pw_set(dev.username, dev.password)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.connect(host, port)
        self.client.loop_start()
        self.client.subscribe(wt.topic(dev.tenant, dev.vehicle, wt.Channel.STORED), qos=1)
        assert subscribed.wait(10), "SUBACK for the device's own down/stored"

    @classmethod
    def on(cls, broker: MqttBroker, dev: MqttDevice, cloud: str | None) -> AckDevice:
        return cls(broker.host, broker.port, dev, cloud)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        ack = decode_stored_ack(bytes(msg.payload))
        with self.lock:
            if not accepts_stored_ack(ack, self.cloud):
                self.foreign += 1
                return
            for first, last in ack.ranges:
                self.acked[ack.stream].update(range(first, last + 1))

    def publish(
        self, payload: bytes, channel: wt.Channel = wt.Channel.TELEMETRY, wait: bool = True
    ) -> None:
        info = self.client.publish(wt.topic(self.dev.tenant, self.dev.vehicle, channel), payload, 1)
        if wait:
            info.wait_for_publish(10)

    def missing(self, seqs: set[int], stream: Stream = Stream.TELEMETRY) -> set[int]:
        with self.lock:
            return seqs - self.acked[stream]

    def wait_acked(
        self, seqs: set[int], timeout: float, stream: Stream = Stream.TELEMETRY
    ) -> set[int]:
        """Wait until every seq of ``stream`` is acknowledged; return those that were not."""
        deadline = time.monotonic() + timeout
        while self.missing(seqs, stream) and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.missing(seqs, stream)

    def forget(self) -> None:
        with self.lock:
            self.acked.clear()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> AckDevice:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting for the pipeline")


def query(url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, args).fetchall()
