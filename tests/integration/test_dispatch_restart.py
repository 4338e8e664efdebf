"""The dispatcher against the real Kafka and TimescaleDB, across a breakdown and a restart: the
broken van's jobs move to the other van; after a restart, versions continue from the database
and a plan reserved but never produced (a crash in between) is sent."""

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

from cloud.ingest.geo.events import DomainEvent
from cloud.ingest.kafka_topics import KafkaTopics, vehicle_key
from cloud.optimizer.dispatch.service import DispatchService
from cloud.optimizer.dispatch.topics import depot_key, orders_topic
from cloud.settings import DispatchSettings
from flota_wire import Channel, Command, decode, topic

TENANT, DEPOT = "acme", "ESP"


@pytest.fixture(scope="module")
def db(database_url: str) -> Iterator[str]:
    with ingest_database(database_url, prefix="flota_dispatch") as url:
        yield url


@pytest.fixture(scope="module")
def settings(db: str, kafka_bootstrap: str) -> DispatchSettings:
    return fast_dispatch_settings(db, kafka_bootstrap)


class Running:
    """One service instance in a thread."""

    def __init__(self, settings: DispatchSettings) -> None:
        self.service = DispatchService(settings)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.service.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()


class Plans:
    def __init__(self, settings: DispatchSettings) -> None:
        name = KafkaTopics(settings.kafka_topic_prefix).commands
        self.consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap.split(","))
        parts = self.consumer.partitions_for_topic(name) or set()
        self.consumer.assign([TopicPartition(name, p) for p in parts])
        self.consumer.seek_to_beginning()
        self.latest: dict[str, Command] = {}
        self.all: list[tuple[str, Command]] = []

    def wait(self, pred: Any, timeout: float = 60.0) -> dict[str, Command]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not pred(self.latest):
            for records in self.consumer.poll(timeout_ms=200).values():
                for rec in records:
                    tenant, _, vehicle = rec.key.decode().partition("/")
                    cmd = decode(topic(tenant, vehicle, Channel.COMMANDS), rec.value).message
                    assert isinstance(cmd, Command)
                    self.all.append((vehicle, cmd))
                    old = self.latest.get(vehicle)
                    if old is None or cmd.version > old.version:
                        self.latest[vehicle] = cmd
        assert pred(self.latest), (
            f"timed out; latest versions { {v: c.version for v, c in self.latest.items()} }"
        )
        return self.latest


def orders_of(cmd: Command) -> list[str]:
    assert isinstance(cmd.payload, dict)
    stops = cmd.payload["stops"]
    assert isinstance(stops, list)
    return [s["order"] for s in stops]


