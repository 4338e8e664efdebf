"""Prometheus metrics of the dispatch service (`flota optimize serve`), one registry per object.

Same conventions as the ingest processes (`cloud.ingest.metrics`): ``flota_`` prefix, served on
127.0.0.1 (``FLOTA_METRICS_PORT``), reasons as label values. Labels stay bounded: topic kinds,
reasons and triggers are the code's own words, depots are labelled, orders and vehicles never.

Two kinds of series: counters the service increments as records, solves and acks go by, and a
collector that reads the dispatcher's memory at scrape time (stop completions from
``Dispatcher.counters``, the one count of them; open orders and vehicles per depot).
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from cloud.optimizer.dispatch.dispatcher import Dispatcher, Replan

log = logging.getLogger(__name__)

# The reasons `Dispatcher` marks a depot with (docs/dispatch.md, "Triggers"), and "manual" for a
# re-optimisation asked without one; anything else is counted as "other".
TRIGGERS = frozenset(
    {
        "order_new", "order_cancelled", "order_moved", "depot", "vehicle", "vehicle_left",
        "breakdown", "repaired", "late", "late_detected", "late_position", "refresh", "manual",
    }
)  # fmt: skip
# `Dispatcher.counters` keys: the applied completions, and the ignored ones by reason.
STOP_APPLIED = "stop_completed"
_STOP_IGNORED = "stop_completed_"

# Re-optimisation wall time: the solver's budget is seconds (FLOTA_DISPATCH_TIME_LIMIT_S, 5).
_SOLVE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 20.0, 30.0, 60.0)


def trigger_labels(trigger: str) -> list[str]:
    """The label values of a plan's ``trigger`` (reasons joined by commas), bounded."""
    return sorted({t if t in TRIGGERS else "other" for t in trigger.split(",") if t})


class _StateCollector(Collector):
    """Reads the dispatcher at scrape time (the service replaces it on recovery, hence the
    callable). ``list(dict.values())`` copies a dict without running Python code, so the
    service thread cannot resize it under the copy."""

    def __init__(self, source: Callable[[], Dispatcher | None]) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        applied = CounterMetricFamily(
            "flota_dispatch_stop_completions_applied",
            "stop_completed events applied (a stop of the vehicle's plan marked done)",
        )
        ignored = CounterMetricFamily(
            "flota_dispatch_stop_completions_ignored",
            "stop_completed events ignored, per reason (unknown order, another plan...)",
            labels=["reason"],
        )
        open_orders = GaugeMetricFamily(
            "flota_dispatch_open_orders",
            "Orders with a task still to do",
            labels=["tenant", "depot"],
        )
        unassigned = GaugeMetricFamily(
            "flota_dispatch_unassigned_orders",
            "Open orders the latest re-optimisation left without a vehicle",
            labels=["tenant", "depot"],
        )
        vehicles = GaugeMetricFamily(
            "flota_dispatch_vehicles",
            "Vehicles per state: usable (active, not broken), broken, inactive",
            labels=["tenant", "depot", "state"],
        )
        d = self.source()
        if d is not None:
            counts = dict(d.counters)
            applied.add_metric([], counts.get(STOP_APPLIED, 0))
            for key, n in sorted(counts.items()):
                if key.startswith(_STOP_IGNORED):
                    ignored.add_metric([key.removeprefix(_STOP_IGNORED)], n)
            per_depot: dict[tuple[str, str], Tally[str]] = {key: Tally() for key in list(d.depots)}
            for o in list(d.orders.values()):
                tally = per_depot.setdefault((o.doc.tenant, o.doc.depot), Tally())
                if o.pending:
                    tally["open"] += 1
                    tally["unassigned"] += o.reason is not None
            for v in list(d.vehicles.values()):
                state = "usable" if v.usable else "broken" if v.broken else "inactive"
                per_depot.setdefault((v.doc.tenant, v.doc.depot), Tally())[state] += 1
            for (tenant, depot), tally in sorted(per_depot.items()):
                open_orders.add_metric([tenant, depot], tally["open"])
                unassigned.add_metric([tenant, depot], tally["unassigned"])
                for state in ("usable", "broken", "inactive"):
                    vehicles.add_metric([tenant, depot, state], tally[state])
        yield from (applied, ignored, open_orders, unassigned, vehicles)


