"""The dispatch service's Prometheus metrics: counters fed by the service's events, and stop
completions, orders and vehicles read from the dispatcher's memory at scrape time."""

from __future__ import annotations

import re
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from dispatch_helpers import CUSTOMERS, DEPOT, T0, TENANT, World

from cloud.optimizer.dispatch import dispatcher as dispatcher_module
from cloud.optimizer.dispatch.dispatcher import Replan, plan_id
from cloud.optimizer.dispatch.messages import BREAKDOWN, STOP_COMPLETED
from cloud.optimizer.dispatch.metrics import TRIGGERS, DispatchMetrics, trigger_labels


def _value(m: DispatchMetrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def test_counters_and_state_after_a_few_events() -> None:
    w = World(vans=2, late_after_s=1e6, refresh_s=1e6)
    m = DispatchMetrics()
    m.track(lambda: w.d)
    for lat, lon, oid in CUSTOMERS[:3]:
        w.order(oid, lat, lon)
        m.record_in("orders")
    m.bad("orders")
    w.event("van-1", BREAKDOWN)
    m.record_in("domain_events")
    result = w.replan(T0 + 1)
    m.replanned(result, 0.4)
    (plan,) = result.plans  # van-1 is broken: one van carries the three orders
    m.pushed(1, 0)
    m.ack("applied")
    m.ack("applied")
    m.ack("rejected")

    # One completion applied, one for another vehicle's plan and one for an unknown order ignored.
    first = plan.stops[0]
    mine = plan_id(plan.depot, plan.vehicle, plan.version)
    w.event("van-0", STOP_COMPLETED, order=first.order, task=first.task, plan_id=mine)
    w.event("van-0", STOP_COMPLETED, order=plan.stops[1].order, plan_id=f"{DEPOT}-van-1-v1")
    w.event("van-0", STOP_COMPLETED, order="no-such-order")

    assert _value(m, "flota_dispatch_records_in_total", topic="orders") == 3
    assert _value(m, "flota_dispatch_records_in_total", topic="domain_events") == 1
    assert _value(m, "flota_dispatch_bad_records_total", reason="orders") == 1
    assert _value(m, "flota_dispatch_replans_total", outcome="planned") == 1
    assert _value(m, "flota_dispatch_replans_total", outcome="no_plan") is None
    for trigger in ("order_new", "breakdown", "depot", "vehicle"):
        assert _value(m, "flota_dispatch_replan_triggers_total", trigger=trigger) == 1, trigger
    engine = result.solved.engine
    assert engine not in {"", "none"}
    assert _value(m, "flota_dispatch_solve_seconds_count", engine=engine) == 1
    assert _value(m, "flota_dispatch_solve_seconds_sum", engine=engine) == 0.4
    assert _value(m, "flota_dispatch_solve_seconds_bucket", engine=engine, le="0.25") == 0
    assert _value(m, "flota_dispatch_solve_seconds_bucket", engine=engine, le="0.5") == 1
    assert _value(m, "flota_dispatch_plans_changed_total") == 1
    assert _value(m, "flota_dispatch_plans_pushed_total") == 1
    assert _value(m, "flota_dispatch_plans_unpushed") == 0
    assert _value(m, "flota_dispatch_plan_acks_total", status="applied") == 2
    assert _value(m, "flota_dispatch_plan_acks_total", status="rejected") == 1
    assert _value(m, "flota_dispatch_stop_completions_applied_total") == 1
    ignored = "flota_dispatch_stop_completions_ignored_total"
    assert _value(m, ignored, reason="plan_not_the_vehicles") == 1
    assert _value(m, ignored, reason="unknown_order") == 1
    assert _value(m, ignored, reason="stop_not_in_plan") is None  # nothing counted, no series
    assert w.d.counters["stop_completed_plan_not_the_vehicles"] == 1  # the one source of truth
    depot = {"tenant": TENANT, "depot": DEPOT}
    assert _value(m, "flota_dispatch_open_orders", **depot) == 2  # one of three done
    assert _value(m, "flota_dispatch_unassigned_orders", **depot) == 0
    assert _value(m, "flota_dispatch_vehicles", state="usable", **depot) == 1
    assert _value(m, "flota_dispatch_vehicles", state="broken", **depot) == 1
    assert _value(m, "flota_dispatch_vehicles", state="inactive", **depot) == 0


def test_no_usable_vehicle_leaves_orders_unassigned_and_solves_with_no_engine() -> None:
    w = World(vans=1, late_after_s=1e6, refresh_s=1e6)
    m = DispatchMetrics()
    m.track(lambda: w.d)
    w.event("van-0", BREAKDOWN)
    lat, lon, oid = CUSTOMERS[0]
    w.order(oid, lat, lon)
    m.replanned(w.replan(T0 + 1), 0.01)
    depot = {"tenant": TENANT, "depot": DEPOT}
    assert _value(m, "flota_dispatch_solve_seconds_count", engine="none") == 1
    assert _value(m, "flota_dispatch_unassigned_orders", **depot) == 1
    assert _value(m, "flota_dispatch_open_orders", **depot) == 1
    # A failed solve (no plan) is counted apart, and unknown trigger words stay bounded.
    m.replanned(Replan((TENANT, DEPOT), "late,from_a_newer_version", [], None), 2.0)
    assert _value(m, "flota_dispatch_replans_total", outcome="no_plan") == 1
    assert _value(m, "flota_dispatch_replan_triggers_total", trigger="other") == 1
    assert _value(m, "flota_dispatch_replan_triggers_total", trigger="late") == 1


def test_every_trigger_the_dispatcher_raises_is_a_label_value() -> None:
    source = Path(dispatcher_module.__file__).read_text()
    raised = set(re.findall(r'touch\("([a-z_]+)"', source))
    assert "order_new" in raised
    assert raised <= TRIGGERS, raised - TRIGGERS
    assert trigger_labels("order_new,refresh,order_new") == ["order_new", "refresh"]
    assert trigger_labels("") == []


def test_without_a_dispatcher_or_a_port_nothing_breaks() -> None:
    m = DispatchMetrics()
    assert _value(m, "flota_dispatch_stop_completions_applied_total") is None
    assert m.serve(None) is None
    assert m.serve(0) is None


def test_metrics_are_served_on_loopback_and_the_server_stops() -> None:
    w = World(vans=1)
    m = DispatchMetrics()
    m.track(lambda: w.d)
    m.record_in("orders")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = m.serve(port)
    assert server is not None
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        body = urllib.request.urlopen(url, timeout=5).read().decode()
    finally:
        server.shutdown()
        server.server_close()
    assert 'flota_dispatch_records_in_total{topic="orders"} 1.0' in body
    assert f'flota_dispatch_vehicles{{depot="{DEPOT}",state="usable",tenant="{TENANT}"}} 1.0' in (
        body
    )
    with pytest.raises(urllib.error.URLError, match="refused"):  # nobody listens any more
        urllib.request.urlopen(url, timeout=5)
