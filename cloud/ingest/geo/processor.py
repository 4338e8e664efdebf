"""The geo processor loop: telemetry and vehicle events in, domain events out.

Per batch: apply every record to its vehicle's state (records keyed by vehicle keep each
vehicle's order within a partition); publish the domain events and wait for Kafka's
acknowledgement; then, in ONE database transaction, save the touched vehicles' states together
with the next input offset of every partition; then commit the same offsets to Kafka (for lag
monitoring only). On (re)assignment the processor seeks to the offsets in the database, so the
state and the input position always agree: state transitions are exactly-once. A crash between
publishing and the database commit replays the batch from the previous state and publishes the
same events again (same keys), which the sink's ON CONFLICT makes harmless: events are
at-least-once on Kafka and exactly-once in the table.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psycopg
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import OffsetAndMetadata

from cloud.db.connection import connect
from cloud.ingest import validate
from cloud.ingest.clients import make_consumer, make_producer
from cloud.ingest.geo import repo
from cloud.ingest.geo.config import GeoRules, GeoSettings
from cloud.ingest.geo.events import DomainEvent
from cloud.ingest.geo.fences import FenceIndex, Geofence
from cloud.ingest.geo.machine import FixIn, Tracker
from cloud.ingest.geo.state import VehicleState
from cloud.ingest.kafka_admin import ensure_topics
from cloud.ingest.kafka_topics import KafkaTopics, vehicle_key
from cloud.ingest.metrics import IngestMetrics
from flota_wire.errors import WireError
from flota_wire.jsoncodec import decode_event
from flota_wire.telemetry import decode_telemetry_columns

log = logging.getLogger(__name__)


@dataclass
class GeoStats:
    """Counters the processor exposes (tests, demo, metrics)."""

    records: int = 0
    fixes: Counter[str] = field(default_factory=Counter)  # used / late / jump / bad reasons
    vehicle_events: int = 0
    bad_records: Counter[str] = field(default_factory=Counter)
    published: Counter[str] = field(default_factory=Counter)  # per domain-event kind
    batches: int = 0
    fences: int = 0
    bad_fences: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Reassign(ConsumerRebalanceListener):  # type: ignore[misc]
    """Seek newly assigned partitions to the offsets saved with the state."""

    def __init__(self, proc: GeoProcessor) -> None:
        self.proc = proc

    def on_partitions_revoked(self, revoked: Any) -> None:
        # Every batch is fully committed before the next poll: nothing to flush.
        pass

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.proc.on_assigned(list(assigned))


class GeoProcessor:
    """One geo processor; several in the same group split the partitions."""

    def __init__(
        self,
        settings: GeoSettings,
        rules: GeoRules | None = None,
        limits: validate.Limits | None = None,
        metrics: IngestMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or IngestMetrics("geo")
        self.rules = rules or GeoRules()
        self.limits = limits or validate.Limits()
        self.topics = KafkaTopics(settings.kafka_topic_prefix)
        self.group = settings.geo_consumer_group
        self.stats = GeoStats()
        self._states: dict[tuple[str, str], VehicleState] = {}
        self._tenant_rules: dict[str, GeoRules] = {}
        self.fences = FenceIndex([])
        self._fence_set: frozenset[Geofence] = frozenset()
        self._fences_at = 0.0
        self._stop = threading.Event()
        ensure_topics(settings)
        self.conn: psycopg.Connection[Any] = connect(settings.database_url.get_secret_value())
        self.refresh(force=True)
        # Same key -> same partition number on both topics; the range assignor hands partition
        # i of both topics to one member, so one member sees all of a vehicle's input. The
        # listener seeks newly assigned partitions to the offsets saved with the state.
        self.consumer: KafkaConsumer = make_consumer(
            settings,
            group=self.group,
            topics=[self.topics.telemetry, self.topics.events],
            client_id="flota-geo",
            listener=_Reassign(self),
        )
        self.producer: KafkaProducer = make_producer(settings, client_id="flota-geo")

    # --- configuration ----------------------------------------------------------------------
    def refresh(self, force: bool = False) -> None:
        """Reload geofences and tenant rules when the refresh interval has passed."""
        now = time.monotonic()
        if not force and now - self._fences_at < self.settings.geo_fence_refresh_s:
            return
        fences, bad = repo.load_fences(self.conn)
        self._tenant_rules = repo.load_rules(self.conn, defaults=self.rules)
        self.conn.commit()
        if frozenset(fences) != self._fence_set:  # rebuilding costs ms per fence: only on change
            self.fences = FenceIndex(fences, resolution=self.settings.geo_h3_resolution)
            self._fence_set = frozenset(fences)
        self._fences_at = now
        with self.stats.lock:
            self.stats.fences, self.stats.bad_fences = len(fences), bad

    def on_assigned(self, assigned: list[TopicPartition]) -> None:
        self._states.clear()  # re-read from the database: it is the committed truth
        saved = repo.load_offsets(self.conn, group=self.group)
        self.conn.commit()
        for tp in assigned:
            offset = saved.get((tp.topic, tp.partition))
            if offset is not None:
                self.consumer.seek(tp, offset)
        log.info("geo: assigned %d partitions", len(assigned))

    # --- one batch --------------------------------------------------------------------------
    def _state(self, tenant: str, vehicle: str) -> VehicleState:
        key = (tenant, vehicle)
        st = self._states.get(key)
        if st is None:
            st = repo.load_state(self.conn, group=self.group, tenant=tenant, vehicle=vehicle)
            self._states[key] = st
        return st

    def _apply(self, rec: ConsumerRecord, out: list[DomainEvent], touched: set[Any]) -> None:
        tenant, _, vehicle = (rec.key or b"").decode(errors="replace").partition("/")
        if not tenant or not vehicle or rec.value is None:
            self.stats.bad_records["key" if rec.value is not None else "empty"] += 1
            log.warning("geo: record without a tenant/vehicle key or value at %s:%d",
                        rec.topic, rec.offset)  # fmt: skip
            return
        if rec.topic == self.topics.telemetry:
            try:
                cols = decode_telemetry_columns(rec.value)
            except WireError as err:
                self.stats.bad_records["decode"] += 1
                log.warning("geo: undecodable telemetry of %s/%s: %s", tenant, vehicle, err)
                return
            tracker = self._tracker(tenant, vehicle, out)
            touched.add((tenant, vehicle))
            now_us = int(time.time() * 1e6)
            for i in range(len(cols)):
                lat, lon, t, v = cols.lat_e6[i], cols.lon_e6[i], cols.time_us[i], cols.speed_cmps[i]
                reason = validate.check_fix(
                    lat, lon, time_us=t, speed_cmps=v, now_us=now_us, limits=self.limits
                )
                if reason is not None:
                    self.stats.fixes[reason] += 1
                    continue
                fix = FixIn(t, lat / 1e6, lon / 1e6, None if v is None else v / 100)
                self.stats.fixes[tracker.on_fix(fix)] += 1
        else:
            try:
                event = decode_event(rec.value)
            except WireError as err:
                self.stats.bad_records["decode"] += 1
                log.warning("geo: undecodable event of %s/%s: %s", tenant, vehicle, err)
                return
            self.stats.vehicle_events += 1
            touched.add((tenant, vehicle))
            self._tracker(tenant, vehicle, out).on_vehicle_event(event)

    def _tracker(self, tenant: str, vehicle: str, out: list[DomainEvent]) -> Tracker:
        rules = self._tenant_rules.get(tenant, self.rules)
        return Tracker(tenant, vehicle, self._state(tenant, vehicle), rules, self.fences, out)

    def process(self, records: list[ConsumerRecord]) -> list[DomainEvent]:
        """Apply, publish, save state with offsets, commit offsets: one batch."""
        out: list[DomainEvent] = []
        touched: set[tuple[str, str]] = set()
        offsets: dict[tuple[str, int], int] = {}
        with self.stats.lock:
            fixes_before = Counter(self.stats.fixes)
            for rec in records:
                offsets[(rec.topic, rec.partition)] = rec.offset + 1
                self._apply(rec, out, touched)
        try:
            futures = [
                self.producer.send(
                    self.topics.domain_events,
                    key=vehicle_key(e.tenant, e.vehicle),
                    value=e.encode(),
                )
                for e in out
            ]
            self.producer.flush(timeout=30)
            for fut in futures:
                fut.get(timeout=30)  # raises if Kafka refused it: the batch is not committed
            t0 = time.perf_counter()
            repo.save(
                self.conn,
                group=self.group,
                states=[(t, v, self._states[(t, v)]) for t, v in sorted(touched)],
                offsets=offsets,
            )
            self.conn.commit()
            self.metrics.write_seconds.labels(self.metrics.process).observe(
                time.perf_counter() - t0
            )
        except BaseException:
            self.metrics.errors.labels(self.metrics.process, "batch").inc()
            # The in-memory states ran ahead of the database: forget them and rewind the input
            # to what the database holds, so a caller that retries replays this batch.
            self.conn.rollback()
            self.on_assigned(list(self.consumer.assignment()))
            raise
        self.consumer.commit(
            {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in offsets.items()}
        )
        with self.stats.lock:
            self.stats.records += len(records)
            self.stats.batches += 1
            self.stats.published.update(e.kind for e in out)
        self._count(records, out, fixes_before)
        return out

    def _count(
        self, records: list[ConsumerRecord], out: list[DomainEvent], before: Counter[str]
    ) -> None:
        """Prometheus: records in per topic, events out per kind, fixes not used per reason."""
        m, p = self.metrics, self.metrics.process
        for topic, n in Counter(r.topic for r in records).items():
            m.messages_in.labels(p, topic).inc(n)
        for kind, n in Counter(e.kind for e in out).items():
            m.messages_out.labels(p, kind).inc(n)
        with self.stats.lock:
            delta = self.stats.fixes - before
        m.fixes_in.labels(p).inc(sum(delta.values()))
        for reason, n in delta.items():
            if reason != "used":
                m.quarantine(str(reason), n)  # fixes the rules ignored: late, jump, bad
        m.batch_records.labels(p).observe(len(records))

    def run(self, stop: threading.Event | None = None) -> None:
        """Consume until ``stop`` is set."""
        if stop is not None:
            self._stop = stop
        try:
            while not self._stop.is_set():
                self.refresh()
                polled = self.consumer.poll(
                    timeout_ms=self.settings.geo_batch_max_wait_ms,
                    max_records=self.settings.geo_batch_max_records,
                )
                records = [r for recs in polled.values() for r in recs]
                if records:
                    self.process(records)
        finally:
            self.consumer.close(autocommit=False)
            self.producer.close(timeout=5)
            self.conn.close()
