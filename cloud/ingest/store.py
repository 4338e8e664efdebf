"""`flota ingest store`: Kafka -> PostgreSQL/TimescaleDB, loss-free and without duplicates.

One loop: poll a batch of records; decode them and screen the fixes (``cloud.ingest.screen``);
in ONE database transaction COPY the accepted fixes (binary, built column-wise with numpy)
into a temporary staging table, move them with INSERT ... ON CONFLICT DO NOTHING (a resent
batch is a no-op; the refused rows are recorded as duplicates), raise each vehicle's latest
state only with a newer fix, write quarantine rows and watermarks; commit; only then commit the
Kafka offsets; only then publish "stored these seqs" to each vehicle. A crash anywhere in
between replays the batch, which the unique keys make harmless. A database that goes away is
waited for and the same batch written again; nothing is committed to Kafka meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import psycopg
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError

from cloud.db.connection import connect
from cloud.db.errors import DbUnavailableError
from cloud.ingest import validate
from cloud.ingest.clients import make_consumer, make_producer
from cloud.ingest.kafka_admin import ensure_topics
from cloud.ingest.kafka_topics import KafkaTopics
from cloud.ingest.metrics import IngestMetrics
from cloud.ingest.screen import NULL, Point, Screen, Screened, gather
from cloud.settings import StoreSettings
from flota_wire.errors import WireError
from flota_wire.telemetry import TelemetryColumns, decode_telemetry_columns

log = logging.getLogger(__name__)

_STAGE_COLUMNS = (
    "vix", "time_us", "seq", "lat_e6", "lon_e6", "alt_dm", "speed_cmps", "track_cdeg",
    "hdop_c", "sats", "fix_mode",
)  # fmt: skip
_QUARANTINE_COLUMNS = (
    "received_at", "reason", "tenant_id", "vehicle_id", "topic", "seq", "fix_time",
    "payload", "detail",
)  # fmt: skip
_FIX_COLUMNS = (
    "tenant_id, vehicle_id, time, seq, lat, lon, alt_m, speed_mps, track_deg, hdop, sats, fix_mode"
)
_PG_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_PG_TRAILER = b"\xff\xff"
_ROW_DTYPE = np.dtype(
    [("n", ">i2")] + [f for c in _STAGE_COLUMNS for f in ((f"l_{c}", ">i4"), (c, ">i8"))]
)
_TS = "timestamptz 'epoch' + {} * interval '1 microsecond'"

_SETUP = """
CREATE TEMP TABLE IF NOT EXISTS fixes_stage ({cols}) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_vehicles (
    vix bigint PRIMARY KEY, tenant_id text NOT NULL, vehicle_id text NOT NULL);
""".format(cols=", ".join(f"{c} bigint NOT NULL" for c in _STAGE_COLUMNS))

_MOVE = f"""
WITH src AS MATERIALIZED (
    SELECT v.tenant_id, v.vehicle_id, {_TS.format("s.time_us")} AS time, s.seq,
           s.lat_e6::float8 / 1e6::float8 AS lat, s.lon_e6::float8 / 1e6::float8 AS lon,
           (NULLIF(s.alt_dm, {NULL})::float8 / 10)::real AS alt_m,
           (NULLIF(s.speed_cmps, {NULL})::float8 / 100)::real AS speed_mps,
           (NULLIF(s.track_cdeg, {NULL})::float8 / 100)::real AS track_deg,
           (NULLIF(s.hdop_c, {NULL})::float8 / 100)::real AS hdop,
           NULLIF(s.sats, {NULL})::smallint AS sats, s.fix_mode::smallint AS fix_mode
    FROM fixes_stage s JOIN stage_vehicles v USING (vix)
), ins AS (
    INSERT INTO fixes ({_FIX_COLUMNS}) SELECT * FROM src
    ON CONFLICT DO NOTHING
    RETURNING tenant_id, vehicle_id, time
), dup AS (
    -- Rows refused by the unique key are duplicates: record them in quarantine.
    INSERT INTO quarantine (reason, tenant_id, vehicle_id, seq, fix_time, detail)
    SELECT 'duplicate', s.tenant_id, s.vehicle_id, s.seq, s.time, ''
    FROM src s
    WHERE NOT EXISTS (SELECT 1 FROM ins i WHERE i.tenant_id = s.tenant_id
                      AND i.vehicle_id = s.vehicle_id AND i.time = s.time)
    RETURNING 1
), latest AS (
    INSERT INTO vehicle_latest ({_FIX_COLUMNS})
    SELECT DISTINCT ON (tenant_id, vehicle_id) * FROM src
    ORDER BY tenant_id, vehicle_id, time DESC
    ON CONFLICT (tenant_id, vehicle_id) DO UPDATE SET
        time = EXCLUDED.time, seq = EXCLUDED.seq, lat = EXCLUDED.lat, lon = EXCLUDED.lon,
        alt_m = EXCLUDED.alt_m, speed_mps = EXCLUDED.speed_mps,
        track_deg = EXCLUDED.track_deg, hdop = EXCLUDED.hdop, sats = EXCLUDED.sats,
        fix_mode = EXCLUDED.fix_mode, updated_at = now()
    WHERE vehicle_latest.time < EXCLUDED.time
    RETURNING 1
)
SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM dup)
"""

_WATERMARKS = """
INSERT INTO ingest_watermarks (tenant_id, vehicle_id, stored_seq)
SELECT * FROM unnest(%s::text[], %s::text[], %s::bigint[])
ON CONFLICT (tenant_id, vehicle_id) DO UPDATE
SET stored_seq = GREATEST(ingest_watermarks.stored_seq, EXCLUDED.stored_seq), updated_at = now()
"""

_SEED = """
SELECT l.tenant_id, l.vehicle_id, (extract(epoch FROM l.time) * 1000000)::bigint, l.lat, l.lon
FROM vehicle_latest l JOIN unnest(%s::text[], %s::text[]) AS k(t, v)
  ON l.tenant_id = k.t AND l.vehicle_id = k.v
