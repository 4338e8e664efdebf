"""`flota optimize serve`: the live dispatch service (Kafka in, route-plan commands out).

One loop: poll the orders, domain-events and command-acks topics; apply each record to the
dispatcher's memory and write it to the database; commit the database, then the offsets (a
crash replays at most the last batch, and every write is an idempotent upsert). Then ask the
dispatcher which depots are due, re-optimise them, reserve each changed plan's version in
`dispatch_plans`, and only then produce the commands (keyed by vehicle; the bridge delivers
them). One process serves all depots (see docs/dispatch.md, "Scaling out").
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from kafka import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError

from cloud.db.connection import connect
from cloud.db.errors import DbUnavailableError
from cloud.ingest.clients import make_consumer, make_producer
from cloud.ingest.kafka_topics import KafkaTopics, vehicle_key
from cloud.optimizer.dispatch import store
from cloud.optimizer.dispatch.commands import plan_command
from cloud.optimizer.dispatch.dispatcher import (
    PLAN_COMMAND_ID,
    DispatchConfig,
    Dispatcher,
)
from cloud.optimizer.dispatch.messages import (
    STOP_COMPLETED,
    CancelDoc,
    DepotDoc,
    MessageError,
    OrderDoc,
    VehicleDoc,
    parse_domain_event,
    parse_orders_doc,
)
from cloud.optimizer.dispatch.metrics import DispatchMetrics
from cloud.optimizer.dispatch.planner import PlannerConfig
from cloud.optimizer.dispatch.state import DepotKey, VehiclePlan
from cloud.optimizer.dispatch.topics import ensure_dispatch_topics, orders_topic
from cloud.optimizer.matrix import ConstantSpeed, SpeedProvider
from cloud.optimizer.speeds import store as speed_store
from cloud.optimizer.speeds.cache import SpeedCache
from cloud.optimizer.speeds.model import LearnedSpeeds
from cloud.settings import DispatchSettings
from flota_wire import AckStatus, Channel, CommandAck, WireError, decode, encode, topic

log = logging.getLogger(__name__)

APP_NAME = "flota-dispatch"
# Losing the database connection is survivable: reconnect, reload the memory, replay from the
# committed offsets. Any other error is a bug and stops the service.
_DB_LOST = (psycopg.OperationalError, psycopg.InterfaceError, DbUnavailableError)


def config_from(
    settings: DispatchSettings, speeds: Callable[[str], SpeedProvider] | None = None
) -> DispatchConfig:
    return DispatchConfig(
        min_interval_s=settings.dispatch_min_interval_s,
        settle_s=settings.dispatch_settle_s,
        refresh_s=settings.dispatch_refresh_s,
        late_after_s=settings.dispatch_late_after_s,
        position_check_s=settings.dispatch_position_check_s,
        eta_tolerance_s=settings.dispatch_eta_tolerance_s,
        planner=PlannerConfig(
            time_limit_s=settings.dispatch_time_limit_s,
            circuity=settings.dispatch_circuity,
            speed_mps=settings.dispatch_speed_mps,
            position_max_age_s=settings.dispatch_position_max_age_s,
            speeds=speeds,
        ),
    )


@dataclass
class DispatchStats:
    """Counters (tests and logs read them); the same events feed `DispatchMetrics`."""

    records: Counter[str] = field(default_factory=Counter)
    bad: Counter[str] = field(default_factory=Counter)  # per reason
    replans: int = 0
    plans_pushed: int = 0
    acks_recorded: int = 0
    recoveries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class DispatchService:
    def __init__(
        self,
        settings: DispatchSettings,
        *,
        clock: Callable[[], float] = time.time,
        dispatcher: Dispatcher | None = None,
        metrics: DispatchMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.topics = KafkaTopics(settings.kafka_topic_prefix)
        self.orders_topic = orders_topic(settings.kafka_topic_prefix)
        self.conn = self._connect()
        # Learned travel speeds (flota optimize learn-speeds), re-read when a new model is stored.
        self._speeds_conn: psycopg.Connection[Any] | None = None
        self.speeds = SpeedCache(
            self._speeds_version, self._speeds_load, ConstantSpeed(settings.dispatch_speed_mps)
        )
        self.dispatcher = dispatcher or Dispatcher(
            config_from(settings, self.speeds.provider), positions=self._positions
        )
        self.stats = DispatchStats()
        # Served on 127.0.0.1:FLOTA_METRICS_PORT while `run` runs (docs/dispatch.md, Metrics).
        self.metrics = metrics or DispatchMetrics()
        self.metrics.track(lambda: self.dispatcher)
        self._stop = threading.Event()
        self._unpushed: list[tuple[VehiclePlan, bytes]] = []
        self.producer = make_producer(settings, "flota-dispatch")

    def _connect(self) -> psycopg.Connection[Any]:
        return connect(self.settings.database_url.get_secret_value(), application_name=APP_NAME)

    def _speeds_db(self) -> psycopg.Connection[Any]:
        # Its own autocommit connection: a failed read must not abort the service's transaction.
        if self._speeds_conn is None or self._speeds_conn.closed:
            self._speeds_conn = connect(
                self.settings.database_url.get_secret_value(),
                autocommit=True,
                application_name=f"{APP_NAME}-speeds",
            )
        return self._speeds_conn

    def _speeds_version(self, tenant: str) -> str | None:
        try:
            return speed_store.version(self._speeds_db(), tenant)
        except psycopg.Error:
            if self._speeds_conn is not None:
                self._speeds_conn.close()
            raise

    def _speeds_load(self, tenant: str) -> LearnedSpeeds | None:
        return speed_store.load(self._speeds_db(), tenant)

    def _positions(self, tenant: str, vehicles: list[str]) -> dict[str, Any]:
        return store.positions(self.conn, tenant, vehicles)

    # -- input ---------------------------------------------------------------------------
    def _bad(self, reason: str, rec: ConsumerRecord, err: Exception | str) -> None:
        with self.stats.lock:
            self.stats.bad[reason] += 1
        self.metrics.bad(reason)
        log.warning("dispatch: skipped %s record at %s[%d]@%d: %s", reason, rec.topic,
                    rec.partition, rec.offset, err)  # fmt: skip

    def _topic_kind(self, name: str) -> str:
        """The topic's kind as a metrics label (its full name carries the deployment prefix)."""
        if name == self.orders_topic:
            return "orders"
        if name == self.topics.domain_events:
            return "domain_events"
        return "command_acks" if name == self.topics.command_acks else "other"

    def _apply(self, rec: ConsumerRecord, now: float) -> None:
        with self.stats.lock:
            self.stats.records[rec.topic] += 1
        self.metrics.record_in(self._topic_kind(rec.topic))
        if rec.topic == self.orders_topic:
            self._apply_order(rec, now)
        elif rec.topic == self.topics.domain_events:
            self._apply_event(rec, now)
        elif rec.topic == self.topics.command_acks:
            self._apply_ack(rec)

    def _apply_order(self, rec: ConsumerRecord, now: float) -> None:
        d = self.dispatcher
        try:
            doc = parse_orders_doc(rec.value or b"")
        except MessageError as err:
            self._bad("orders", rec, err)
            return
        if isinstance(doc, OrderDoc) and self._closed(doc):
            self._bad("order_closed", rec, f"order {doc.tenant}/{doc.id} is done or cancelled")
            return
        d.apply_doc(doc, now)
        if isinstance(doc, OrderDoc | CancelDoc):
            order = d.orders.get((doc.tenant, doc.id))
            if order is not None:
                store.save_order(self.conn, order)
        elif isinstance(doc, DepotDoc):
            store.save_depot(self.conn, d.depot(doc.tenant, doc.depot))
        elif isinstance(doc, VehicleDoc):
            store.save_vehicle(self.conn, d.vehicles[(doc.tenant, doc.vehicle)])

    def _closed(self, doc: OrderDoc) -> bool:
        known = self.dispatcher.orders.get((doc.tenant, doc.id))
        if known is not None:
            return known.status != "open"
        return store.order_closed(self.conn, doc.tenant, doc.id)

    def _apply_event(self, rec: ConsumerRecord, now: float) -> None:
        d = self.dispatcher
        try:
            ev = parse_domain_event(rec.value or b"")
        except MessageError as err:
            self._bad("event", rec, err)
            return
        if ev is None:
            return  # a kind the dispatcher does not act on
        if not d.apply_event(ev, now):
            self._bad("event_unknown_vehicle", rec, f"{ev.tenant}/{ev.vehicle}")
            return
        store.save_vehicle(self.conn, d.vehicles[(ev.tenant, ev.vehicle)])
        if ev.kind == STOP_COMPLETED:
            order = d.orders.get((ev.tenant, str(ev.detail.get("order", ""))))
            if order is not None:
                store.save_order(self.conn, order)

    def _apply_ack(self, rec: ConsumerRecord) -> None:
        tenant, _, vehicle = (rec.key or b"").decode(errors="replace").partition("/")
        try:
            received = decode(topic(tenant, vehicle, Channel.COMMAND_ACKS), rec.value or b"")
        except WireError as err:
            self._bad("ack", rec, err)
            return
        ack = received.message
        if not isinstance(ack, CommandAck) or ack.command_id != PLAN_COMMAND_ID:
            return  # another component's command
        self.dispatcher.apply_ack(tenant, vehicle, ack)
        if store.record_ack(self.conn, tenant, vehicle, ack):
            with self.stats.lock:
                self.stats.acks_recorded += 1
            self.metrics.ack(AckStatus(ack.status).value)

    # -- output --------------------------------------------------------------------------
    def replan(self, key: DepotKey, now: float) -> list[VehiclePlan]:
        """Re-optimise one depot, save the changed plans, then send them."""
        d = self.dispatcher
        started = time.perf_counter()
        result = d.reoptimise(key, now)
        self.metrics.replanned(result, time.perf_counter() - started)
        for order in d.depot_orders(key):
            store.save_order(self.conn, order)
        out = []
        for plan in result.plans:
            vehicle = d.vehicles[(plan.tenant, plan.vehicle)]
            command = plan_command(plan, vehicle, now)
            assert isinstance(command.payload, dict)
            store.save_plan(self.conn, plan, command.payload, command.seq)
            out.append((plan, encode(command)))
        self.conn.commit()  # versions reserved before anything leaves
        with self.stats.lock:
            self.stats.replans += 1
        self._unpushed.extend(out)
        self._push()
        return [p for p, _ in out]

    def _push(self) -> None:
        if not self._unpushed:
            return
        sends = [
            (plan, self.producer.send(
                self.topics.commands, key=vehicle_key(plan.tenant, plan.vehicle), value=value
            ))
            for plan, value in self._unpushed
        ]  # fmt: skip
        self.producer.flush(timeout=30)
        pushed, failed = [], []
        for (plan, value), (_, fut) in zip(self._unpushed, sends, strict=True):
            try:
                fut.get(timeout=30)
                pushed.append(plan)
            except Exception as err:  # kafka errors vary; retried next loop
                log.error("route plan %s v%d not produced: %s", plan.vehicle, plan.version, err)
                failed.append((plan, value))
        store.mark_pushed(self.conn, pushed)
        self.conn.commit()
        self._unpushed = failed
        with self.stats.lock:
            self.stats.plans_pushed += len(pushed)
        self.metrics.pushed(len(pushed), len(failed))

    # -- lifecycle ------------------------------------------------------------------------
    def _load(self) -> None:
        store.load(self.conn, self.dispatcher)
        self._unpushed = [(plan, encode(cmd)) for plan, cmd in store.unpushed(self.conn)]
        self.conn.commit()
        log.info(
            "dispatch: %d depots, %d vehicles, %d open orders loaded",
            len(self.dispatcher.depots), len(self.dispatcher.vehicles),
            len(self.dispatcher.orders),
        )  # fmt: skip

    def _step(self, consumer: KafkaConsumer) -> None:
        polled = consumer.poll(timeout_ms=200)
        if polled:
            now = self.clock()
            for records in polled.values():
                for rec in records:
                    self._apply(rec, now)
            self.conn.commit()
            try:
                consumer.commit()  # only after the database commit
            except CommitFailedError as err:  # a rebalance: the records come again (idempotent)
                log.warning("dispatch: offsets not committed: %s", err)
        now = self.clock()
        for key in self.dispatcher.due(now):
            self.replan(key, now)
        self._push()

    def _recover(self, consumer: KafkaConsumer) -> None:
        """Reconnect (with back-off), rebuild the memory from the database, and rewind the
        consumer to its committed offsets: what was not committed is applied again."""
        with contextlib.suppress(Exception):
            self.conn.close()
        delay = 0.5
        while not self._stop.is_set():
            try:
                self.conn = self._connect()
                old = self.dispatcher
                self.dispatcher = Dispatcher(old.config, solver=old.solver, positions=old.positions)
                self.dispatcher.counters = old.counters  # counts of this process, not of a memory
                self._load()
                break
            except _DB_LOST as err:
                log.warning("dispatch: database still unavailable (%s); retrying", err)
                self._stop.wait(delay)
                delay = min(delay * 2, 30.0)
        for tp in consumer.assignment():
            offset = consumer.committed(tp)
            if offset is None:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, offset)
        with self.stats.lock:
            self.stats.recoveries += 1
        self.metrics.recovered()

    def run(self, stop: threading.Event | None = None) -> None:
        """Run until ``stop`` is set (or forever); metrics served meanwhile if configured."""
        if stop is not None:
            self._stop = stop
        server = self.metrics.serve(self.settings.metrics_port)
        try:
            self._run()
        finally:
            if server is not None:
                server.shutdown()
                server.server_close()

    def _run(self) -> None:
        ensure_dispatch_topics(self.settings)
        self._load()
        consumer = make_consumer(
            self.settings,
            group=self.settings.dispatch_group,
            topics=[self.orders_topic, self.topics.domain_events, self.topics.command_acks],
            client_id="flota-dispatch",
        )
        try:
            while not self._stop.is_set():
                try:
                    self._step(consumer)
                except _DB_LOST as err:
                    log.error("dispatch: database connection lost (%s); recovering", err)
                    self._recover(consumer)
        finally:
            consumer.close()
            self.producer.flush(timeout=10)
            self.producer.close(timeout=5)
            self.conn.close()
            if self._speeds_conn is not None:
                self._speeds_conn.close()
