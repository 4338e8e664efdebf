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
import functools
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
from kafka.structs import OffsetAndMetadata, TopicPartition

from cloud.db.connection import connect
from cloud.db.errors import DbUnavailableError
from cloud.ingest import validate
from cloud.ingest.clients import make_consumer, make_producer
from cloud.ingest.kafka_admin import ensure_topics
from cloud.ingest.kafka_topics import KafkaTopics
from cloud.ingest.metrics import IngestMetrics
from cloud.ingest.pgcopy import FIX_COLUMNS, fixes_copy
from cloud.ingest.screen import NULL, Point, Screen, Screened, gather
from cloud.ingest.streams import SETUP as STREAMS_SETUP
from cloud.ingest.streams import StreamRows, time_reason, write_streams
from cloud.settings import StoreSettings
from flota_wire.acks import encode_stored_ack, merge_ranges
from flota_wire.errors import WireError
from flota_wire.jsoncodec import MAX_RANGES, decode_event, decode_sensors
from flota_wire.schema import Stream, VehicleRef
from flota_wire.telemetry import TelemetryColumns, decode_telemetry_columns

log = logging.getLogger(__name__)

_QUARANTINE_COLUMNS = (
    "received_at", "reason", "tenant_id", "vehicle_id", "topic", "seq", "fix_time",
    "payload", "detail",
)  # fmt: skip
_FIX_VALUES = "time, seq, lat, lon, alt_m, speed_mps, track_deg, hdop, sats, fix_mode"
_FIX_COLUMNS = f"tenant_id, vehicle_id, {_FIX_VALUES}"
# The staging table holds the final column types, written in PostgreSQL's binary COPY format
# straight from numpy (no per-row Python). NULL is NaN in the real columns and -1 in sats.
_STAGE = (
    ("vix", "bigint", ">i8"), ("time", "timestamptz", ">i8"), ("seq", "bigint", ">i8"),
    ("lat", "float8", ">f8"), ("lon", "float8", ">f8"), ("alt_m", "real", ">f4"),
    ("speed_mps", "real", ">f4"), ("track_deg", "real", ">f4"), ("hdop", "real", ">f4"),
    ("sats", "smallint", ">i2"), ("fix_mode", "smallint", ">i2"),
)  # fmt: skip
_PG_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_PG_TRAILER = b"\xff\xff"
_ROW_DTYPE = np.dtype(
    [("n", ">i2")] + [f for c, _, t in _STAGE for f in ((f"l_{c}", ">i4"), (c, t))]
)
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01T00:00:00Z, PostgreSQL's timestamp origin
_TS = "timestamptz 'epoch' + {} * interval '1 microsecond'"

_SETUP = """
CREATE TEMP TABLE IF NOT EXISTS fixes_stage ({cols}) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_vehicles (
    vix bigint PRIMARY KEY, tenant_id text NOT NULL, vehicle_id text NOT NULL);
""".format(cols=", ".join(f"{c} {pg} NOT NULL" for c, pg, _ in _STAGE))

_SRC = """
    SELECT v.tenant_id, v.vehicle_id, s.time, s.seq, s.lat, s.lon,
           NULLIF(s.alt_m, 'NaN'), NULLIF(s.speed_mps, 'NaN'), NULLIF(s.track_deg, 'NaN'),
           NULLIF(s.hdop, 'NaN'), NULLIF(s.sats, -1), s.fix_mode
    FROM fixes_stage s JOIN stage_vehicles v USING (vix)"""

_INSERT = f"INSERT INTO fixes ({_FIX_COLUMNS}) {_SRC} ON CONFLICT DO NOTHING"

# Only when some rows were refused: those whose stored row is older than this transaction
# are the duplicates (screening keeps a poll free of repeats, and one vehicle is written by
# one store at a time, so a row with this transaction's now() is one we just inserted).
_DUPLICATES = """
INSERT INTO quarantine (reason, tenant_id, vehicle_id, seq, fix_time, detail)
SELECT 'duplicate', v.tenant_id, v.vehicle_id, s.seq, s.time, ''
FROM fixes_stage s JOIN stage_vehicles v USING (vix)
JOIN fixes f ON f.tenant_id = v.tenant_id AND f.vehicle_id = v.vehicle_id AND f.time = s.time
WHERE f.received_at <> now()
"""

