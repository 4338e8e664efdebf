"""Locked committed stops, vehicles starting where they are, versions, breakdowns."""

from __future__ import annotations

from dispatch_helpers import CUSTOMERS, DEPOT, HOME, T0, TENANT, World

from cloud.optimizer.dispatch.commands import plan_command
from cloud.optimizer.dispatch.messages import BREAKDOWN, REPAIRED, STOP_COMPLETED
from cloud.optimizer.dispatch.planner import Fix, committed_stop
from flota_wire import AckStatus, Channel, Command, CommandAck, decode, encode, topic

FAR = [(60.30, 24.94, "far-1"), (60.31, 24.96, "far-2")]
NEAR = (HOME[0] + 0.002, HOME[1] + 0.002, "near")


def _ack(w: World, vehicle: str, version: int, status: AckStatus = AckStatus.APPLIED) -> None:
    w.d.apply_ack(TENANT, vehicle, CommandAck(version, "route-plan", version, status, 0))


def _near(w: World, now: float) -> None:
    """An order at the depot's door that must be served within 15 minutes (or paid for)."""
    w.order(NEAR[2], NEAR[0], NEAR[1], now=now, windows=[[now, now + 900]], penalty=1e6)


def _one_van_with_far_orders() -> World:
    w = World(vans=1)
    for lat, lon, oid in FAR:
        w.order(oid, lat, lon)
    return w


def test_the_stop_a_vehicle_accepted_stays_first_when_a_better_order_arrives() -> None:
    # Control: without an acknowledgement nothing is committed; the order at the depot's door
    # goes first.
    free = _one_van_with_far_orders()
    free.replan(T0 + 1)
    _near(free, T0 + 20)
    assert free.replan(T0 + 40).plans[0].stops[0].order == "near"

    w = _one_van_with_far_orders()
    v1 = w.replan(T0 + 1).plans[0]
    _ack(w, "van-0", 1)
    _near(w, T0 + 20)
    r2 = w.replan(T0 + 40)
    assert r2.solved is not None
    assert "near" in r2.solved.unassigned  # locked far stop first: the window has closed
    assert r2.plans == []  # same stops as v1: nothing new to send
    w.order("far-3", 60.32, 24.97, now=T0 + 60)
    v2 = w.replan(T0 + 80).plans[0]
    assert v2.version == 2
    assert v2.stops[0].key == v1.stops[0].key  # still locked: the van is on its way there
    assert v2.committed == v1.stops[0].key
    payload = plan_command(v2, w.d.vehicles[(TENANT, "van-0")], T0 + 40).payload
    assert isinstance(payload, dict)
    assert [s["committed"] for s in payload["stops"]][:1] == [True]


def test_a_rejected_plan_commits_nothing_and_a_cancelled_commitment_is_released() -> None:
    w = _one_van_with_far_orders()
    v1 = w.replan(T0 + 1).plans[0]
    _ack(w, "van-0", 1, AckStatus.REJECTED)
    _near(w, T0 + 20)
    assert w.replan(T0 + 40).plans[0].stops[0].order == "near"
    _ack(w, "van-0", 2)
    committed = w.d.vehicles[(TENANT, "van-0")].plans[2].stops[0].order
    w.send(T0 + 50, type="cancel", tenant=TENANT, depot=DEPOT, id=committed)
    v3 = w.replan(T0 + 70).plans[0]
    assert committed not in {s.order for s in v3.stops}
    assert v3.version == 3
    assert v1.version == 1


def test_vehicles_start_from_fresh_positions_not_stale_ones() -> None:
    w = World(vans=1)
    lat, lon, oid = FAR[0]
    w.order(oid, lat, lon)
    from_depot = w.replan(T0 + 1).plans[0].stops[0].eta_s - (T0 + 1)
    w.fixes["van-0"] = Fix(lat - 0.001, lon, T0 + 100)  # next to the customer now
    w.order("other", *HOME, now=T0 + 100)  # any trigger
    nearby = w.replan(T0 + 120).plans[0]
    assert nearby.stops[0].order == oid
    assert nearby.stops[0].eta_s - (T0 + 120) < from_depot / 10
    w.fixes["van-0"] = Fix(lat - 0.001, lon, T0 - 7 * 3600)  # hours old: ignored
    w.order("third", *HOME, now=T0 + 200)
    stale = w.replan(T0 + 220)
    eta_far = next(s.eta_s for s in stale.plans[0].stops if s.order == oid)
    assert eta_far - (T0 + 220) > from_depot * 0.9


def test_versions_only_grow_and_unchanged_plans_are_not_resent() -> None:
    w = World()
    for lat, lon, oid in CUSTOMERS[:6]:
        w.order(oid, lat, lon)
    first = {p.vehicle: p.version for p in w.replan(T0 + 1).plans}
    assert set(first.values()) == {1}
    assert w.replan(T0 + 20).plans == []  # same stops, same ETAs: nothing to send
    seen: dict[str, list[int]] = {v: [n] for v, n in first.items()}
    seqs: dict[str, list[int]] = {}
    for k, (lat, lon, oid) in enumerate(CUSTOMERS[6:]):
        w.order(oid, lat, lon, now=T0 + 100 * (k + 1))
        for plan in w.replan(T0 + 100 * (k + 1) + 20).plans:
            seen.setdefault(plan.vehicle, []).append(plan.version)
            state = w.d.vehicles[(TENANT, plan.vehicle)]
            cmd = plan_command(plan, state, now_s=T0)  # a clock stuck in the past
            seqs.setdefault(plan.vehicle, []).append(cmd.seq)
            back = decode(topic(TENANT, plan.vehicle, Channel.COMMANDS), encode(cmd)).message
            assert isinstance(back, Command)
            assert back.version == plan.version
    for vehicle, versions in seen.items():
        assert versions == list(range(1, len(versions) + 1)), vehicle
    for vehicle, s in seqs.items():
        assert s == sorted(set(s)), vehicle


