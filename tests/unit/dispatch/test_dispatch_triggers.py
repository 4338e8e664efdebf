"""When a depot is re-optimised: debounced triggers, periodic refresh, lateness."""

from __future__ import annotations

from dispatch_helpers import CUSTOMERS, DEPOT, T0, TENANT, World

from cloud.optimizer.dispatch.messages import LATE, STOP_COMPLETED
from cloud.optimizer.dispatch.planner import Fix
from flota_wire import AckStatus, CommandAck

KEY = (TENANT, DEPOT)


def test_a_burst_of_orders_makes_one_solve_after_settling_and_the_interval() -> None:
    w = World(settle_s=2.0, min_interval_s=30.0)
    for i, (lat, lon, oid) in enumerate(CUSTOMERS[:4]):
        w.order(oid, lat, lon, now=T0 + 0.5 * i)
    assert w.d.due(T0 + 1.9) == []  # still settling (first trigger at T0)
    assert w.d.due(T0 + 2.0) == [KEY]
    first = w.replan(T0 + 2.0)
    assert set(first.trigger.split(",")) == {"depot", "vehicle", "order_new"}
    assert w.d.due(T0 + 2.0) == []  # nothing new
    lat, lon, oid = CUSTOMERS[5]
    w.order(oid, lat, lon, now=T0 + 5)
    assert w.d.due(T0 + 10) == []  # settled, but the depot was solved 8 s ago
    assert w.d.due(T0 + 32.0) == [KEY]
    assert w.replan(T0 + 32).trigger == "order_new"


def test_acks_and_completed_stops_do_not_trigger_but_refresh_does() -> None:
    w = World(refresh_s=600.0, late_after_s=1e6)
    lat, lon, oid = CUSTOMERS[0]
    w.order(oid, lat, lon)
    plan = w.replan(T0 + 1).plans[0]
    w.d.apply_ack(TENANT, plan.vehicle, CommandAck(1, "route-plan", 1, AckStatus.APPLIED, 0))
    w.event(plan.vehicle, STOP_COMPLETED, now=T0 + 2, order=oid)
    assert w.d.due(T0 + 100) == []
    lat, lon, oid2 = CUSTOMERS[1]
    w.order(oid2, lat, lon, now=T0 + 101)
    w.replan(T0 + 200)
    assert w.d.due(T0 + 700) == []
    assert w.d.due(T0 + 801) == [KEY]  # periodic refresh: open orders, fresh positions
    assert w.replan(T0 + 801).trigger == "refresh"


def test_running_late_from_the_plan_and_from_an_event() -> None:
    w = World(vans=1, late_after_s=300.0, refresh_s=1e6)
    lat, lon, oid = CUSTOMERS[0]
    w.order(oid, lat, lon)
    plan = w.replan(T0 + 1).plans[0]
    eta = plan.stops[0].eta_s
    assert w.d.due(eta + 299) == []
    assert w.d.due(eta + 301) == [KEY]  # past the next stop's ETA + 300 s, not there yet
    assert w.replan(eta + 301).trigger == "late_detected"
    # An explicit delay: the van cannot go on for 20 minutes.
    now = eta + 1000
    w.event("van-0", LATE, now=now, delay_s=1200)
    assert w.d.due(now + 10) == [KEY]
    late = w.replan(now + 10)
    assert "late" in late.trigger.split(",")
    assert late.plans[0].stops[0].eta_s >= now + 1200


def test_a_position_too_far_from_the_next_stop_is_running_late() -> None:
    w = World(vans=1, late_after_s=300.0, refresh_s=1e6, position_check_s=30.0)
    lat, lon, oid = CUSTOMERS[0]
    w.order(oid, lat, lon)
    plan = w.replan(T0 + 1).plans[0]
    assert plan.stops[0].eta_s - T0 < 600
    w.fixes["van-0"] = Fix(lat - 0.001, lon, T0 + 60)  # on time, next to the customer
    assert w.d.due(T0 + 61) == []
    w.fixes["van-0"] = Fix(60.45, 24.94, T0 + 85)  # 30 km away: an hour from the stop
    assert w.d.due(T0 + 90) == []  # the last check was 29 s ago: not yet
    assert w.d.due(T0 + 92) == [KEY]
    replan = w.replan(T0 + 92)
    assert replan.trigger == "late_position"
    assert replan.plans[0].stops[0].eta_s > T0 + 3000  # from where it really is
    assert w.d.due(T0 + 200) == []  # flagged once per plan version