"""

_NEIGHBOURS = f"""
SELECT x.t,
       (extract(epoch FROM p.time) * 1000000)::bigint, p.lat, p.lon,
       (extract(epoch FROM n.time) * 1000000)::bigint, n.lat, n.lon
FROM unnest(%(times)s::bigint[]) AS x(t)
LEFT JOIN LATERAL (
    SELECT time, lat, lon FROM fixes
    WHERE tenant_id = %(tenant)s AND vehicle_id = %(vehicle)s AND time < {_TS.format("x.t")}
    ORDER BY time DESC LIMIT 1) p ON true
LEFT JOIN LATERAL (
    SELECT time, lat, lon FROM fixes
    WHERE tenant_id = %(tenant)s AND vehicle_id = %(vehicle)s AND time > {_TS.format("x.t")}
    ORDER BY time LIMIT 1) n ON true
ORDER BY x.t
"""


def _ts(us: int) -> datetime:
    return datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000)


def binary_copy(vix: np.ndarray[Any, Any], cols: dict[str, np.ndarray[Any, Any]]) -> bytes:
    """The staging rows in PostgreSQL's binary COPY format, built without a Python loop."""
    rows = np.empty(len(vix), dtype=_ROW_DTYPE)
    rows["n"] = len(_STAGE_COLUMNS)
    for c in _STAGE_COLUMNS:
        rows[f"l_{c}"] = 8
        rows[c] = vix if c == "vix" else cols[c]
    return _PG_HEADER + rows.tobytes() + _PG_TRAILER