# Each vehicle's newest fix of the batch (picked in numpy, one row per vehicle) raises
# vehicle_latest, never lowers it.
_LATEST = f"""
INSERT INTO vehicle_latest ({_FIX_COLUMNS})
SELECT k.t, k.v, {_TS.format("k.us")}, k.seq, k.lat, k.lon, k.alt, k.speed, k.track, k.hdop,
       k.sats, k.mode
FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::bigint[], %s::float8[], %s::float8[],
            %s::real[], %s::real[], %s::real[], %s::real[], %s::smallint[], %s::smallint[])
     AS k(t, v, us, seq, lat, lon, alt, speed, track, hdop, sats, mode)
ON CONFLICT (tenant_id, vehicle_id) DO UPDATE SET
    time = EXCLUDED.time, seq = EXCLUDED.seq, lat = EXCLUDED.lat, lon = EXCLUDED.lon,
    alt_m = EXCLUDED.alt_m, speed_mps = EXCLUDED.speed_mps, track_deg = EXCLUDED.track_deg,
    hdop = EXCLUDED.hdop, sats = EXCLUDED.sats, fix_mode = EXCLUDED.fix_mode,
    updated_at = now()
WHERE vehicle_latest.time < EXCLUDED.time
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


def _ts_or_none(us: int) -> datetime | None:
    """A quarantined record's own time, or None when no timestamp can hold it (a corrupt
    time far beyond year 9999 is still quarantined, never a crash)."""
    try:
        return _ts(us)
    except (ValueError, OverflowError, OSError):
        return None


def _real(values: np.ndarray[Any, Any], scale: float) -> np.ndarray[Any, Any]:
    out = values / scale
    out[values == NULL] = np.nan
    return out


def binary_copy(vix: np.ndarray[Any, Any], cols: dict[str, np.ndarray[Any, Any]]) -> bytes:
    """The staging rows in PostgreSQL's binary COPY format, built without a Python loop.

    Values are converted exactly as the row-wise path would: degrees = e6 / 1e6 in float64
    (correctly rounded), the float4 columns rounded from float64 once."""
    rows = np.empty(len(vix), dtype=_ROW_DTYPE)
    rows["n"] = len(_STAGE)
    sats = cols["sats"]
    values = {
        "vix": vix,
        "time": cols["time_us"] - _PG_EPOCH_US,
        "seq": cols["seq"],
        "lat": cols["lat_e6"] / 1e6,
        "lon": cols["lon_e6"] / 1e6,
        "alt_m": _real(cols["alt_dm"], 10),
        "speed_mps": _real(cols["speed_cmps"], 100),
        "track_deg": _real(cols["track_cdeg"], 100),
        "hdop": _real(cols["hdop_c"], 100),
        "sats": np.where(sats == NULL, -1, sats),
        "fix_mode": cols["fix_mode"],
    }
    for c, _, t in _STAGE:
        rows[f"l_{c}"] = np.dtype(t).itemsize
        rows[c] = values[c]
    return _PG_HEADER + rows.tobytes() + _PG_TRAILER


def newest_per_vehicle(vix: np.ndarray[Any, Any], time_us: np.ndarray[Any, Any]) -> list[int]:
    """Row indices of each vehicle's newest fix."""
    order = np.lexsort((time_us, vix))
    v = vix[order]
    last = np.r_[v[1:] != v[:-1], True]
    return order[last].tolist()  # type: ignore[no-any-return]


def latest_rows(
    keys: list[tuple[str, str]], vix: np.ndarray[Any, Any], cols: dict[str, np.ndarray[Any, Any]]
) -> tuple[list[Any], ...]:
    """The parameters of ``_LATEST``: each vehicle's newest fix of the batch, NULL as None."""
    newest = newest_per_vehicle(vix, cols["time_us"])
    pick = {c: cols[c][newest].tolist() for c in cols}

    def opt(name: str, scale: float) -> list[Any]:
        return [None if x == NULL else x / scale for x in pick[name]]

    vs = vix[newest].tolist()
    return (
        [keys[v][0] for v in vs], [keys[v][1] for v in vs], pick["time_us"], pick["seq"],
        [x / 1e6 for x in pick["lat_e6"]], [x / 1e6 for x in pick["lon_e6"]],
        opt("alt_dm", 10), opt("speed_cmps", 100), opt("track_cdeg", 100), opt("hdop_c", 100),
        [None if x == NULL else x for x in pick["sats"]], pick["fix_mode"],
    )  # fmt: skip


