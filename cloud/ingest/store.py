"""`flota ingest store`: Kafka -> PostgreSQL/TimescaleDB, loss-free and without duplicates.

One loop: poll a batch of records; decode and check them; in ONE database transaction COPY the
good fixes into a temporary staging table, move them with INSERT ... ON CONFLICT DO NOTHING
(a resent batch is a no-op; the refused rows are recorded as duplicates), raise each vehicle's
latest state only with a newer fix, write quarantine rows; commit; only then commit the Kafka
offsets; only then publish "stored these seqs" to each vehicle. A crash anywhere in between
replays the batch, which the unique keys make harmless.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from kafka import KafkaConsumer, KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord

from cloud.db.connection import connect
from cloud.ingest import validate
from cloud.ingest.clients import make_consumer, make_producer
from cloud.ingest.kafka_admin import ensure_topics
from cloud.ingest.kafka_topics import KafkaTopics
from cloud.settings import StoreSettings
from flota_wire.errors import WireError
from flota_wire.telemetry import decode_telemetry_columns

log = logging.getLogger(__name__)

_FIX_COLUMNS = (
    "tenant_id", "vehicle_id", "time", "seq", "lat", "lon", "alt_m", "speed_mps",
    "track_deg", "hdop", "sats", "fix_mode", "received_at",
)  # fmt: skip
_QUARANTINE_COLUMNS = (
    "received_at", "reason", "tenant_id", "vehicle_id", "topic", "seq", "fix_time",
    "payload", "detail",
)  # fmt: skip
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ts(us: int) -> datetime:
    return datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000)


@dataclass
class StoreStats:
    """Counters the store exposes (read by the demo, the benchmark and the tests)."""

    records: int = 0
    fixes_in: int = 0
    fixes_stored: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    last_commit_ms: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class _Batch:
    fixes: list[tuple[Any, ...]] = field(default_factory=list)
    quarantine: list[tuple[Any, ...]] = field(default_factory=list)
    # (tenant, vehicle) -> seq ranges in this batch, for the end-to-end acknowledgement
    ranges: dict[tuple[str, str], list[tuple[int, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )


class Store:
    """One store consumer; several in the same group split the partitions."""

    def __init__(self, settings: StoreSettings, limits: validate.Limits | None = None) -> None:
        self.settings = settings
        self.limits = limits or validate.Limits()
        self.topics = KafkaTopics(settings.kafka_topic_prefix)
        self.stats = StoreStats()
        self._last: dict[tuple[str, str], tuple[int, int, int]] = {}
        self._stop = threading.Event()
        ensure_topics(settings)
        self.conn: psycopg.Connection[Any] = connect(settings.database_url.get_secret_value())
        self.conn.execute(
            "CREATE TEMP TABLE fixes_stage (LIKE fixes INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        self.conn.commit()
        self.consumer: KafkaConsumer = make_consumer(
            settings,
            group=settings.consumer_group,
            topics=[self.topics.telemetry, self.topics.quarantine],
            client_id="flota-store",
        )
        self.producer: KafkaProducer = make_producer(settings, client_id="flota-store")

    # --- decoding and checks --------------------------------------------------------------
    def _telemetry(self, rec: ConsumerRecord, batch: _Batch, now_us: int) -> None:
        received = _ts(now_us)
        tenant, _, vehicle = (rec.key or b"").decode(errors="replace").partition("/")
        try:
            cols = decode_telemetry_columns(rec.value)
        except WireError as err:  # the bridge checked it; a corrupt Kafka record still counts
            batch.quarantine.append(
                (received, "decode", tenant, vehicle, None, None, None, rec.value, str(err))
            )
            return
        key = (tenant, vehicle)
        prev = self._last.get(key)
        seqs = cols.seq
        for i in range(len(seqs)):
            lat, lon, t = cols.lat_e6[i], cols.lon_e6[i], cols.time_us[i]
            speed = cols.speed_cmps[i]
            reason = validate.check_fix(
                lat, lon, time_us=t, speed_cmps=speed, now_us=now_us, limits=self.limits
            )
            if (
                reason is None
                and prev is not None
                and validate.is_jump(prev, lat, lon, t, self.limits)
            ):
                reason = validate.IMPOSSIBLE_SPEED
            if reason is not None:
                batch.quarantine.append(
                    (received, reason, tenant, vehicle, None, seqs[i], _ts(t), None, "")
                )
                continue
            if prev is None or t > prev[0]:
                prev = (t, lat, lon)
            alt, trk, hdop = cols.alt_dm[i], cols.track_cdeg[i], cols.hdop_c[i]
            batch.fixes.append((
                tenant, vehicle, _ts(t), seqs[i], lat / 1e6, lon / 1e6,
                None if alt is None else alt / 10, None if speed is None else speed / 100,
                None if trk is None else trk / 100, None if hdop is None else hdop / 100,
                cols.sats[i], cols.fix_mode[i], received,
            ))  # fmt: skip
        if prev is not None:
            self._last[key] = prev
        if seqs:
            # Quarantined fixes are acknowledged too: they are durably kept, just elsewhere.
            batch.ranges[key].append((seqs[0], seqs[-1]))

    def _bridge_quarantine(self, rec: ConsumerRecord, batch: _Batch) -> None:
        headers = dict(rec.headers or [])
        tenant, _, vehicle = (rec.key or b"").decode(errors="replace").partition("/")
        received_ms = int(headers.get("received_ms", b"0") or 0)
        batch.quarantine.append((
            _ts(received_ms * 1000) if received_ms else _ts(int(time.time() * 1e6)),
            headers.get("reason", b"unknown").decode(errors="replace"),
            tenant or None, vehicle or None,
            headers.get("topic", b"").decode(errors="replace"), None, None, rec.value,
            headers.get("detail", b"").decode(errors="replace"),
        ))  # fmt: skip

    # --- the transaction ------------------------------------------------------------------
    def _write(self, batch: _Batch) -> tuple[int, int]:
        """Write one batch in one transaction; return (stored, duplicates)."""
        cur = self.conn.cursor()
        stored = duplicates = 0
        if batch.fixes:
            with cur.copy(f"COPY fixes_stage ({', '.join(_FIX_COLUMNS)}) FROM STDIN") as copy:
                for row in batch.fixes:
                    copy.write_row(row)
            cols = ", ".join(_FIX_COLUMNS)
            # Rows refused by the unique key are duplicates: record them in quarantine.
            cur.execute(
                f"""
                WITH ins AS (
                    INSERT INTO fixes ({cols}) SELECT {cols} FROM fixes_stage
                    ON CONFLICT DO NOTHING
                    RETURNING tenant_id, vehicle_id, time, seq
                ), dup AS (
                    INSERT INTO quarantine (received_at, reason, tenant_id, vehicle_id, seq,
                                            fix_time, detail)
                    SELECT s.received_at, 'duplicate', s.tenant_id, s.vehicle_id, s.seq, s.time,
                           ''
                    FROM fixes_stage s
                    WHERE NOT EXISTS (SELECT 1 FROM ins i WHERE i.tenant_id = s.tenant_id
                        AND i.vehicle_id = s.vehicle_id AND i.time = s.time AND i.seq = s.seq)
                    RETURNING 1
                ), latest AS (
                    INSERT INTO vehicle_latest (tenant_id, vehicle_id, time, seq, lat, lon,
                        alt_m, speed_mps, track_deg, hdop, sats, fix_mode)
                    SELECT DISTINCT ON (tenant_id, vehicle_id) tenant_id, vehicle_id, time, seq,
                        lat, lon, alt_m, speed_mps, track_deg, hdop, sats, fix_mode
                    FROM ins JOIN fixes_stage USING (tenant_id, vehicle_id, time, seq)
                    ORDER BY tenant_id, vehicle_id, time DESC
                    ON CONFLICT (tenant_id, vehicle_id) DO UPDATE SET
                        time = EXCLUDED.time, seq = EXCLUDED.seq, lat = EXCLUDED.lat,
                        lon = EXCLUDED.lon, alt_m = EXCLUDED.alt_m,
                        speed_mps = EXCLUDED.speed_mps, track_deg = EXCLUDED.track_deg,
                        hdop = EXCLUDED.hdop, sats = EXCLUDED.sats,
                        fix_mode = EXCLUDED.fix_mode, updated_at = now()
                    WHERE vehicle_latest.time < EXCLUDED.time
                    RETURNING 1
                )
                SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM dup),
                       (SELECT count(*) FROM latest)
                """
            )
            counts = cur.fetchone()
            assert counts is not None
            stored, duplicates = int(counts[0]), int(counts[1])
        if batch.quarantine:
            with cur.copy(f"COPY quarantine ({', '.join(_QUARANTINE_COLUMNS)}) FROM STDIN") as copy:
                for qrow in batch.quarantine:
                    copy.write_row(qrow)
        if batch.ranges:
            cur.executemany(
                """
                INSERT INTO ingest_watermarks (tenant_id, vehicle_id, stored_seq)
                VALUES (%s, %s, %s)
                ON CONFLICT (tenant_id, vehicle_id) DO UPDATE
                SET stored_seq = GREATEST(ingest_watermarks.stored_seq, EXCLUDED.stored_seq),
                    updated_at = now()
                """,
                [(t, v, max(last for _, last in r)) for (t, v), r in batch.ranges.items()],
            )
        self.conn.commit()
        return stored, duplicates

    def _acknowledge(self, batch: _Batch) -> None:
        from flota_wire.acks import encode_stored_ack

        now_us = int(time.time() * 1e6)
        for (tenant, vehicle), ranges in batch.ranges.items():
            payload = encode_stored_ack(ranges, time_us=now_us)
            self.producer.send(
                self.topics.stored, key=f"{tenant}/{vehicle}".encode(), value=payload
            )
        self.producer.flush(timeout=30)

    def process(self, records: list[ConsumerRecord]) -> None:
        """Decode, check, write, commit offsets, acknowledge: one batch of records."""
        now_us = int(time.time() * 1e6)
        batch = _Batch()
        for rec in records:
            if rec.topic == self.topics.quarantine:
                self._bridge_quarantine(rec, batch)
            else:
                self._telemetry(rec, batch, now_us)
        t0 = time.perf_counter()
        try:
            stored, duplicates = self._write(batch)
        except psycopg.Error:
            self.conn.rollback()
            raise
        commit_ms = (time.perf_counter() - t0) * 1000
        self.consumer.commit()
        self._acknowledge(batch)
        reasons = Counter(q[1] for q in batch.quarantine)
        reasons[validate.DUPLICATE] += duplicates
        with self.stats.lock:
            self.stats.records += len(records)
            self.stats.fixes_in += len(batch.fixes) + sum(
                1 for q in batch.quarantine if q[5] is not None
            )
            self.stats.fixes_stored += stored
            self.stats.quarantined.update(+reasons)
            self.stats.batches += 1
            self.stats.last_commit_ms = commit_ms

    def run(self, stop: threading.Event | None = None) -> None:
        """Consume until ``stop`` is set."""
        if stop is not None:
            self._stop = stop
        try:
            while not self._stop.is_set():
                polled = self.consumer.poll(
                    timeout_ms=self.settings.batch_max_wait_ms,
                    max_records=self.settings.batch_max_records,
                )
                records = [r for recs in polled.values() for r in recs]
                if records:
                    self.process(records)
        finally:
            self.consumer.close(autocommit=False)
            self.producer.close(timeout=5)
            self.conn.close()