class DispatchMetrics:
    """The metrics of one dispatch service. The service calls the event methods; `track`
    points the state collector at its dispatcher."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.records_in = Counter(
            "flota_dispatch_records_in", "Kafka records received, per topic (orders, "
            "domain_events, command_acks)", ["topic"], registry=r,
        )  # fmt: skip
        self.bad_records = Counter(
            "flota_dispatch_bad_records", "Records skipped, per reason", ["reason"], registry=r
        )
        self.replans = Counter(
            "flota_dispatch_replans", "Depot re-optimisations, per outcome (planned: a solution; "
            "no_plan: none came out, the current plans stay)", ["outcome"], registry=r,
        )  # fmt: skip
        self.replan_triggers = Counter(
            "flota_dispatch_replan_triggers", "Re-optimisations per trigger (one solve with two "
            "triggers counts under both)", ["trigger"], registry=r,
        )  # fmt: skip
        self.solve_seconds = Histogram(
            "flota_dispatch_solve_seconds", "Wall time of one depot's re-optimisation (positions, "
            "model, solve), per engine (none: no solver ran)", ["engine"],
            buckets=_SOLVE_BUCKETS, registry=r,
        )  # fmt: skip
        self.plans_changed = Counter(
            "flota_dispatch_plans_changed", "Vehicle plans given a new version", registry=r
        )
        self.plans_pushed = Counter(
            "flota_dispatch_plans_pushed", "Route-plan commands produced to Kafka", registry=r
        )
        self.plans_unpushed = Gauge(
            "flota_dispatch_plans_unpushed", "Plans saved but not produced yet (retried)",
            registry=r,
        )  # fmt: skip
        self.plan_acks = Counter(
            "flota_dispatch_plan_acks", "Route-plan acknowledgements recorded (duplicates not), "
            "per status", ["status"], registry=r,
        )  # fmt: skip
        self.recoveries = Counter(
            "flota_dispatch_recoveries", "Database reconnections (memory reloaded, records "
            "replayed)", registry=r,
        )  # fmt: skip
        self._state = _StateCollector(lambda: None)
        r.register(self._state)

    def track(self, dispatcher: Callable[[], Dispatcher | None]) -> None:
        """Read open orders, vehicles and stop completions from ``dispatcher()`` at scrape."""
        self._state.source = dispatcher

    # -- events (the service calls these) ---------------------------------------------------
    def record_in(self, topic: str) -> None:
        self.records_in.labels(topic).inc()

    def bad(self, reason: str) -> None:
        self.bad_records.labels(reason).inc()

    def replanned(self, replan: Replan, seconds: float) -> None:
        solved = replan.solved
        self.replans.labels("planned" if solved is not None else "no_plan").inc()
        for trigger in trigger_labels(replan.trigger):
            self.replan_triggers.labels(trigger).inc()
        engine = (solved.engine if solved is not None else "") or "none"
        self.solve_seconds.labels(engine).observe(seconds)
        self.plans_changed.inc(len(replan.plans))

    def pushed(self, n: int, waiting: int) -> None:
        self.plans_pushed.inc(n)
        self.plans_unpushed.set(waiting)

    def ack(self, status: str) -> None:
        self.plan_acks.labels(status).inc()

    def recovered(self) -> None:
        self.recoveries.inc()

    def serve(self, port: int | None, host: str = "127.0.0.1") -> WSGIServer | None:
        """Serve /metrics on ``host:port`` (loopback by default); None or 0: not served. The
        server is returned so its owner can shut it down."""
        if not port:
            return None
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        log.info("dispatch metrics on http://%s:%d/metrics", host, port)
        return server