class StoreInvariantError(RuntimeError):
    """Staged rows neither stored nor found as duplicates: a bug; the batch is not committed."""


@dataclass
class StoreStats:
    """Counters the store exposes (read by the demo, the benchmark and the tests)."""

    records: int = 0
    fixes_in: int = 0
    fixes_stored: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    db_retries: int = 0
    events_stored: int = 0
    samples_stored: int = 0
    stream_duplicates: int = 0  # events and samples sent again (not quarantined: resends)
    direct_refused: int = 0  # batches whose direct COPY met a stored fix (then staged)
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
    streams: StreamRows = field(default_factory=StreamRows)
    # (stream, tenant, vehicle) -> seq ranges of the events and sensor samples in this batch
    acks: dict[tuple[Stream, str, str], list[tuple[int, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    written: tuple[int, int, int, int] = (0, 0, 0, 0)  # events, dups, samples, dups


@dataclass
class _Prepared:
    batch: _Batch
    screened: Screened
    received: datetime
    offsets: dict[TopicPartition, int]
    records: int


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]  # untyped base
    """Runs in kafka-python's IO thread, where no blocking consumer call is allowed: it only
    waits for the database write in flight (so the next owner rarely replays it; a replay would
    be harmless anyway) and tells the loop to re-seed its screen."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def on_partitions_revoked(self, revoked: object) -> None:
        self.store._writer_idle.wait(60)

    def on_partitions_assigned(self, assigned: object) -> None:
        # Another store may have written our new vehicles meanwhile: re-seed from the database.
        self.store._reassigned = True


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
        self._pending_staged_vix = 0
        self._direct = True  # try the direct COPY into fixes first
        self._seeded: set[int] = set()
        self._stop = threading.Event()
        self._writer_idle = threading.Event()
        self._writer_idle.set()
        self._reassigned = False
        self._uncommitted: dict[TopicPartition, int] = {}
        self._inflight: _Prepared | None = None
        self._written: tuple[int, int, float] | None = None
        self._writer_error: BaseException | None = None
        ensure_topics(settings)
        self.conn: psycopg.Connection[Any] = self._connect()
        self.consumer: KafkaConsumer = make_consumer(
            settings,
            group=settings.consumer_group,
            topics=[
                self.topics.telemetry,
                self.topics.events,
                self.topics.sensors,
                self.topics.quarantine,
            ],
            client_id="flota-store",
            listener=_Rebalance(self),
            group_instance_id=settings.group_instance_id,
        )
        self.producer: KafkaProducer = make_producer(settings, client_id="flota-store")

    # --- the database connection ----------------------------------------------------------
    def _connect(self) -> psycopg.Connection[Any]:
        conn = connect(self.settings.database_url.get_secret_value())
        conn.execute(_SETUP)
        conn.execute(STREAMS_SETUP)
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

    def _stream(self, rec: ConsumerRecord, batch: _Batch, received: datetime, now_us: int) -> None:
        """An event or a sensor batch: rows (or quarantine rows) and the seqs to acknowledge."""
        tenant, _, vehicle = (rec.key or b"").decode(errors="replace").partition("/")
        events = rec.topic == self.topics.events
        try:
            if events:
                event = decode_event(rec.value)
                seqs = [event.seq]
            else:
                samples = decode_sensors(rec.value, VehicleRef(tenant, vehicle))
                seqs = [s.seq for s in samples.samples]
        except (WireError, ValueError) as err:  # a bad key is a ValueError of VehicleRef
            batch.quarantine.append(
                (received, validate.DECODE, tenant, vehicle, None, None, None, rec.value, str(err))
            )
            return
        rows = batch.streams
        if events:
            reason = time_reason(event.time_us, now_us, self.limits)
            rows.add_event(tenant, vehicle, event, _ts_or_none, received, reason)
        else:
            reason_of = functools.partial(time_reason, now_us=now_us, limits=self.limits)
            rows.add_sensors(tenant, vehicle, samples, _ts_or_none, received, reason_of)
        stream = Stream.EVENTS if events else Stream.SENSORS
        batch.acks[(stream, tenant, vehicle)].extend((q, q) for q in seqs)

    def _bridge_quarantine(self, rec: ConsumerRecord, batch: _Batch) -> None:
        headers = dict(rec.headers or [])
        tenant, _, vehicle = (rec.key or b"").decode(errors="replace").partition("/")
        try:
            received_ms = int(headers.get("received_ms", b"0") or 0)
            received_at = _ts(received_ms * 1000) if received_ms else None
        except (ValueError, OverflowError, OSError):  # not our bridge's header: now
            received_at = None
        batch.quarantine.append((
            received_at or _ts(int(time.time() * 1e6)),
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
        self._writer_idle.wait()
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
        self._writer_idle.wait()
        tenant, vehicle = self._keys[v]
        rows = self.conn.execute(
            _NEIGHBOURS, {"times": list(times), "tenant": tenant, "vehicle": vehicle}
        ).fetchall()

        def point(t: Any, lat: Any, lon: Any) -> Point | None:
            return None if t is None else (int(t), round(lat * 1e6), round(lon * 1e6))

        return [(point(*r[1:4]), point(*r[4:7])) for r in rows]

    # --- the transaction ------------------------------------------------------------------
    def _copy_direct(self, cur: psycopg.Cursor[Any], screened: Screened) -> bool:
        """The fast path: COPY the batch straight into ``fixes`` (what the raw COPY ceiling
        does), inside a savepoint. A fix already stored (a replay) makes the unique key refuse
        the whole COPY: back to the savepoint, False, and the staging path sorts it out."""
        cur.execute("SAVEPOINT direct")
        try:
            with cur.copy(
                f"COPY fixes ({', '.join(FIX_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
            ) as cp:
                cp.write(fixes_copy(self._keys, screened.vix, screened.cols))
        except psycopg.errors.UniqueViolation:
            cur.execute("ROLLBACK TO SAVEPOINT direct")
            return False
        cur.execute("RELEASE SAVEPOINT direct")
        return True

    def _copy_staged(self, cur: psycopg.Cursor[Any], screened: Screened) -> tuple[int, int]:
        """The replay-proof path: COPY into the staging table, INSERT ... ON CONFLICT DO
        NOTHING, and record the refused rows as duplicates."""
        # The loop's thread may add vehicles meanwhile: stage exactly those known now.
        n_keys = len(self._keys)
        if n_keys > self._staged_vix:
            with cur.copy("COPY stage_vehicles (vix, tenant_id, vehicle_id) FROM STDIN") as cp:
                for v in range(self._staged_vix, n_keys):
                    cp.write_row((v, *self._keys[v]))
        self._pending_staged_vix = n_keys
        with cur.copy(
            f"COPY fixes_stage ({', '.join(c for c, _, _ in _STAGE)}) FROM STDIN (FORMAT BINARY)"
        ) as cp:
            cp.write(binary_copy(screened.vix, screened.cols))
        stored = cur.execute(_INSERT).rowcount
        duplicates = cur.execute(_DUPLICATES).rowcount if stored < len(screened) else 0
        return stored, duplicates

    def _write(self, screened: Screened, batch: _Batch, received: datetime) -> tuple[int, int]:
        """Write one batch in one transaction; return (stored, duplicates)."""
        cur = self.conn.cursor()
        stored = duplicates = 0
        self._pending_staged_vix = self._staged_vix
        if len(screened):
            # After a refused direct COPY (replays after a restart or a rebalance), stay on the
            # staging path until a batch comes through it without a duplicate.
            if self._direct and self._copy_direct(cur, screened):
                stored = len(screened)
            else:
                if self._direct:
                    self.stats.direct_refused += 1
                stored, duplicates = self._copy_staged(cur, screened)
                self._direct = duplicates == 0
            if stored + duplicates != len(screened):  # never lose a row silently
                raise StoreInvariantError(
                    f"{len(screened)} fixes staged, {stored} stored + {duplicates} duplicates"
                )
            cur.execute(_LATEST, latest_rows(self._keys, screened.vix, screened.cols))
        batch.written = write_streams(cur, batch.streams)
        rows = (
            batch.quarantine
            + batch.streams.quarantine
            + [
                (
                    received,
                    r.reason,
                    *self._keys[r.vix],
                    None,
                    r.seq,
                    _ts_or_none(r.time_us),
                    None,
                    f"time_us={r.time_us}",
                )
                for r in screened.rejected
            ]
        )
        if rows:
            with cur.copy(f"COPY quarantine ({', '.join(_QUARANTINE_COLUMNS)}) FROM STDIN") as cp:
                for row in rows:
                    cp.write_row(row)
        if batch.ranges:
            marks = [(t, v, max(last for _, last in r)) for (t, v), r in batch.ranges.items()]
            cur.execute(_WATERMARKS, ([m[0] for m in marks], [m[1] for m in marks],
                                      [m[2] for m in marks]))  # fmt: skip
        self.conn.commit()
        self._staged_vix = self._pending_staged_vix
        return stored, duplicates

    def _acknowledge(self, batch: _Batch) -> int:
        """Publish the stored-acks of every stream of the batch; return how many."""
        now_us = int(time.time() * 1e6)
        todo = [((Stream.TELEMETRY, t, v), r) for (t, v), r in batch.ranges.items()]
        todo += list(batch.acks.items())
        sent = 0
        for (stream, tenant, vehicle), ranges in todo:
            merged = merge_ranges(ranges)
            for i in range(0, len(merged), MAX_RANGES):  # an ack holds at most 256 ranges
                payload = encode_stored_ack(
                    merged[i : i + MAX_RANGES],
                    time_us=now_us,
                    stream=stream,
                    cloud=self.settings.cloud_id,
                )
                self.producer.send(
                    self.topics.stored, key=f"{tenant}/{vehicle}".encode(), value=payload
                )
                sent += 1
        try:
            self.producer.flush(timeout=30)
        except KafkaError as err:  # the device resends; the resend is a counted duplicate
            log.warning("stored-acks not delivered: %s", err)
            self.metrics.errors.labels("store", "ack").inc()
        return sent

    # --- one batch: prepare (decode, screen), write (one transaction), finish ---------------
    def _prepare(self, records: list[ConsumerRecord]) -> _Prepared:
        """Decode and screen. Database reads (seeds, neighbours of late fixes) wait until the
        batch in flight is committed, so they see it."""
        now_us = int(time.time() * 1e6)
        received = _ts(now_us)
        batch = _Batch()
        m = self.metrics
        for rec in records:
            if rec.topic == self.topics.quarantine:
                self._bridge_quarantine(rec, batch)
                m.messages_in.labels("store", "quarantine").inc()
            elif rec.topic == self.topics.telemetry:
                self._telemetry(rec, batch, received)
                m.messages_in.labels("store", "telemetry").inc()
            else:
                self._stream(rec, batch, received, now_us)
                m.messages_in.labels("store", rec.topic.rsplit(".", 2)[-2]).inc()
        offsets: dict[TopicPartition, int] = {}
        for rec in records:
            tp = TopicPartition(rec.topic, rec.partition)
            offsets[tp] = max(offsets.get(tp, 0), rec.offset + 1)
        vix, cols = gather(batch.parts)
        while True:
            try:
                self._seed(sorted({v for v, _ in batch.parts}))
                screened = self.screen.screen(vix, cols, now_us=now_us, neighbours=self._neighbours)
                break
            except psycopg.Error as err:
                self._db_failed(err)
                self.screen.last.clear()  # re-seeded from what is committed
                self._seeded.clear()
                if self._stop.is_set():
                    raise
        return _Prepared(batch, screened, received, offsets, len(records))

    def _db_failed(self, err: psycopg.Error) -> None:
        log.warning("database failed (%s); waiting for it", err)
        self.metrics.errors.labels("store", "database").inc()
        self.stats.db_retries += 1
        if not self.conn.closed and not self.conn.broken:
            with contextlib.suppress(psycopg.Error):
                self.conn.rollback()
        if self.conn.closed or self.conn.broken:
            self._reconnect()

    def _write_until_stored(self, prep: _Prepared) -> tuple[int, int, float]:
        """The transaction, retried (same rows) until it commits; nothing is committed to Kafka
        before it does."""
        t0 = time.perf_counter()
        while True:
            try:
                stored, duplicates = self._write(prep.screened, prep.batch, prep.received)
                return stored, duplicates, time.perf_counter() - t0
            except psycopg.Error as err:
                self._db_failed(err)
                if self._stop.is_set():
                    raise

    def _commit_offsets(self, offsets: dict[TopicPartition, int]) -> None:
        """Commit these offsets (and any a failed commit left behind, for partitions still
        ours). A commit refused during a rebalance is retried after it; a commit never made
        only means a replay, which the unique keys make harmless but costly."""
        for tp, off in offsets.items():
            self._uncommitted[tp] = max(off, self._uncommitted.get(tp, 0))
        mine = self.consumer.assignment()
        todo = {tp: off for tp, off in self._uncommitted.items() if tp in mine}
        if not todo:
            self._uncommitted.clear()
            return
        try:
            self.consumer.commit({tp: OffsetAndMetadata(off, "", -1) for tp, off in todo.items()})
            self._uncommitted.clear()
        except KafkaError as err:
            log.warning("offset commit failed (retried after the next poll): %s", err)
            self.metrics.errors.labels("store", "offset_commit").inc()

    def _finish(self, prep: _Prepared, stored: int, duplicates: int, write_s: float) -> None:
        """After the database commit: offsets, stored-acks, metrics."""
        m = self.metrics
        self._commit_offsets(prep.offsets)
        batch, screened = prep.batch, prep.screened
        acks = self._acknowledge(batch)
        reasons = Counter(q[1] for q in batch.quarantine + batch.streams.quarantine)
        reasons.update(r.reason for r in screened.rejected)
        reasons[validate.DUPLICATE] += duplicates
        reasons = +reasons
        for reason, n in reasons.items():
            m.quarantine(reason, n)
        m.fixes_in.labels("store").inc(batch.fixes)
        m.fixes_stored.labels("store").inc(stored)
        m.batch_records.labels("store").observe(prep.records)
        m.batch_fixes.labels("store").observe(batch.fixes)
        m.write_seconds.labels("store").observe(write_s)
        m.messages_out.labels("store", "stored_acks").inc(acks)
        events, event_dups, samples, sample_dups = batch.written
        m.messages_out.labels("store", "events").inc(events)
        m.messages_out.labels("store", "sensor_samples").inc(samples)
        with self.stats.lock:
            self.stats.records += prep.records
            self.stats.fixes_in += batch.fixes
            self.stats.fixes_stored += stored
            self.stats.quarantined.update(reasons)
            self.stats.batches += 1
            self.stats.events_stored += events
            self.stats.samples_stored += samples
            self.stats.stream_duplicates += event_dups + sample_dups
            self.stats.last_commit_ms = write_s * 1000

    def process(self, records: list[ConsumerRecord]) -> None:
        """Decode, screen, write, commit offsets, acknowledge: one batch, synchronously."""
        self._complete_inflight()
        prep = self._prepare(records)
        self._finish(prep, *self._write_until_stored(prep))

    # --- the pipeline: batch N is written while batch N+1 is decoded and screened ----------
    # Only the database transaction runs in the writer thread; the Kafka consumer (offsets) is
    # used from the loop's thread alone.
    def _submit(self, prep: _Prepared) -> None:
        def work() -> None:
            try:
                self._written = self._write_until_stored(prep)
            except BaseException as err:  # surfaced by _complete_inflight in the loop's thread
                self._writer_error = err
            finally:
                self._writer_idle.set()

        self._inflight = prep
        self._written = None
        self._writer_idle.clear()
        threading.Thread(target=work, name="store-writer", daemon=True).start()

    def _complete_inflight(self) -> None:
        """Wait for the batch in flight to commit, then commit its offsets and acknowledge."""
        self._writer_idle.wait()
        prep, self._inflight = self._inflight, None
        if self._writer_error is not None:
            err, self._writer_error = self._writer_error, None
            raise err
        if prep is not None and self._written is not None:
            self._finish(prep, *self._written)

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
                if self._reassigned:
                    self._complete_inflight()  # its seeds must be visible first
                    self._reassigned = False
                    self.screen.last.clear()
                    self._seeded.clear()
                if records:
                    prep = self._prepare(records)
                    self._complete_inflight()  # batch N committed, then its offsets and acks
                    self._submit(prep)
                elif self._writer_idle.is_set():
                    self._complete_inflight()
                    if self._uncommitted:
                        self._commit_offsets({})
                if time.monotonic() - last_lag > 1.0:
                    self._lag()
                    last_lag = time.monotonic()
            self._complete_inflight()
        finally:
            self._writer_idle.wait(30)
            self.consumer.close(autocommit=False)
            self.producer.close(timeout=5)
            self.conn.close()
