"""The live dispatcher against the real Kafka and TimescaleDB: orders in, route plans out on the
commands topic, acknowledgements recorded, a cancellation producing a new plan version."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from dispatch_support import fast_dispatch_settings
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from pipeline_support import ingest_database

from cloud.ingest.kafka_topics import KafkaTopics, vehicle_key
from cloud.optimizer.dispatch.service import DispatchService
from cloud.optimizer.dispatch.topics import depot_key, orders_topic
from cloud.settings import DispatchSettings
from flota_wire import AckStatus, Command, CommandAck, decode, encode, topic
from flota_wire import Channel as Ch

TENANT, DEPOT = "acme", "HEL"
VANS = ("van-a", "van-b")


@pytest.fixture(scope="module")
def dispatch_db(database_url: str) -> Iterator[str]:
    with ingest_database(database_url, prefix="flota_dispatch") as url:
        yield url


@pytest.fixture(scope="module")
def settings(dispatch_db: str, kafka_bootstrap: str) -> DispatchSettings:
    return fast_dispatch_settings(dispatch_db, kafka_bootstrap)


class Commands:
    """Reads the commands topic from the start (as the bridge would), decoded per vehicle."""

    def __init__(self, settings: DispatchSettings) -> None:
        name = KafkaTopics(settings.kafka_topic_prefix).commands
        self.consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap.split(","))
        parts = self.consumer.partitions_for_topic(name) or set()
        self.consumer.assign([TopicPartition(name, p) for p in parts])
        self.consumer.seek_to_beginning()
        self.got: list[tuple[str, Command]] = []

    def wait(self, pred: Any, timeout: float = 60.0) -> list[tuple[str, Command]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for records in self.consumer.poll(timeout_ms=200).values():
                for rec in records:
                    tenant, _, vehicle = rec.key.decode().partition("/")
                    msg = decode(topic(tenant, vehicle, Ch.COMMANDS), rec.value).message
                    assert isinstance(msg, Command)
                    self.got.append((vehicle, msg))
            if pred(self.got):
                break
        return self.got


def _send(producer: KafkaProducer, name: str, doc: dict[str, Any]) -> None:
    producer.send(name, key=depot_key(TENANT, DEPOT), value=json.dumps({"v": 1, **doc}).encode())


def _latest(got: list[tuple[str, Command]]) -> dict[str, Command]:
    out: dict[str, Command] = {}
    for vehicle, cmd in got:
        if vehicle not in out or cmd.version > out[vehicle].version:
            out[vehicle] = cmd
    return out


def _orders_in(cmd: Command) -> set[str]:
    assert isinstance(cmd.payload, dict)
    stops = cmd.payload["stops"]
    assert isinstance(stops, list)
    return {s["order"] for s in stops}


@pytest.fixture(scope="module")
def service(settings: DispatchSettings) -> Iterator[DispatchService]:
    svc = DispatchService(settings)
    stop = threading.Event()
    thread = threading.Thread(target=svc.run, args=(stop,), daemon=True)
    thread.start()
    yield svc
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive()


def test_orders_become_plans_acks_are_recorded_and_cancel_replans(
    service: DispatchService, settings: DispatchSettings, dispatch_db: str
) -> None:
    now = time.time()
    name = orders_topic(settings.kafka_topic_prefix)
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap.split(","))
    _send(producer, name, {"type": "depot", "tenant": TENANT, "depot": DEPOT,
                           "location": {"lat": 60.17, "lon": 24.94}})  # fmt: skip
    for van in VANS:
        _send(producer, name, {"type": "vehicle", "tenant": TENANT, "depot": DEPOT,
                               "vehicle": van, "capacity": [30],
                               "shift": [now - 600, now + 8 * 3600]})  # fmt: skip
    # Six orders of 10 units: one van (capacity 30) cannot carry them all.
    orders = [f"o-{i}" for i in range(6)]
    for i, oid in enumerate(orders):
        _send(producer, name, {"type": "order", "tenant": TENANT, "depot": DEPOT, "id": oid,
                               "kind": "delivery", "demand": [10], "service_s": 120,
                               "location": {"lat": 60.16 + 0.01 * i, "lon": 24.90 + 0.01 * i},
                               "windows": [[now, now + 6 * 3600]]})  # fmt: skip
    _send(producer, name, {"type": "order", "tenant": TENANT, "depot": DEPOT, "id": "bad",
                           "kind": "delivery"})  # no location: counted and skipped  # fmt: skip
    producer.flush()

    commands = Commands(settings)

    def all_served(got: list[tuple[str, Command]]) -> bool:
        latest = _latest(got)
        served = set().union(*(_orders_in(c) for c in latest.values())) if latest else set()
        return served == set(orders)

    got = commands.wait(all_served)
    latest = _latest(got)
    assert set(latest) == set(VANS), "both vans get a plan (capacity forces two routes)"
    assert all_served(got)
    for van, cmd in latest.items():
        assert cmd.id == "route-plan"
        assert cmd.kind == "route_plan"
        assert isinstance(cmd.payload, dict)
        assert cmd.payload["vehicle"] == van
        etas = [s["eta_s"] for s in cmd.payload["stops"]]
        assert etas == sorted(etas)
        assert etas[0] >= now - 1
    assert service.stats.bad["orders"] == 1

    # Each van acknowledges its plan; the acks arrive on the command-acks topic as the bridge
    # forwards them (the device's encoded payload, keyed by vehicle).
    acks_topic = KafkaTopics(settings.kafka_topic_prefix).command_acks
    for seq, (van, cmd) in enumerate(sorted(latest.items()), start=1):
        ack = CommandAck(seq, cmd.id, cmd.version, AckStatus.APPLIED, int(time.time() * 1e6))
        producer.send(acks_topic, key=vehicle_key(TENANT, van), value=encode(ack))
    producer.flush()
    deadline = time.monotonic() + 30
    rows: list[tuple[Any, ...]] = []
    while time.monotonic() < deadline:
        with psycopg.connect(dispatch_db) as conn:
            rows = conn.execute(
                """SELECT p.vehicle_id, p.version, p.ack_status, p.pushed_at IS NOT NULL,
                          p.acked_at IS NOT NULL, a.status
                   FROM dispatch_plans p JOIN plan_acks a USING (tenant_id, vehicle_id, version)
                   ORDER BY 1"""
            ).fetchall()
        if len(rows) == len(VANS):
            break
        time.sleep(0.2)
    assert rows == [
        (van, latest[van].version, "applied", True, True, "applied") for van in sorted(VANS)
    ]

    # Cancel an order: its van gets a higher version without it.
    victim = sorted(_orders_in(latest["van-a"]))[-1]
    _send(producer, name, {"type": "cancel", "tenant": TENANT, "depot": DEPOT, "id": victim})
    producer.flush()
    before = latest["van-a"].version

    def replanned(got: list[tuple[str, Command]]) -> bool:
        return _latest(got)["van-a"].version > before

    got = commands.wait(replanned)
    after = _latest(got)["van-a"]
    assert after.version == before + 1
    assert victim not in _orders_in(after)
    assert after.seq > latest["van-a"].seq
    with psycopg.connect(dispatch_db) as conn:
        status = conn.execute(
            "SELECT status FROM dispatch_orders WHERE tenant_id = %s AND order_id = %s",
            (TENANT, victim),
        ).fetchone()
        versions = conn.execute(
            "SELECT version FROM dispatch_plans WHERE vehicle_id = 'van-a' ORDER BY version"
        ).fetchall()
    assert status == ("cancelled",)
    assert [v[0] for v in versions] == list(range(1, after.version + 1))

    # The cancelled id cannot come back as a new order.
    _send(producer, name, {"type": "order", "tenant": TENANT, "depot": DEPOT, "id": victim,
                           "kind": "delivery", "location": {"lat": 60.2, "lon": 24.9}})  # fmt: skip
    producer.flush()
    deadline = time.monotonic() + 30
    while service.stats.bad["order_closed"] == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert service.stats.bad["order_closed"] == 1
    commands.consumer.close()
    producer.close()
