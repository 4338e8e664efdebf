"""`stop_completed` as the in-vehicle agent sends it: the stop named by ``stop_id``
(``order:task``) and the ``plan_id`` it was served under; completions for a plan that is not
the vehicle's are counted and ignored."""

from __future__ import annotations

import json
from typing import Any

import pytest
from dispatch_helpers import CUSTOMERS, DEPOT, T0, TENANT, World

from cloud.optimizer.dispatch.commands import plan_payload
from cloud.optimizer.dispatch.dispatcher import plan_id
from cloud.optimizer.dispatch.messages import (
    STOP_COMPLETED,
    VehicleEvent,
    parse_domain_event,
    split_stop_id,
)
from cloud.optimizer.dispatch.state import VehiclePlan


def _world_with_plan(n_orders: int = 2) -> tuple[World, VehiclePlan]:
    w = World(vans=1, late_after_s=1e6, refresh_s=1e6)
    for lat, lon, oid in CUSTOMERS[:n_orders]:
        w.order(oid, lat, lon)
    (plan,) = w.replan(T0 + 1).plans
    return w, plan


def _agent_detail(plan: VehiclePlan, stop_id: str, **extra: Any) -> dict[str, Any]:
    """What the geo processor republishes of the agent's event: its details (no order or
    task here), severity and position."""
    return {
        "plan_id": plan_id(plan.depot, plan.vehicle, plan.version),
        "stop_id": stop_id,
        "dwell_s": 95.0,
        "severity": 0,
        "lat": 60.18,
        "lon": 24.9,
        **extra,
    }


def test_plan_id_is_the_one_the_command_carries() -> None:
    _, plan = _world_with_plan(1)
    assert plan_payload(plan)["plan_id"] == plan_id(plan.depot, plan.vehicle, plan.version)
    assert plan_id(plan.depot, plan.vehicle, plan.version) == f"{DEPOT}-van-0-v1"


def test_stop_completed_with_only_stop_id_marks_the_task_done() -> None:
    w, plan = _world_with_plan()
    first = plan.stops[0]
    stop_id = f"{first.order}:{first.task}"
    w.event(plan.vehicle, STOP_COMPLETED, now=T0 + 600, **_agent_detail(plan, stop_id))
    order = w.d.orders[(TENANT, first.order)]
    assert order.done == {"delivery"}
    assert order.status == "done"
    assert w.d.counters["stop_completed"] == 1
    other = next(s for s in plan.stops if s.order != first.order)
    assert w.d.orders[(TENANT, other.order)].status == "open"
    # the next solve plans only the open order
    w.order("o-extra", *CUSTOMERS[5][:2], now=T0 + 700)
    (again,) = w.replan(T0 + 800).plans
    assert first.order not in {s.order for s in again.stops}


def test_the_domain_event_json_gets_order_and_task_from_the_stop_id() -> None:
    """The service persists the order named by ``detail["order"]``: it must be filled."""
    raw = {"v": 1, "tenant": TENANT, "vehicle": "van-0", "time_us": int(T0 * 1e6),
           "kind": STOP_COMPLETED, "event_key": "17", "source": "vehicle", "seq": 17,
           "detail": {"stop_id": "o-3:pickup", "plan_id": "HEL-van-0-v2"}}  # fmt: skip
    ev = parse_domain_event(json.dumps(raw).encode())
    assert ev is not None
    assert ev.detail["order"] == "o-3"
    assert ev.detail["task"] == "pickup"
    # order and task given: kept as they are
    raw["detail"] = {"stop_id": "o-3:pickup", "order": "o-4", "task": "delivery"}
    ev = parse_domain_event(json.dumps(raw).encode())
    assert ev is not None
    assert (ev.detail["order"], ev.detail["task"]) == ("o-4", "delivery")
    # other kinds are left alone
    raw.update(kind="vehicle_late", detail={"stop_id": "o-3:pickup"})
    ev = parse_domain_event(json.dumps(raw).encode())
    assert ev is not None
    assert "order" not in ev.detail