@dataclass
class StoreStats:
    """Counters the store exposes (read by the demo, the benchmark and the tests)."""

    records: int = 0
    fixes_in: int = 0
    fixes_stored: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    db_retries: int = 0
    last_commit_ms: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class _Batch:
    parts: list[tuple[int, TelemetryColumns]] = field(default_factory=list)
    quarantine: list[tuple[Any, ...]] = field(default_factory=list)
    # (tenant, vehicle) -> seq ranges in this batch, for the end-to-end acknowledgement
    ranges: dict[tuple[str, str], list[tuple[int, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    fixes: int = 0


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]  # untyped base
    def __init__(self, store: Store) -> None:
        self.store = store

    def on_partitions_revoked(self, revoked: object) -> None:
        pass

    def on_partitions_assigned(self, assigned: object) -> None:
        # Another store may have written our new vehicles meanwhile: re-seed from the database.
        self.store.screen.last.clear()
        self.store._seeded.clear()


class Store:
    """One store consumer; several in the same group split the partitions."""

    def __init__(
        self,
        settings: StoreSettings,
        limits: validate.Limits | None = None,
        metrics: IngestMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.limits = limits or validate.Limits(
            future_tolerance_s=settings.future_tolerance_s,
            max_age_s=settings.max_age_s,
            max_speed_mps=settings.max_speed_mps,
        )
        self.topics = KafkaTopics(settings.kafka_topic_prefix)
        self.stats = StoreStats()
        self.metrics = metrics or IngestMetrics("store")
        self.screen = Screen(self.limits)
        self._vix: dict[tuple[str, str], int] = {}
        self._keys: list[tuple[str, str]] = []
        self._staged_vix = 0  # stage_vehicles holds indices below this (committed)
        self._seeded: set[int] = set()
        self._stop = threading.Event()
        ensure_topics(settings)
        self.conn: psycopg.Connection[Any] = self._connect()
        self.consumer: KafkaConsumer = make_consumer(
            settings,
            group=settings.consumer_group,
            topics=[self.topics.telemetry, self.topics.quarantine],
            client_id="flota-store",
            listener=_Rebalance(self),
        )
        self.producer: KafkaProducer = make_producer(settings, client_id="flota-store")

    # --- the database connection ----------------------------------------------------------
    def _connect(self) -> psycopg.Connection[Any]:
        conn = connect(self.settings.database_url.get_secret_value())
        conn.execute(_SETUP)
        conn.commit()
        self._staged_vix = 0
        return conn

    def _reconnect(self) -> None:
        """Wait for the database to come back (a restart, a failover); until stopped."""
        with contextlib.suppress(psycopg.Error):
            self.conn.close()
        delay = 0.2
        while not self._stop.is_set():
            try:
                self.conn = self._connect()
                log.info("database connection re-established")
                return
            except (DbUnavailableError, psycopg.Error) as err:
                log.warning("database unavailable, retrying in %.1f s: %s", delay, err)
                self._stop.wait(delay)
                delay = min(delay * 2, 5.0)

    # --- decoding -------------------------------------------------------------------------
    def _index(self, key: tuple[str, str]) -> int:
        v = self._vix.get(key)
        if v is None:
            v = self._vix[key] = len(self._keys)
            self._keys.append(key)
        return v

    def _telemetry(self, rec: ConsumerRecord, batch: _Batch, received: datetime) -> None:
        tenant, _, vehicle = (rec.key or b"").decode(errors="replace").partition("/")
        try:
            cols = decode_telemetry_columns(rec.value)
        except WireError as err:  # the bridge checked it; a corrupt Kafka record still counts
            batch.quarantine.append(
                (received, validate.DECODE, tenant, vehicle, None, None, None, rec.value, str(err))
            )
            return
        if not cols.seq:
            return
        key = (tenant, vehicle)
        batch.parts.append((self._index(key), cols))
        batch.fixes += len(cols.seq)
        # Quarantined fixes are acknowledged too: they are durably kept, just elsewhere.
        batch.ranges[key].append((cols.seq[0], cols.seq[-1]))

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

    # --- screening against the stored history ---------------------------------------------
    def _seed(self, vixs: Sequence[int]) -> None:
        """Remember each new vehicle's latest stored fix, so the jump check survives restarts."""
        new = [v for v in vixs if v not in self._seeded]
        if not new:
            return
        keys = [self._keys[v] for v in new]
        rows = self.conn.execute(_SEED, ([k[0] for k in keys], [k[1] for k in keys])).fetchall()
        for tenant, vehicle, t_us, lat, lon in rows:
            v = self._vix[(tenant, vehicle)]
            known = self.screen.last.get(v)
            if known is None or t_us > known[0]:
                self.screen.last[v] = (int(t_us), round(lat * 1e6), round(lon * 1e6))
        self._seeded.update(new)

    def _neighbours(self, v: int, times: Sequence[int]) -> list[tuple[Point | None, Point | None]]:
        if not times:
            return []
        tenant, vehicle = self._keys[v]
        rows = self.conn.execute(
            _NEIGHBOURS, {"times": list(times), "tenant": tenant, "vehicle": vehicle}
        ).fetchall()

        def point(t: Any, lat: Any, lon: Any) -> Point | None:
            return None if t is None else (int(t), round(lat * 1e6), round(lon * 1e6))

        return [(point(*r[1:4]), point(*r[4:7])) for r in rows]

    # --- the transaction ------------------------------------------------------------------
    def _write(self, screened: Screened, batch: _Batch, received: datetime) -> tuple[int, int]:
        """Write one batch in one transaction; return (stored, duplicates)."""
        cur = self.conn.cursor()
        stored = duplicates = 0
        if len(screened):
            if len(self._keys) > self._staged_vix:
                with cur.copy("COPY stage_vehicles (vix, tenant_id, vehicle_id) FROM STDIN") as cp:
                    for v in range(self._staged_vix, len(self._keys)):
                        cp.write_row((v, *self._keys[v]))
            with cur.copy(
                f"COPY fixes_stage ({', '.join(_STAGE_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
            ) as cp:
                cp.write(binary_copy(screened.vix, screened.cols))
            counts = cur.execute(_MOVE).fetchone()
            assert counts is not None
            stored, duplicates = int(counts[0]), int(counts[1])
        rows = batch.quarantine + [
            (received, r.reason, *self._keys[r.vix], None, r.seq, _ts(r.time_us), None, "")
            for r in screened.rejected
        ]
        if rows:
            with cur.copy(f"COPY quarantine ({', '.join(_QUARANTINE_COLUMNS)}) FROM STDIN") as cp:
                for row in rows:
                    cp.write_row(row)
        if batch.ranges:
            marks = [(t, v, max(last for _, last in r)) for (t, v), r in batch.ranges.items()]
            cur.execute(_WATERMARKS, ([m[0] for m in marks], [m[1] for m in marks],
                                      [m[2] for m in marks]))  # fmt: skip
        self.conn.commit()
        self._staged_vix = len(self._keys)
        return stored, duplicates

    def _acknowledge(self, batch: _Batch) -> None:
        from flota_wire.acks import encode_stored_ack

        now_us = int(time.time() * 1e6)
        for (tenant, vehicle), ranges in batch.ranges.items():
            payload = encode_stored_ack(ranges, time_us=now_us)
            self.producer.send(
                self.topics.stored, key=f"{tenant}/{vehicle}".encode(), value=payload
            )
        try:
            self.producer.flush(timeout=30)
        except KafkaError as err:  # the device resends; the resend is a counted duplicate
            log.warning("stored-acks not delivered: %s", err)
            self.metrics.errors.labels("store", "ack").inc()

    def _attempt(self, batch: _Batch, received: datetime, now_us: int) -> tuple[Screened, int, int]:
        vix, cols = gather(batch.parts)
        self._seed(sorted({v for v, _ in batch.parts}))
        screened = self.screen.screen(vix, cols, now_us=now_us, neighbours=self._neighbours)
        stored, duplicates = self._write(screened, batch, received)
        return screened, stored, duplicates

    def process(self, records: list[ConsumerRecord]) -> None:
        """Decode, screen, write, commit offsets, acknowledge: one batch of records."""
        now_us = int(time.time() * 1e6)
        received = _ts(now_us)
        batch = _Batch()
        m = self.metrics
        for rec in records:
            if rec.topic == self.topics.quarantine:
                self._bridge_quarantine(rec, batch)
                m.messages_in.labels("store", "quarantine").inc()
            else:
                self._telemetry(rec, batch, received)
                m.messages_in.labels("store", "telemetry").inc()
        t0 = time.perf_counter()
        while True:
            try:
                screened, stored, duplicates = self._attempt(batch, received, now_us)
                break
            except psycopg.Error as err:
                # Nothing of this batch is committed: forget what the screen learned from it,
                # wait for the database, and write the same batch again.
                log.warning("database write failed (%s); retrying the batch", err)
                m.errors.labels("store", "database").inc()
                self.stats.db_retries += 1
                self.screen.last.clear()
                self._seeded.clear()
                if not self.conn.closed and not self.conn.broken:
                    with contextlib.suppress(psycopg.Error):
                        self.conn.rollback()
                if self.conn.closed or self.conn.broken:
                    self._reconnect()
                if self._stop.is_set():
                    return
        write_s = time.perf_counter() - t0
        try:
            self.consumer.commit()
        except KafkaError as err:  # replayed later: harmless, the unique keys refuse it
            log.warning("offset commit failed: %s", err)
            m.errors.labels("store", "offset_commit").inc()
        self._acknowledge(batch)
        reasons = Counter(q[1] for q in batch.quarantine)
        reasons.update(r.reason for r in screened.rejected)
        reasons[validate.DUPLICATE] += duplicates
        reasons = +reasons
        for reason, n in reasons.items():
            m.quarantine(reason, n)
        m.fixes_in.labels("store").inc(batch.fixes)
        m.fixes_stored.labels("store").inc(stored)
        m.batch_records.labels("store").observe(len(records))
        m.batch_fixes.labels("store").observe(batch.fixes)
        m.write_seconds.labels("store").observe(write_s)
        m.messages_out.labels("store", "stored_acks").inc(len(batch.ranges))
        with self.stats.lock:
            self.stats.records += len(records)
            self.stats.fixes_in += batch.fixes
            self.stats.fixes_stored += stored
            self.stats.quarantined.update(reasons)
            self.stats.batches += 1
            self.stats.last_commit_ms = write_s * 1000

    def _lag(self) -> None:
        for tp in self.consumer.assignment():
            high = self.consumer.highwater(tp)
            if high is None:
                continue
            try:
                pos = self.consumer.position(tp, timeout_ms=100)
            except KafkaError:
                continue
            if pos is not None:
                self.metrics.consumer_lag.labels("store", tp.topic, str(tp.partition)).set(
                    max(0, high - pos)
                )

    def run(self, stop: threading.Event | None = None) -> None:
        """Consume until ``stop`` is set."""
        if stop is not None:
            self._stop = stop
        last_lag = 0.0
        try:
            while not self._stop.is_set():
                polled = self.consumer.poll(
                    timeout_ms=self.settings.batch_max_wait_ms,
                    max_records=self.settings.batch_max_records,
                )
                records = [r for recs in polled.values() for r in recs]
                if records:
                    self.process(records)
                if time.monotonic() - last_lag > 1.0:
                    self._lag()
                    last_lag = time.monotonic()
        finally:
            self.consumer.close(autocommit=False)
            self.producer.close(timeout=5)
            self.conn.close()
