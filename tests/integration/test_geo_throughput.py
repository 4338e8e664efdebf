"""Throughput of the geo processor through the real Kafka and TimescaleDB (slow; prints a figure,
asserts only correctness): 100 vehicles x 600 fixes past 50 geofences. Every fix is consumed and
the processor publishes exactly the events the rules give for each vehicle's trace on its own.

    .venv/bin/pytest -s -m slow tests/integration/test_geo_throughput.py
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from kafka import KafkaProducer
from pydantic import SecretStr

from cloud.db.connection import connect
from cloud.db.migrate import migrate
from cloud.db.scratch import scratch_database
from cloud.ingest.geo.config import GeoRules, GeoSettings
from cloud.ingest.geo.events import DomainEvent
from cloud.ingest.geo.fences import FenceIndex, Geofence
from cloud.ingest.geo.geometry import parse_geojson
from cloud.ingest.geo.machine import FixIn, Tracker
from cloud.ingest.geo.processor import GeoProcessor
from cloud.ingest.geo.state import VehicleState
from cloud.ingest.kafka_topics import KafkaTopics, vehicle_key
from flota_wire.schema import Fix
from flota_wire.telemetry import encode_telemetry

VEHICLES, FIXES = 100, 600


def _geometry(i: int) -> dict[str, object]:
    lat = 60.17 + i * 0.01
    ring = [[24.93, lat], [24.95, lat], [24.95, lat + 0.005], [24.93, lat + 0.005], [24.93, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


def _trace(v: int, t0: int) -> list[Fix]:
    """Drive 120 s at 10 m/s, stand 120 s, and so on; each vehicle offset a little east."""
    return [
        Fix.from_si(seq=i + 1, time_us=t0 + i * 1_000_000, lat=60.17 + i * 10 / 111_195,
                    lon=24.94 + v * 1e-4, speed_mps=10.0 if (i // 120) % 2 == 0 else 0.0)
        for i in range(FIXES)
    ]  # fmt: skip


@pytest.mark.slow
def test_geo_throughput(database_url: str, kafka_bootstrap: str) -> None:
    t0 = (int(time.time()) - 7200) * 1_000_000
    traces = {f"v{v}": _trace(v, t0) for v in range(VEHICLES)}
    with scratch_database(database_url, prefix="flota_geo_tp") as url:
        with connect(url, autocommit=True) as conn:
            migrate(conn)
            conn.execute("INSERT INTO tenants (tenant_id) VALUES ('acme')")
            for i in range(50):
                conn.execute(
                    "INSERT INTO geofences (tenant_id, geofence_id, geometry)"
                    " VALUES ('acme', %s, %s::jsonb)",
                    (f"f{i}", json.dumps(_geometry(i))),
                )
        prefix = f"tp{uuid.uuid4().hex[:8]}"
        settings = GeoSettings(
            kafka_bootstrap=kafka_bootstrap, kafka_topic_prefix=prefix,
            database_url=SecretStr(url), geo_consumer_group=f"geo-{prefix}",
        )  # fmt: skip
        proc = GeoProcessor(settings)
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap.split(","), linger_ms=5)
        topics = KafkaTopics(prefix)
        for vehicle, fixes in traces.items():
            for k in range(0, FIXES, 10):
                producer.send(topics.telemetry, key=vehicle_key("acme", vehicle),
                              value=encode_telemetry(fixes[k : k + 10]))  # fmt: skip
        producer.flush(60)
        producer.close()
        total = VEHICLES * FIXES
        published: list[DomainEvent] = []
        wall, cpu = time.perf_counter(), time.process_time()
        deadline = time.monotonic() + 240
        try:
            while sum(proc.stats.fixes.values()) < total and time.monotonic() < deadline:
                polled = proc.consumer.poll(timeout_ms=200, max_records=2000)
                records = [r for recs in polled.values() for r in recs]
                if records:
                    published += proc.process(records)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        finally:
            proc.consumer.close(autocommit=False)
            proc.producer.close(timeout=5)
            proc.conn.close()

    assert dict(proc.stats.fixes) == {"used": total}
    fences = FenceIndex([Geofence("acme", f"f{i}", "", parse_geojson(_geometry(i)))
                         for i in range(50)])  # fmt: skip
    expected: list[DomainEvent] = []
    for vehicle, fixes in traces.items():
        tracker = Tracker("acme", vehicle, VehicleState(), GeoRules(), fences, expected)
        for f in fixes:
            tracker.on_fix(FixIn(f.time_us, f.lat, f.lon, f.speed_mps))
    assert sorted((e.vehicle, e.time_us, e.kind, e.event_key) for e in published) == sorted(
        (e.vehicle, e.time_us, e.kind, e.event_key) for e in expected
    )
    print(
        f"\ngeo: {total} fixes, {len(published)} events, {total / wall:,.0f} fixes/s wall, "
        f"{total / cpu:,.0f} fixes per CPU-second of the whole process"
    )