def test_breakdown_moves_jobs_and_versions_survive_a_restart(
    settings: DispatchSettings, db: str
) -> None:
    now = time.time()
    name = orders_topic(settings.kafka_topic_prefix)
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap.split(","))

    def send(**doc: Any) -> None:
        value = json.dumps({"v": 1, "tenant": TENANT, "depot": DEPOT, **doc}).encode()
        producer.send(name, key=depot_key(TENANT, DEPOT), value=value)

    # van-b stands among the customers (its latest fix, as the ingest store keeps it); van-a at
    # the depot 10 km away: van-b gets every order.
    with psycopg.connect(db) as conn:
        conn.execute(
            """INSERT INTO vehicle_latest (tenant_id, vehicle_id, time, seq, lat, lon)
               VALUES (%s, 'van-b', now(), 1, 60.195, 24.64)""",
            (TENANT,),
        )
    first = Running(settings)
    plans = Plans(settings)
    send(type="depot", location={"lat": 60.29, "lon": 24.655})
    for van in ("van-a", "van-b"):
        send(type="vehicle", vehicle=van, capacity=[30], shift=[now - 60, now + 8 * 3600])
    orders = [f"o-{i}" for i in range(4)]
    for i, oid in enumerate(orders):
        send(type="order", id=oid, kind="delivery", demand=[5],
             location={"lat": 60.19 + 0.01 * i, "lon": 24.62 + 0.015 * i})  # fmt: skip
    producer.flush()

    def served(latest: dict[str, Command]) -> set[str]:
        return {o for c in latest.values() for o in orders_of(c)}

    plans.wait(lambda latest: served(latest) == set(orders))
    before_b = plans.latest["van-b"]
    assert sorted(orders_of(before_b)) == orders
    assert isinstance(before_b.payload, dict)
    first_eta = before_b.payload["stops"][0]["eta_s"]
    assert isinstance(first_eta, float)
    assert first_eta - now < 600  # from where it stands, not from the depot 10 km away

    # van-b breaks down (a domain event as the geo processor republishes it).
    ev = DomainEvent(TENANT, "van-b", int(time.time() * 1e6), "vehicle_breakdown", "1",
                     {"lat": 60.2, "lon": 24.64}, source="vehicle", seq=1)  # fmt: skip
    producer.send(KafkaTopics(settings.kafka_topic_prefix).domain_events,
                  key=vehicle_key(TENANT, "van-b"), value=ev.encode())  # fmt: skip
    producer.flush()
    latest = plans.wait(
        lambda latest: "van-a" in latest and set(orders_of(latest["van-a"])) == set(orders)
    )
    latest = plans.wait(lambda latest: latest["van-b"].version > before_b.version)
    assert orders_of(latest["van-b"]) == []  # told it has no work
    first.close()
    assert first.service.stats.bad == {}

    # A crash after reserving a version but before producing it: the row exists, never pushed.
    a_version = latest["van-a"].version
    with psycopg.connect(db) as conn:
        conn.execute(
            """INSERT INTO dispatch_plans (tenant_id, vehicle_id, version, depot_id, trigger,
                   payload, stops, command_seq)
               SELECT tenant_id, vehicle_id, version + 1, depot_id, 'crash-test',
                      payload || jsonb_build_object('version', version + 1), stops,
                      command_seq + 1
               FROM dispatch_plans WHERE vehicle_id = 'van-a' AND version = %s""",
            (a_version,),
        )
    second = Running(settings)
    try:
        latest = plans.wait(lambda latest: latest["van-a"].version == a_version + 1)
        send(type="order", id="o-new", kind="delivery", demand=[5],
             location={"lat": 60.21, "lon": 24.70})  # fmt: skip
        producer.flush()
        latest = plans.wait(lambda latest: "o-new" in orders_of(latest["van-a"]))
        assert latest["van-a"].version == a_version + 2  # continues after the restart
        deadline = time.monotonic() + 30  # pushed_at is set just after Kafka's acknowledgement
        while True:
            with psycopg.connect(db) as conn:
                rows = conn.execute(
                    """SELECT version, pushed_at IS NOT NULL FROM dispatch_plans
                       WHERE vehicle_id = 'van-a' ORDER BY version"""
                ).fetchall()
            if all(r[1] for r in rows) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        with psycopg.connect(db) as conn:
            broken = conn.execute(
                "SELECT broken, broken_lat FROM dispatch_vehicles WHERE vehicle_id = 'van-b'"
            ).fetchone()
        assert [r[0] for r in rows] == list(range(1, a_version + 3))
        assert all(r[1] for r in rows)
        assert broken == (True, 60.2)
        assert "o-new" not in {o for v, c in plans.all if v == "van-b" for o in orders_of(c)}
        seqs = [c.seq for v, c in plans.all if v == "van-a"]
        assert seqs == sorted(seqs)

        # The database drops the service's connection: it reconnects, reloads, and goes on.
        with psycopg.connect(db, autocommit=True) as conn:
            killed = conn.execute(
                """SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                   WHERE application_name = 'flota-dispatch' AND datname = current_database()"""
            ).fetchone()
        assert killed == (1,)
        send(type="order", id="o-after", kind="delivery", demand=[5],
             location={"lat": 60.2, "lon": 24.66})  # fmt: skip
        producer.flush()
        latest = plans.wait(lambda latest: "o-after" in orders_of(latest["van-a"]))
        assert latest["van-a"].version == a_version + 3
        assert second.service.stats.recoveries >= 1
    finally:
        second.close()
        plans.consumer.close()
        producer.close()
