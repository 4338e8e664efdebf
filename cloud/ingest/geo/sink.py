"""The event sink: domain events from Kafka into the ``events`` table.

Per batch: COPY into a temporary staging table, INSERT ... SELECT ... ON CONFLICT DO NOTHING
(the primary key (tenant, vehicle, kind, event_key, time) makes a replayed event the same row),
commit, and only then commit the Kafka offsets. A crash anywhere replays the batch harmlessly.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psycopg
from kafka import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord

from cloud.db.connection import connect
from cloud.ingest.clients import make_consumer
from cloud.ingest.geo.config import GeoSettings
from cloud.ingest.geo.events import DomainEvent, DomainEventError
from cloud.ingest.geo.repo import ts
from cloud.ingest.kafka_admin import ensure_topics
from cloud.ingest.kafka_topics import KafkaTopics
from cloud.ingest.metrics import IngestMetrics

log = logging.getLogger(__name__)

_COLUMNS = ("tenant_id", "vehicle_id", "time", "kind", "event_key", "source", "seq", "detail")


@dataclass
class SinkStats:
    records: int = 0
    stored: int = 0
    duplicates: int = 0
    bad: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


class EventSink:
    """One sink consumer; several in the same group split the partitions."""

    def __init__(self, settings: GeoSettings, metrics: IngestMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or IngestMetrics("geo-sink")
        self.topics = KafkaTopics(settings.kafka_topic_prefix)
        self.stats = SinkStats()
        self._stop = threading.Event()
        ensure_topics(settings)
        self.conn: psycopg.Connection[Any] = connect(settings.database_url.get_secret_value())
        self.conn.execute(
            "CREATE TEMP TABLE events_stage (LIKE events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        self.conn.commit()
        self.consumer: KafkaConsumer = make_consumer(
            settings,
            group=settings.geo_sink_group,
            topics=[self.topics.domain_events],
            client_id="flota-geo-sink",
        )

    def process(self, records: list[ConsumerRecord]) -> int:
        """Store one batch; return how many rows were new."""
        rows = []
        bad: Counter[str] = Counter()
        for rec in records:
            try:
                e = DomainEvent.decode(rec.value)
            except DomainEventError as err:
                bad["decode"] += 1
                log.warning("sink: bad domain event at %s:%d: %s", rec.topic, rec.offset, err)
                continue
            rows.append((e.tenant, e.vehicle, ts(e.time_us), e.kind, e.event_key, e.source,
                         e.seq, json.dumps(e.detail)))  # fmt: skip
        stored = 0
        if rows:
            cols = ", ".join(_COLUMNS)
            try:
                with self.conn.cursor() as cur:
                    with cur.copy(f"COPY events_stage ({cols}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
                    cur.execute(
                        f"WITH ins AS (INSERT INTO events ({cols}) SELECT {cols} FROM events_stage"
                        " ON CONFLICT DO NOTHING RETURNING 1) SELECT count(*) FROM ins"
                    )
                    got = cur.fetchone()
                    stored = int(got[0]) if got else 0
                self.conn.commit()
            except psycopg.Error:
                self.conn.rollback()
                self.metrics.errors.labels(self.metrics.process, "database").inc()
                raise
        self.consumer.commit()
        m, p = self.metrics, self.metrics.process
        m.messages_in.labels(p, self.topics.domain_events).inc(len(records))
        m.messages_out.labels(p, "events").inc(stored)
        m.quarantine("duplicate", len(rows) - stored)
        for reason, n in bad.items():
            m.quarantine(reason, n)
        with self.stats.lock:
            self.stats.records += len(records)
            self.stats.stored += stored
            self.stats.duplicates += len(rows) - stored
            self.stats.bad.update(bad)
        return stored

    def run(self, stop: threading.Event | None = None) -> None:
        if stop is not None:
            self._stop = stop
        try:
            while not self._stop.is_set():
                polled = self.consumer.poll(timeout_ms=200, max_records=5000)
                records = [r for recs in polled.values() for r in recs]
                if records:
                    self.process(records)
        finally:
            self.consumer.close(autocommit=False)
            self.conn.close()
