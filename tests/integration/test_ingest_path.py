"""A fix's whole journey against the real Mosquitto, Kafka and TimescaleDB: a registered device
publishes encoded batches, the bridge forwards them to Kafka, the store writes them, and the
device receives the end-to-end acknowledgement of exactly the seqs it sent."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import SecretStr
from stack_support import MqttBroker, MqttDevice

from cloud.db.connection import connect
from cloud.db.migrate import migrate
from cloud.db.scratch import scratch_database
from cloud.ingest.bridge import Bridge
from cloud.ingest.checks import check_payload
from cloud.ingest.store import Store
from cloud.settings import BridgeSettings, StoreSettings
from flota_wire import topics as wt
from flota_wire.acks import accepts_stored_ack, decode_stored_ack
from flota_wire.telemetry import encode_telemetry
from flota_wire.tracesim import simulate_city


@pytest.fixture(scope="module")
def ingest_db(database_url: str) -> Iterator[str]:
    with scratch_database(database_url, prefix="flota_ingest") as url:
        with connect(url, autocommit=True) as conn:
            migrate(conn)
        yield url


class Device:
    """A device that publishes with its own credentials and collects its stored-acks."""

    def __init__(self, broker: MqttBroker, dev: MqttDevice, cloud: str) -> None:
        self.dev = dev
        self.cloud = cloud  # acks of other clouds sharing the broker are ignored, as devices do
        self.acked: set[int] = set()
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}"
        )
        self.client.username_pw_set(dev.username, dev.password)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.client.subscribe(wt.topic(dev.tenant, dev.vehicle, wt.Channel.STORED), qos=1)
        assert self.subscribed.wait(10), "SUBACK for the device's own down/stored"

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        ack = decode_stored_ack(bytes(msg.payload))
        if not accepts_stored_ack(ack, self.cloud):
            return
        with self.lock:
            for first, last in ack.ranges:
                self.acked.update(range(first, last + 1))

    def publish(self, payload: bytes) -> None:
        topic = wt.topic(self.dev.tenant, self.dev.vehicle, wt.Channel.TELEMETRY)
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def wait_acked(self, seqs: set[int], timeout: float) -> set[int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if seqs <= self.acked:
                    break
            time.sleep(0.1)
        with self.lock:
            return seqs - self.acked

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(scope="module")
def pipeline(
    ingest_db: str, mqtt_broker: MqttBroker, kafka_bootstrap: str
) -> Iterator[tuple[Bridge, Store]]:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    bridge_settings = BridgeSettings(
        mqtt_host=mqtt_broker.host,
        mqtt_port=mqtt_broker.port,
        mqtt_username=mqtt_broker.bridge.username,
        mqtt_password=SecretStr(mqtt_broker.bridge.password),
        kafka_bootstrap=kafka_bootstrap,
        kafka_topic_prefix=prefix,
        share_group=f"g{prefix}",
    )
    store_settings = StoreSettings(
        kafka_bootstrap=kafka_bootstrap,
        kafka_topic_prefix=prefix,
        database_url=SecretStr(ingest_db),
        consumer_group=f"store-{prefix}",
        batch_max_wait_ms=50,
        cloud_id=CLOUD,
    )
    stop = threading.Event()
    bridge = Bridge(bridge_settings, check=check_payload)
    store = Store(store_settings)
    threads = [
        threading.Thread(target=bridge.run, args=(stop,), daemon=True),
        threading.Thread(target=store.run, args=(stop,), daemon=True),
    ]
    for t in threads:
        t.start()
    yield bridge, store
    stop.set()
    for t in threads:
        t.join(timeout=20)


# The stack's broker may carry other tests' traffic of the same devices: this module's fixes
# use a seq range of their own, and only those rows are looked at.
SEQ0 = 10**12 + random.randrange(10**12)
CLOUD = f"it-{uuid.uuid4().hex[:8]}"  # this module's cloud: only its acks count


def _rows(url: str, dev: MqttDevice) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT seq, lat, lon FROM fixes WHERE tenant_id = %s AND vehicle_id = %s "
            "AND seq >= %s ORDER BY seq",
            (dev.tenant, dev.vehicle, SEQ0),
        ).fetchall()


def test_fixes_travel_to_rows_and_back_as_acks(
    pipeline: tuple[Bridge, Store], ingest_db: str, mqtt_broker: MqttBroker
) -> None:
    bridge, store = pipeline
    dev = mqtt_broker.devices[0]
    device = Device(mqtt_broker, dev, CLOUD)
    try:
        now_us = int(time.time() * 1e6) - 120_000_000
        fixes = simulate_city(60, seed=7, start_us=now_us, first_seq=SEQ0, dropout=0.0)
        for i in range(0, len(fixes), 10):
            device.publish(encode_telemetry(fixes[i : i + 10]))
        sent = {f.seq for f in fixes}
        missing = device.wait_acked(sent, timeout=60)
        assert not missing, f"never acknowledged end to end: {sorted(missing)[:10]}"
        rows = _rows(ingest_db, dev)
        assert [r[0] for r in rows] == sorted(sent)
        by_seq = {f.seq: f for f in fixes}
        for seq, lat, lon in rows:  # exact to 1e-6 degree
            assert round(lat * 1e6) == by_seq[seq].lat_e6
            assert round(lon * 1e6) == by_seq[seq].lon_e6

        # A resend (what a device does after a lost acknowledgement) stores nothing twice and is
        # counted as duplicates, and acknowledged again.
        device.acked.clear()
        device.publish(encode_telemetry(fixes[:10]))
        assert not device.wait_acked({f.seq for f in fixes[:10]}, timeout=30)
        assert len(_rows(ingest_db, dev)) == len(fixes)
        assert store.stats.quarantined["duplicate"] == 10

        with psycopg.connect(ingest_db) as conn:
            latest = conn.execute(
                "SELECT seq FROM vehicle_latest WHERE tenant_id = %s AND vehicle_id = %s",
                (dev.tenant, dev.vehicle),
            ).fetchone()
        assert latest == (fixes[-1].seq,)  # the resend of old fixes did not move it back
        assert bridge.stats.quarantined == {}
    finally:
        device.close()


def test_corrupt_payload_is_quarantined_with_reason(
    pipeline: tuple[Bridge, Store], ingest_db: str, mqtt_broker: MqttBroker
) -> None:
    bridge, _store = pipeline
    dev = mqtt_broker.devices[1]
    device = Device(mqtt_broker, dev, CLOUD)
    try:
        device.publish(b"\x01\xff\x00garbage")
        deadline = time.monotonic() + 30
        count = 0
        while time.monotonic() < deadline and count == 0:
            with psycopg.connect(ingest_db) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM quarantine WHERE reason = 'decode' AND vehicle_id = %s",
                    (dev.vehicle,),
                ).fetchone()
            count = row[0] if row else 0
            time.sleep(0.2)
        assert count == 1
        assert bridge.stats.quarantined["decode"] == 1
        assert _rows(ingest_db, dev) == []
    finally:
        device.close()
