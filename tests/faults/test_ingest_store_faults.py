"""The store under fire, against real services of our own: `flota ingest store` killed with
SIGKILL 50 times during a large ingest, plus one PostgreSQL restart and one Kafka restart.
Afterwards every fix sent is stored exactly once."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from ingest_fault_support import PrivateKafka, flota
from kafka import KafkaProducer

from cloud.db.connection import connect
from cloud.db.embedded import EmbeddedPostgres
from cloud.db.migrate import migrate
from cloud.ingest.kafka_admin import ensure_topics
from cloud.ingest.kafka_topics import KafkaTopics, vehicle_key
from cloud.settings import KafkaSettings
from flota_wire.schema import Fix
from flota_wire.telemetry import encode_telemetry

pytestmark = [pytest.mark.fault, pytest.mark.slow]

VEHICLES = 20
RECORDS_PER_VEHICLE = 60
FIXES_PER_RECORD = 100
KILLS = 50


@pytest.fixture(scope="module")
def services(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[PrivateKafka, EmbeddedPostgres, str]]:
    root = tmp_path_factory.mktemp("ingest-faults")
    kafka = PrivateKafka(root / "kafka")
    kafka.start()
    pg = EmbeddedPostgres(root / "pg", keep_data=True)
    url = pg.start()
    with connect(url, autocommit=True) as conn:
        migrate(conn)
    try:
        yield kafka, pg, url
    finally:
        kafka.stop()
        pg.stop()


def _records() -> list[tuple[bytes, bytes]]:
    """(key, payload) of every record, in each vehicle's order; plausible 10 m/s drives."""
    t0 = int(time.time() * 1e6) - 3 * 86_400_000_000
    out = []
    for r in range(RECORDS_PER_VEHICLE):
        for v in range(VEHICLES):
            fixes = [
                Fix(seq=1 + i, time_us=t0 + i * 1_000_000, lat_e6=59_000_000 + v * 10_000 + i * 90,
                    lon_e6=24_000_000, speed_cmps=1000, track_cdeg=0)
                for i in range(r * FIXES_PER_RECORD, (r + 1) * FIXES_PER_RECORD)
            ]  # fmt: skip
            out.append((vehicle_key("fleet", f"v{v:02d}"), encode_telemetry(fixes)))
    return out


def _count(url: str) -> tuple[int, int]:
    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT (tenant_id, vehicle_id, seq)) FROM fixes"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _count_safe(url: str) -> int:
    try:
        return _count(url)[0]
    except psycopg.Error:
        return -1


def test_store_killed_50_times_and_both_backends_restarted(
    services: tuple[PrivateKafka, EmbeddedPostgres, str], tmp_path: Path
) -> None:
    kafka, pg, url = services
    prefix = "fault"
    settings = KafkaSettings(kafka_bootstrap=kafka.bootstrap, kafka_topic_prefix=prefix)
    ensure_topics(settings)
    topic = KafkaTopics(prefix).telemetry
    records = _records()
    total = VEHICLES * RECORDS_PER_VEHICLE * FIXES_PER_RECORD
    producer = KafkaProducer(
        bootstrap_servers=kafka.bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )

    split = len(records) * 6 // 10
    second_half = threading.Event()

    produced = [0]  # fixes flushed to Kafka so far

    def produce() -> None:  # the ingest keeps arriving while the store is being killed...
        for i, (key, value) in enumerate(records):
            if i == split:  # ...and the rest while PostgreSQL and Kafka restart
                second_half.wait()
            producer.send(topic, key=key, value=value)
            step = 5 if i < split else 20
            if i % step == step - 1:
                producer.flush()
                produced[0] = (i + 1) * FIXES_PER_RECORD
                time.sleep(1.0 if i < split else 0.5)
        producer.flush()
        produced[0] = total

    feeder = threading.Thread(target=produce, daemon=True)
    feeder.start()
    env = {
        "FLOTA_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "FLOTA_KAFKA_TOPIC_PREFIX": prefix,
        "FLOTA_DATABASE_URL": url,
        "FLOTA_CONSUMER_GROUP": "fault-store",
        "FLOTA_GROUP_INSTANCE_ID": "fault-store-1",
        "FLOTA_BATCH_MAX_RECORDS": "20",
        "FLOTA_BATCH_MAX_WAIT_MS": "50",
        "FLOTA_LOG_LEVEL": "WARNING",
    }
    log = tmp_path / "store.log"
    rng = random.Random(50)
    kills = 0
    while kills < KILLS:
        before = _count_safe(url)
        proc = flota(["ingest", "store"], env, log)
        # Let it make progress (or, once the backlog is drained, run a moment), then kill it at
        # a random point: mid-poll, mid-transaction, between commit and offsets.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _count_safe(url) <= before < produced[0]:
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.4))
        proc.kill()
        proc.wait(10)
        kills += 1

    # One store runs through a PostgreSQL restart and a Kafka restart.
    proc = flota(["ingest", "store"], env, log)
    second_half.set()
    try:
        time.sleep(3)
        assert 0 < _count(url)[0] < total  # the restarts come in the middle of the ingest
        pg.stop()
        time.sleep(2)
        pg.start()
        time.sleep(3)
        kafka.stop()
        time.sleep(2)
        kafka.start()
        feeder.join(timeout=120)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and _count_safe(url) < total:
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.5)
        time.sleep(2)  # anything more (a duplicate) would land now
        rows, distinct = _count(url)
    finally:
        proc.terminate()
        proc.wait(30)
        producer.close(timeout=5)
    assert rows == total, f"{total - rows} of {total} fixes lost"
    assert distinct == rows  # no (vehicle, seq) twice
    with psycopg.connect(url) as conn:
        marks = conn.execute(
            "SELECT min(stored_seq), max(stored_seq), count(*) FROM ingest_watermarks"
        ).fetchone()
        bad = conn.execute("SELECT count(*) FROM quarantine WHERE reason <> 'duplicate'").fetchone()
    last = RECORDS_PER_VEHICLE * FIXES_PER_RECORD
    assert marks == (last, last, VEHICLES)
    assert bad == (0,)  # replays are duplicates, never misjudged as jumps
    assert "database failed" in log.read_text()  # the restart was seen, and survived
