"""The geo processor and the event sink against the real Kafka and TimescaleDB: a vehicle drives
into a geofence, dwells, drives out and parks; the exact domain events land in ``events``. Late
fixes and a resent batch fire nothing; a restart continues from the saved state; a full replay
(a new consumer group) and a crash between publishing and the database commit store nothing
twice and count no distance twice.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from kafka import KafkaProducer
from pydantic import SecretStr

from cloud.db.connection import connect
from cloud.db.migrate import migrate
from cloud.db.scratch import scratch_database
from cloud.ingest.geo import repo
from cloud.ingest.geo.config import GeoSettings
from cloud.ingest.geo.processor import GeoProcessor
from cloud.ingest.geo.sink import EventSink
from cloud.ingest.kafka_topics import KafkaTopics, vehicle_key
from flota_wire.jsoncodec import encode_event
from flota_wire.schema import Event, Fix
from flota_wire.telemetry import encode_telemetry

TENANT, VEHICLE = "acme", "truck-1"
LAT0, LON0 = 60.17, 24.94
M_PER_DEG = 111_194.93  # metres per degree of latitude (sphere of radius 6371008.8 m)
T0 = (int(time.time()) - 7200) * 1_000_000  # two hours ago: recent, never in the future


def s(seconds: float) -> int:
    return T0 + round(seconds * 1e6)


def fix(seq: int, t: float, north_m: float, speed: float) -> Fix:
    """A fix on the road north from the start, ``north_m`` metres along it, at ``t`` s."""
    return Fix.from_si(seq=seq, time_us=s(t), lat=LAT0 + north_m / M_PER_DEG, lon=LON0,
                       speed_mps=speed)  # fmt: skip


def depot_geometry() -> dict[str, Any]:
    """A box 2 km wide across the road, from 503 m to 1497 m north of the start."""
    south, north = LAT0 + 503 / M_PER_DEG, LAT0 + 1497 / M_PER_DEG
    ring = [[LON0 - 0.02, south], [LON0 + 0.02, south], [LON0 + 0.02, north],
            [LON0 - 0.02, north], [LON0 - 0.02, south]]  # fmt: skip
    return {"type": "Polygon", "coordinates": [ring]}


@pytest.fixture(scope="module")
def geo_db(database_url: str) -> Iterator[str]:
    with scratch_database(database_url, prefix="flota_geo") as url:
        with connect(url, autocommit=True) as conn:
            migrate(conn)
            conn.execute("INSERT INTO tenants (tenant_id) VALUES (%s)", (TENANT,))
            conn.execute(
                "INSERT INTO geofences (tenant_id, geofence_id, name, geometry, dwell_s)"
                " VALUES (%s, 'depot', 'Depot', %s::jsonb, 60)",
                (TENANT, json.dumps(depot_geometry())),
            )
        yield url


class Running:
    """A processor and a sink in threads until closed."""

    def __init__(self, settings: GeoSettings, processor_target: Any = None) -> None:
        self.stop = threading.Event()
        self.processor = GeoProcessor(settings)
        self.sink = EventSink(settings)
        target = processor_target or (lambda p, stop: p.run(stop))
        self.threads = [
            threading.Thread(target=target, args=(self.processor, self.stop), daemon=True),
            threading.Thread(target=self.sink.run, args=(self.stop,), daemon=True),
        ]
        for t in self.threads:
            t.start()

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=20)


def _wait(cond: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def _events(url: str, vehicle: str = VEHICLE) -> list[tuple[str, str, int, str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT kind, event_key, time, source FROM events"
            " WHERE tenant_id = %s AND vehicle_id = %s ORDER BY time, kind",
            (TENANT, vehicle),
        ).fetchall()
    return [(kind, key, round(t.timestamp() * 1e6), source) for kind, key, t, source in rows]


def _settings(geo_db: str, kafka_bootstrap: str) -> GeoSettings:
    prefix = f"g{uuid.uuid4().hex[:8]}"
    return GeoSettings(
        kafka_bootstrap=kafka_bootstrap,
        kafka_topic_prefix=prefix,
        database_url=SecretStr(geo_db),
        geo_consumer_group=f"geo-{prefix}",
        geo_sink_group=f"sink-{prefix}",
        geo_batch_max_wait_ms=50,
    )


def test_drive_through_a_geofence_stores_the_exact_events(
    geo_db: str, kafka_bootstrap: str
) -> None:
    settings = _settings(geo_db, kafka_bootstrap)
    prefix = settings.kafka_topic_prefix
    topics = KafkaTopics(prefix)
    # 200 s north at 10 m/s through the depot (inside from 510 m to 1490 m), then park 400 s.
    fixes = [fix(i + 1, i, 10.0 * i, 10.0) for i in range(200)]
    fixes += [fix(201 + i, 200 + i, 2000.0, 0.0) for i in range(400)]
    running = Running(settings)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap.split(","))
    key = vehicle_key(TENANT, VEHICLE)
    try:
        for i in range(0, len(fixes), 10):
            producer.send(topics.telemetry, key=key, value=encode_telemetry(fixes[i : i + 10]))
        brake = Event(seq=1, time_us=s(100), kind="harsh_brake", details=(("peak_mps2", 6.5),))
        producer.send(topics.events, key=key, value=encode_event(brake))
        # Late fixes that would re-enter the depot, and a resent batch: no event may come of them.
        late = [fix(601, 300.5, 1000.0, 0.0), fix(602, 300.7, 1000.0, 0.0)]
        producer.send(topics.telemetry, key=key, value=encode_telemetry(late))
        producer.send(topics.telemetry, key=key, value=encode_telemetry(fixes[50:60]))
        # Bad input is counted and skipped, never fatal.
        producer.send(topics.telemetry, key=key, value=b"\x01garbage")
        producer.send(topics.events, key=None, value=encode_event(brake))
        producer.send(topics.domain_events, key=key, value=b"{not json")
        producer.flush(30)

        proc = running.processor
        _wait(lambda: proc.stats.fixes["used"] + proc.stats.fixes["late"] >= 612, 60,
              "the processor to consume every fix")  # fmt: skip
        expected = [
            ("trip.start", f"trip:{s(0)}", s(0), "cloud"),
            ("geofence.enter", f"depot:{s(51)}", s(51), "cloud"),
            ("harsh_brake", "1", s(100), "vehicle"),
            ("geofence.dwell", f"depot:{s(51)}", s(111), "cloud"),
            ("geofence.exit", f"depot:{s(51)}", s(150), "cloud"),
            ("stop.start", f"stop:{s(200)}", s(200), "cloud"),
            ("trip.end", f"trip:{s(0)}", s(200), "cloud"),
        ]
        _wait(lambda: len(_events(geo_db)) >= len(expected), 60, "the sink to store events")
        assert _events(geo_db) == expected
        assert proc.stats.fixes["late"] == 12
        assert proc.stats.fixes["used"] == 600
        late_count = proc.metrics.registry.get_sample_value(
            "flota_ingest_quarantined_total", {"process": "geo", "reason": "late"}
        )
        assert late_count == 12  # Prometheus sees the ignored fixes per reason
        _wait(lambda: proc.stats.bad_records["key"] == 1, 30, "the keyless record")
        assert proc.stats.bad_records == {"decode": 1, "key": 1}
        _wait(lambda: running.sink.stats.bad["decode"] == 1, 30, "the sink to see the bad event")
        with psycopg.connect(geo_db) as conn:
            trip = conn.execute(
                "SELECT distance_m, duration_s, ended_by FROM trips WHERE vehicle_id = %s",
                (VEHICLE,),
            ).fetchone()
            state = conn.execute(
                "SELECT odometer_m, watermark FROM geo_state WHERE consumer_group = %s",
                (settings.geo_consumer_group,),
            ).fetchone()
            detail = conn.execute(
                "SELECT detail FROM events WHERE kind = 'harsh_brake' AND vehicle_id = %s",
                (VEHICLE,),
            ).fetchone()
        assert trip is not None
        assert trip[0] == pytest.approx(2000.0, abs=1.0)
        assert trip[1:] == (200.0, "stop")
        assert state is not None
        assert state[0] == pytest.approx(2000.0, abs=1.0)  # the late fixes added nothing
        assert round(state[1].timestamp() * 1e6) == s(599)
        assert detail == ({"peak_mps2": 6.5, "severity": 0},)
    finally:
        running.close()

    # A restarted processor (same group) continues from its saved state and offsets: it reads
    # only the new fixes, and the stop it remembers ends when the vehicle drives off.
    more = [fix(603 + i, 600 + i, 2000.0 + 10.0 * i, 10.0) for i in range(60)]
    restarted = Running(settings)
    try:
        producer.send(topics.telemetry, key=key, value=encode_telemetry(more))
        producer.flush(30)
        expected += [
            ("stop.end", f"stop:{s(200)}", s(600), "cloud"),
            ("trip.start", f"trip:{s(600)}", s(600), "cloud"),
        ]
        _wait(lambda: len(_events(geo_db)) >= len(expected), 60, "events after the restart")
        assert sorted(_events(geo_db)) == sorted(expected)
        assert dict(restarted.processor.stats.fixes) == {"used": 60}
    finally:
        restarted.close()

    # A full replay from the start (a new processor group, empty state) computes the same events
    # with the same keys: the sink stores none of them twice.
    replay = Running(settings.model_copy(update={"geo_consumer_group": f"geo2-{prefix}"}))
    try:
        _wait(lambda: replay.sink.stats.duplicates >= len(expected), 60, "the replayed events")
        assert replay.sink.stats.stored == 0
        assert sorted(_events(geo_db)) == sorted(expected)
    finally:
        replay.close()
        producer.close()


def test_crash_between_publish_and_commit_replays_without_double_counting(
    geo_db: str, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(geo_db, kafka_bootstrap)
    topics = KafkaTopics(settings.kafka_topic_prefix)
    vehicle = "truck-2"
    real_save = repo.save
    calls = []

    def crash_once(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 1:  # the events of this batch are already on Kafka
            raise psycopg.OperationalError("simulated crash before the database commit")
        real_save(*args, **kwargs)

    monkeypatch.setattr(repo, "save", crash_once)
    crashed: list[BaseException] = []

    def run_and_record(proc: GeoProcessor, stop: threading.Event) -> None:
        try:
            proc.run(stop)
        except psycopg.OperationalError as err:
            crashed.append(err)

    running = Running(settings, processor_target=run_and_record)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap.split(","))
    try:
        drive = [fix(i + 1, i, 10.0 * i, 10.0) for i in range(45)]  # short of the depot
        producer.send(topics.telemetry, key=vehicle_key(TENANT, vehicle),
                      value=encode_telemetry(drive))  # fmt: skip
        producer.flush(30)
        _wait(lambda: bool(crashed), 60, "the simulated crash")
        # The trip.start went out before the crash and is stored once.
        _wait(lambda: len(_events(geo_db, vehicle)) == 1, 60, "the first publication")
        restarted = GeoProcessor(settings)
        thread = threading.Thread(target=restarted.run, args=(running.stop,), daemon=True)
        thread.start()
        running.threads.append(thread)  # joined by close()
        _wait(lambda: running.sink.stats.duplicates >= 1, 60, "the replayed trip.start")
        assert _events(geo_db, vehicle) == [("trip.start", f"trip:{s(0)}", s(0), "cloud")]
        assert restarted.stats.fixes["used"] == 45  # the whole batch again, from saved state
        with psycopg.connect(geo_db) as conn:
            row = conn.execute(
                "SELECT odometer_m FROM geo_state WHERE consumer_group = %s AND vehicle_id = %s",
                (settings.geo_consumer_group, vehicle),
            ).fetchone()
        assert row is not None
        assert row[0] == pytest.approx(440.0, abs=1.0)  # counted once
    finally:
        running.close()
        producer.close()