def test_a_broken_down_van_is_emptied_and_its_jobs_and_goods_go_to_the_other() -> None:
    w = World(vans=2)
    for lat, lon, oid in CUSTOMERS[:6]:
        w.order(oid, lat, lon)
    w.send(type="order", tenant=TENANT, depot=DEPOT, id="pair-1", kind="pair", demand=[5],
           pickup={"location": {"lat": 60.19, "lon": 24.92}},
           delivery={"location": {"lat": 60.21, "lon": 24.99}})  # fmt: skip
    plans = {p.vehicle: p for p in w.replan(T0 + 1).plans}
    holder = next(v for v, p in plans.items() if "pair-1" in {s.order for s in p.stops})
    other = next(v for v in ("van-0", "van-1") if v != holder)
    _ack(w, holder, 1)
    w.event(holder, STOP_COMPLETED, now=T0 + 600, order="pair-1", task="pickup")
    w.event(holder, BREAKDOWN, now=T0 + 700, lat=60.195, lon=24.93)
    r = w.replan(T0 + 720)
    after = {p.vehicle: p for p in r.plans}
    assert after[holder].stops == ()
    assert after[holder].version == 2
    served = {s.order for s in after[other].stops}
    assert served == {oid for _, _, oid in CUSTOMERS[:6]} | {"pair-1"}
    rescue = [s for s in after[other].stops if s.order == "pair-1"]
    assert [s.task for s in rescue] == ["pickup", "delivery"]
    assert (rescue[0].lat, rescue[0].lon) == (60.195, 24.93)  # goods collected where it stands
    # Repaired: it is planned again.
    w.event(holder, REPAIRED, now=T0 + 2000)
    w.order("late-1", 60.16, 24.90, now=T0 + 2000)
    r2 = w.replan(T0 + 2020)
    assert r2.solved is not None
    assert set(r2.solved.assigned.values()) <= {holder, other}
    assert r2.solved.unassigned == {}


def test_after_a_completed_stop_the_next_one_is_committed_and_pairs_stay_on_their_van() -> None:
    w = World(vans=2)
    for lat, lon, oid in CUSTOMERS[:3]:
        w.order(oid, lat, lon)
    w.send(type="order", tenant=TENANT, depot=DEPOT, id="pair-1", kind="pair", demand=[5],
           pickup={"location": {"lat": 60.19, "lon": 24.92}},
           delivery={"location": {"lat": 60.21, "lon": 24.99}})  # fmt: skip
    plans = {p.vehicle: p for p in w.replan(T0 + 1).plans}
    holder = next(v for v, p in plans.items() if "pair-1" in {s.order for s in p.stops})
    stops = plans[holder].keys
    _ack(w, holder, plans[holder].version)
    state = w.d.vehicles[(TENANT, holder)]
    assert committed_stop(state, {o.doc.id: o for o in w.d.orders.values()}) == stops[0]
    order, task = stops[0]
    w.event(holder, STOP_COMPLETED, now=T0 + 300, order=order, task=task)
    assert committed_stop(state, {o.doc.id: o for o in w.d.orders.values()}) == stops[1]
    # Once picked up, the pair's goods are on that van: its delivery stays there, even with the
    # other van idle at the depot.
    w.event(holder, STOP_COMPLETED, now=T0 + 400, order="pair-1", task="pickup")
    w.order("x", 60.21, 24.99, now=T0 + 400)
    r = w.replan(T0 + 420)
    assert r.solved is not None
    assert r.solved.assigned["pair-1"] == holder
    after = next(p for p in r.plans if p.vehicle == holder)
    assert ("pair-1", "pickup") not in after.keys
    assert ("pair-1", "delivery") in after.keys


def test_a_depot_without_usable_vehicles_reports_every_order_unassigned() -> None:
    w = World(vans=1)
    lat, lon, oid = CUSTOMERS[0]
    w.order(oid, lat, lon)
    w.send(type="vehicle", tenant=TENANT, depot=DEPOT, vehicle="van-0", capacity=[100],
           active=False)  # fmt: skip
    r = w.replan(T0 + 1)
    assert r.plans == []  # it never had a plan: nothing to withdraw
    assert r.solved is not None
    assert r.solved.unassigned == {oid: "no_vehicle"}
    assert w.d.orders[(TENANT, oid)].reason == "no_vehicle"


def test_a_van_whose_shift_ended_hands_over_its_committed_stops() -> None:
    w = World(vans=1)
    w.send(type="vehicle", tenant=TENANT, depot=DEPOT, vehicle="van-0", capacity=[100],
           shift=[T0 - 3600, T0 + 1200])  # fmt: skip
    lat, lon, oid = CUSTOMERS[0]
    w.order(oid, lat, lon, windows=[[T0, T0 + 10 * 3600]])
    first = {p.vehicle: p for p in w.replan(T0 + 1).plans}
    assert set(first) == {"van-0"}
    _ack(w, "van-0", 1)  # committed: it is on its way
    w.send(T0 + 100, type="vehicle", tenant=TENANT, depot=DEPOT, vehicle="late-shift",
           capacity=[100], shift=[T0 + 1800, T0 + 10 * 3600])  # fmt: skip
    later = {p.vehicle: p for p in w.replan(T0 + 1300).plans}  # van-0's shift is over
    assert later["van-0"].stops == ()
    assert later["van-0"].version == 2
    assert [s.order for s in later["late-shift"].stops] == [oid]
