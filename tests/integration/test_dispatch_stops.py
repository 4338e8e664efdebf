"""The route-plan loop closed, against the real Kafka and TimescaleDB: the dispatcher plans an
order; a real agent (no network: its outbox stands in for MQTT) applies the plan, drives to the
stop, dwells and leaves; its ``stop_arrived`` / ``stop_completed`` events, published as the
bridge forwards them, go through the geo processor to the dispatcher, which marks the order
done (memory and ``dispatch_orders``); the geo sink stores both new kinds in ``events``."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from dispatch_support import fast_dispatch_settings, first_plan
from kafka import KafkaProducer
from pipeline_support import ingest_database, wait_for
from pydantic import SecretStr

from cloud.ingest.geo.config import GeoSettings
from cloud.ingest.geo.processor import GeoProcessor
from cloud.ingest.geo.sink import EventSink
from cloud.ingest.kafka_topics import KafkaTopics, vehicle_key
from cloud.optimizer.dispatch.service import DispatchService
from cloud.optimizer.dispatch.topics import depot_key, orders_topic
from edge_agent.agent import Agent
from edge_agent.gps.fix import GpsFix
from edge_agent.settings import load_settings
from flota_wire import AckStatus

TENANT, DEPOT = "acme", "HEL"
VAN = f"van-{uuid.uuid4().hex[:6]}"
HOME = (60.170, 24.940)
CUSTOMER = (60.180, 24.950)


@pytest.fixture(scope="module")
def stops_db(database_url: str) -> Iterator[str]:
    with ingest_database(database_url, prefix="flota_dstops") as url:
        yield url


class Cloud:
    """Dispatcher, geo processor and geo sink on one topic prefix, in threads."""

    def __init__(self, db: str, kafka_bootstrap: str) -> None:
        self.dispatch = fast_dispatch_settings(db, kafka_bootstrap)
        prefix = self.dispatch.kafka_topic_prefix
        self.topics = KafkaTopics(prefix)
        geo = GeoSettings(
            kafka_bootstrap=kafka_bootstrap,
            kafka_topic_prefix=prefix,
            database_url=SecretStr(db),
            geo_consumer_group=f"geo-{prefix}",
            geo_sink_group=f"sink-{prefix}",
            geo_batch_max_wait_ms=50,
        )
        self.service = DispatchService(self.dispatch)
        self.processor = GeoProcessor(geo)
        self.sink = EventSink(geo)
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=x.run, args=(self.stop,), daemon=True)
            for x in (self.service, self.processor, self.sink)
        ]
        for t in self.threads:
            t.start()

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)


def _order_status(db: str, order: str) -> Any:
    with psycopg.connect(db) as conn:
        row = conn.execute(
            "SELECT status FROM dispatch_orders WHERE tenant_id = %s AND order_id = %s",
            (TENANT, order),
        ).fetchone()
    return row[0] if row else None


def test_agent_stop_completed_marks_the_order_done(
    stops_db: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    cloud = Cloud(stops_db, kafka_bootstrap)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap.split(","))
    agent: Agent | None = None
    try:
        now = time.time()
        orders = orders_topic(cloud.dispatch.kafka_topic_prefix)

        def send(doc: dict[str, Any]) -> None:
            value = json.dumps({"v": 1, "tenant": TENANT, "depot": DEPOT, **doc}).encode()
            producer.send(orders, key=depot_key(TENANT, DEPOT), value=value)

        send({"type": "depot", "location": {"lat": HOME[0], "lon": HOME[1]}})
        send({"type": "vehicle", "vehicle": VAN, "capacity": [10],
              "shift": [now - 600, now + 8 * 3600]})  # fmt: skip
        send({"type": "order", "id": "o-1", "kind": "delivery", "demand": [1], "service_s": 60,
              "location": {"lat": CUSTOMER[0], "lon": CUSTOMER[1]}})  # fmt: skip
        producer.flush(30)

        plan = first_plan(cloud.dispatch, VAN)
        assert isinstance(plan.payload, dict)
        assert [s["id"] for s in plan.payload["stops"]] == ["o-1:delivery"]

        settings = load_settings(
            environ={}, tenant=TENANT, vehicle=VAN, mqtt_username=f"{TENANT}.{VAN}",
            mqtt_password="k8#Lq-integration", state_dir=tmp_path,
        )  # fmt: skip
        agent = Agent(settings, sources=False)
        assert agent.processor.handle(plan) is AckStatus.APPLIED
        t = time.time() - 60.0  # recent, never in the future
        for k in range(40):  # 15 s parked at the customer, then away
            at, speed = (CUSTOMER, 0.0) if k < 15 else (HOME, 12.0)
            agent.inbox.put(("gps", GpsFix(t + k, 0.0, at[0], at[1], 3, speed_mps=speed)))
            agent.step(0.0)
        assert agent.counters["stops_completed"] == 1
        key = vehicle_key(TENANT, VAN)
        # What the uplink would publish: acks on up/acks, events on up/events, forwarded by the
        # bridge unchanged, keyed by vehicle.
        for m in agent.outbox.messages_after("acks", 0, 100):
            producer.send(cloud.topics.command_acks, key=key, value=m.payload)
        events = agent.outbox.messages_after("events", 0, 100)
        assert len(events) == 2
        for m in events:
            producer.send(cloud.topics.events, key=key, value=m.payload)
        producer.flush(30)

        wait_for(lambda: _order_status(stops_db, "o-1") == "done", 60)
        d = cloud.service.dispatcher
        assert d.orders[(TENANT, "o-1")].status == "done"
        assert d.counters["stop_completed"] == 1
        assert d.vehicles[(TENANT, VAN)].acked_version == plan.version

        def stored() -> list[tuple[Any, ...]]:
            with psycopg.connect(stops_db) as conn:
                return conn.execute(
                    "SELECT kind, source, detail->>'stop_id', detail->>'plan_id'"
                    " FROM events WHERE tenant_id = %s AND vehicle_id = %s ORDER BY time",
                    (TENANT, VAN),
                ).fetchall()

        wait_for(lambda: len(stored()) >= 2, 60)
        plan_id = plan.payload["plan_id"]
        assert stored() == [
            ("stop_arrived", "vehicle", "o-1:delivery", plan_id),
            ("stop_completed", "vehicle", "o-1:delivery", plan_id),
        ]
    finally:
        if agent is not None:
            agent.close()
        producer.close()
        cloud.close()