def test_pair_pickup_by_stop_id_binds_the_goods_to_the_vehicle() -> None:
    w = World(vans=1, late_after_s=1e6, refresh_s=1e6)
    w.order("pair-1", 0, 0, kind="pair", location=None,
            pickup={"location": {"lat": 60.18, "lon": 24.90}},
            delivery={"location": {"lat": 60.20, "lon": 24.96}})  # fmt: skip
    (plan,) = w.replan(T0 + 1).plans
    assert [s.task for s in plan.stops] == ["pickup", "delivery"]
    w.event("van-0", STOP_COMPLETED, **_agent_detail(plan, "pair-1:pickup"))
    order = w.d.orders[(TENANT, "pair-1")]
    assert order.picked_by == "van-0"
    assert order.status == "open"
    w.event("van-0", STOP_COMPLETED, **_agent_detail(plan, "pair-1:delivery"))
    assert order.status == "done"


@pytest.mark.parametrize(
    ("pid", "reason"),
    [
        ("HEL-van-1-v1", "plan_not_the_vehicles"),  # another vehicle's plan
        ("HEL-van-0-v9", "plan_not_the_vehicles"),  # a version never sent
        ("OSL-van-0-v1", "plan_not_the_vehicles"),  # another depot
        ("garbage", "plan_not_the_vehicles"),
    ],
)
def test_completion_for_a_plan_not_the_vehicles_is_ignored(pid: str, reason: str) -> None:
    w, plan = _world_with_plan(1)
    stop_id = f"{plan.stops[0].order}:{plan.stops[0].task}"
    w.event("van-0", STOP_COMPLETED, **_agent_detail(plan, stop_id, plan_id=pid))
    assert w.d.orders[(TENANT, plan.stops[0].order)].status == "open"
    assert w.d.counters[f"stop_completed_{reason}"] == 1
    assert w.d.counters["stop_completed"] == 0


def test_completion_of_a_stop_the_named_plan_does_not_hold_is_ignored() -> None:
    w, plan = _world_with_plan(1)
    lat, lon, oid = CUSTOMERS[7]
    w.order(oid, lat, lon, now=T0 + 5)  # not in plan v1
    w.event("van-0", STOP_COMPLETED, **_agent_detail(plan, f"{oid}:delivery"))
    assert w.d.orders[(TENANT, oid)].status == "open"
    assert w.d.counters["stop_completed_stop_not_in_plan"] == 1


def test_an_old_plan_version_no_longer_in_memory_is_still_the_vehicles() -> None:
    w, plan = _world_with_plan(1)
    van = w.d.vehicles[(TENANT, "van-0")]
    van.last_version = 12  # later versions were sent; v1 was forgotten
    del van.plans[1]
    stop = plan.stops[0]
    w.event("van-0", STOP_COMPLETED, **_agent_detail(plan, f"{stop.order}:{stop.task}"))
    assert w.d.orders[(TENANT, stop.order)].status == "done"


@pytest.mark.parametrize("stop_id", ["nocolon", ":delivery", "a:b:delivery", ""])
def test_odd_stop_ids_are_unknown_orders_not_crashes(stop_id: str) -> None:
    w, plan = _world_with_plan(1)
    ev = VehicleEvent(tenant=TENANT, vehicle="van-0", time_s=T0, kind=STOP_COMPLETED,
                      detail=_agent_detail(plan, stop_id))  # fmt: skip
    assert w.d.apply_event(ev, T0)
    assert w.d.counters["stop_completed_unknown_order"] == 1
    assert w.d.orders[(TENANT, plan.stops[0].order)].status == "open"


def test_split_stop_id_at_the_last_colon() -> None:
    assert split_stop_id("ns:o-1:pickup") == ("ns:o-1", "pickup")
    assert split_stop_id("o-1") == ("", "")
