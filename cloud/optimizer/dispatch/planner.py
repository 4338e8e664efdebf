"""One depot's live state -> a routing model -> per-vehicle stop lists.

Time origin of the model: `now` (t = 0). Vehicles start where they are (their latest position,
or the depot), no earlier than now or when a delay ends; a committed stop is locked first on
its vehicle; done tasks are gone; a pair whose pickup is done is a delivery for the vehicle
holding its goods, or (that vehicle broke down) a new pair collected at the breakdown site.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from cloud.optimizer import (
    GreatCircleMatrix,
    Model,
    OptimizerError,
    ProblemData,
    Result,
    SolveParams,
    Task,
    TimeWindow,
)
from cloud.optimizer.dispatch.messages import Position, Visit, Window
from cloud.optimizer.dispatch.state import (
    DepotState,
    OrderState,
    PlannedStop,
    StopKey,
    VehicleState,
)
from cloud.optimizer.matrix import ConstantSpeed, SpeedProvider
from cloud.optimizer.speeds.model import hour_of_week

log = logging.getLogger(__name__)

Solver = Callable[[ProblemData, SolveParams], Result]


@dataclass(frozen=True)
class Fix:
    """A vehicle's latest known position and when it was taken (epoch s)."""

    lat: float
    lon: float
    time_s: float


@dataclass(frozen=True)
class PlannerConfig:
    time_limit_s: float = 5.0
    circuity: float = 1.3
    speed_mps: float = 30 / 3.6
    position_max_age_s: float = 6 * 3600.0
    # Per tenant: the learned speeds (cloud.optimizer.speeds.SpeedCache.provider); None or a
    # tenant without a learned model: `speed_mps` everywhere.
    speeds: Callable[[str], SpeedProvider] | None = None

    def matrix(self, tenant: str, now: float) -> GreatCircleMatrix:
        """Travel times for a plan made at `now` (the hour of week the plan starts)."""
        provider = self.speeds(tenant) if self.speeds is not None else ConstantSpeed(self.speed_mps)
        return GreatCircleMatrix(self.circuity, provider, hour_of_week(now))


@dataclass
class _JobInfo:
    order: str
    tasks: tuple[tuple[str, Visit], ...]  # (task name, visit) per model task


@dataclass
class Solved:
    """What a re-optimisation produced, before versions are given out."""

    routes: dict[str, tuple[tuple[PlannedStop, ...], float | None]]  # vehicle -> stops, end
    assigned: dict[str, str]  # order -> vehicle
    unassigned: dict[str, str]  # order -> reason
    engine: str = ""
    feasible: bool = True
    notes: list[str] = field(default_factory=list)


def _windows(windows: Sequence[Window], origin: float) -> list[TimeWindow] | None:
    """Model windows relative to `origin`; None when every window has already closed."""
    if not windows:
        return [TimeWindow()]
    out = []
    for w in windows:
        end = math.inf if w.end is None else w.end - origin
        if end < 0:
            continue
        out.append(TimeWindow(max(0.0, w.start - origin), end))
    return out or None


def committed_stop(vehicle: VehicleState, orders: Mapping[str, OrderState]) -> StopKey | None:
    """The stop the vehicle is on its way to: the first pending stop of the newest plan it
    acknowledged (accepted or applied)."""
    plan = vehicle.plans.get(vehicle.acked_version)
    if plan is None or not vehicle.usable:
        return None
    for order_id, task in plan.keys:
        order = orders.get(order_id)
        if order is not None and order.task_pending(task):
            return (order_id, task)
    return None


class _Builder:
    def __init__(self, depot: DepotState, now: float, cfg: PlannerConfig) -> None:
        assert depot.doc is not None
        self.doc = depot.doc
        self.now = now
        self.cfg = cfg
        self.model = Model(f"{depot.tenant}/{depot.depot}")
        self.depot_loc = self.model.add_location(self.doc.location.lon, self.doc.location.lat)
        window = _windows([self.doc.window], now)
        self.depot_window = window[0] if window else TimeWindow(0.0, 0.0)
        self.jobs: dict[str, _JobInfo] = {}
        self.unassigned: dict[str, str] = {}
        self.notes: list[str] = []

    def loc(self, p: Position) -> int:
        return self.model.add_location(p.lon, p.lat)

    def task(self, visit: Visit) -> Task | None:
        windows = _windows(visit.windows, self.now)
        if windows is None:
            return None
        return Task(self.loc(visit.location), tuple(windows), visit.service_s)


def build(
    depot: DepotState,
    vehicles: Sequence[VehicleState],
    orders: Sequence[OrderState],
    positions: Mapping[str, Fix],
    now: float,
    cfg: PlannerConfig,
    *,
    locks: bool = True,
) -> tuple[_Builder, dict[str, StopKey | None]]:
    """The model of one depot at `now`, and each usable vehicle's committed stop (locked first
    on its route when `locks`)."""
    b = _Builder(depot, now, cfg)
    m = b.model
    by_id = {o.doc.id: o for o in orders}
    usable = [v for v in vehicles if v.usable]
    dims = len(usable[0].doc.capacity) if usable else 0
    fleet: list[tuple[VehicleState, TimeWindow]] = []
    for v in usable:
        if len(v.doc.capacity) != dims:
            b.notes.append(f"vehicle {v.doc.vehicle}: capacity dimensions differ; left out")
            continue
        shift_start = max(0.0, v.doc.shift.start - now, v.available_from_s - now)
        shift_end = math.inf if v.doc.shift.end is None else v.doc.shift.end - now
        shift_end = min(shift_end, b.depot_window.end)
        if shift_end < shift_start:
            b.notes.append(f"vehicle {v.doc.vehicle}: shift over; left out")
            continue
        fleet.append((v, TimeWindow(shift_start, shift_end)))
    ids = {v.doc.vehicle for v, _ in fleet}
    commits = {v.doc.vehicle: committed_stop(v, by_id) for v, _ in fleet}
    committed_by = {k: vid for vid, k in commits.items() if k is not None}
    broken = {v.doc.vehicle: v for v in vehicles if v.doc.vehicle not in ids}

    for order in orders:
        if not order.pending:
            continue
        doc = order.doc
        demand = doc.demand or (0,) * dims
        if len(demand) != dims:
            b.unassigned[doc.id] = "bad_demand_dimensions"
            continue
        visits = doc.visits()
        if doc.kind != "pair":
            task = b.task(visits[0])
            if task is None:
                b.unassigned[doc.id] = "expired"
                continue
            holder = committed_by.get((doc.id, doc.kind))
            allowed = [holder] if holder else []
            add = m.add_delivery if doc.kind == "delivery" else m.add_pickup
            add(doc.id, task.location, demand, windows=task.windows, service=task.service,
                priority=doc.priority, penalty=doc.penalty, skills=doc.skills,
                allowed_vehicles=allowed)  # fmt: skip
            b.jobs[doc.id] = _JobInfo(doc.id, ((doc.kind, visits[0]),))
            continue
        drop = b.task(visits[1])
        if drop is None:
            b.unassigned[doc.id] = "expired"
            continue
        holder = order.picked_by
        if "pickup" in order.done and holder in ids:
            # The goods are on board: a delivery only that vehicle can make.
            m.add_delivery(doc.id, drop.location, demand, windows=drop.windows,
                           service=drop.service, priority=doc.priority, penalty=doc.penalty,
                           skills=doc.skills, allowed_vehicles=[holder])  # fmt: skip
            b.jobs[doc.id] = _JobInfo(doc.id, (("delivery", visits[1]),))
            continue
        if "pickup" in order.done:
            # The carrier broke down (or left): collect the goods where it stands.
            carrier = broken.get(holder or "")
            site = (carrier.broken_at if carrier else None) or positions_pos(positions, holder)
            if site is None:
                b.unassigned[doc.id] = "goods_location_unknown"
                continue
            pick = Visit(location=site)
            b.notes.append(f"order {doc.id}: goods to collect from vehicle {holder}")
        else:
            pick = visits[0]
        pick_task = b.task(pick)
        if pick_task is None:
            b.unassigned[doc.id] = "expired"
            continue
        holder = committed_by.get((doc.id, "pickup"))
        m.add_pair(doc.id, pick_task, drop, demand, priority=doc.priority, penalty=doc.penalty,
                   skills=doc.skills, allowed_vehicles=[holder] if holder else [])  # fmt: skip
        b.jobs[doc.id] = _JobInfo(doc.id, (("pickup", pick), ("delivery", visits[1])))

    for v, shift in fleet:
        fix = positions.get(v.doc.vehicle)
        fresh = fix is not None and now - fix.time_s <= cfg.position_max_age_s
        start = m.add_location(fix.lon, fix.lat) if fix is not None and fresh else b.depot_loc
        commit = commits[v.doc.vehicle]
        info = b.jobs.get(commit[0]) if commit else None
        locked = [commit[0]] if locks and commit and info and len(info.tasks) == 1 else []
        m.add_vehicle(v.doc.vehicle, v.doc.capacity, start=start, end=b.depot_loc,
                      shift=shift, skills=v.doc.skills,
                      locked=locked)  # fmt: skip
    return b, commits


def positions_pos(positions: Mapping[str, Fix], vehicle: str | None) -> Position | None:
    fix = positions.get(vehicle or "")
    return None if fix is None else Position(lat=fix.lat, lon=fix.lon)


def plan_depot(
    depot: DepotState,
    vehicles: Sequence[VehicleState],
    orders: Sequence[OrderState],
    positions: Mapping[str, Fix],
    now: float,
    cfg: PlannerConfig,
    solver: Solver,
) -> Solved | None:
    """Re-optimise one depot; None when no usable plan came out (keep the current one)."""
    if depot.doc is None:
        log.warning("depot %s/%s has orders but no depot document yet", *depot.key)
        return None
    if not any(v.usable for v in vehicles):
        reasons = {o.doc.id: "no_vehicle" for o in orders if o.pending}
        return Solved({}, {}, reasons, "none", not reasons, ["no usable vehicle"])
    matrix = cfg.matrix(depot.tenant, now)
    try:
        b, _commits = build(depot, vehicles, orders, positions, now, cfg)
        data = b.model.data(matrix)
        result = _solve(data, cfg, solver)
        if result.violations and any(v.locked for v in data.vehicles):
            # A lock that cannot be kept (e.g. its window is gone): plan again without locks.
            b, _commits = build(depot, vehicles, orders, positions, now, cfg, locks=False)
            b.notes.append("locked stops could not be kept; re-planned without locks")
            data = b.model.data(matrix)
            result = _solve(data, cfg, solver)
    except OptimizerError as err:
        log.error("depot %s/%s: cannot plan: %s", *depot.key, err)
        return None
    except Exception:  # an engine failing on odd input must not stop the service
        log.exception("depot %s/%s: the optimizer failed", *depot.key)
        return None
    if result.violations:
        log.error("depot %s/%s: no valid plan (%s)", *depot.key, result.violations[0])
        return None
    return _to_plans(b, data, result)


def _solve(data: ProblemData, cfg: PlannerConfig, solver: Solver) -> Result:
    params = SolveParams(time_limit=cfg.time_limit_s, safety_margin=min(0.25, cfg.time_limit_s / 4))
    return solver(data, params)


def _to_plans(b: _Builder, data: ProblemData, result: Result) -> Solved:
    out = Solved({}, {}, dict(b.unassigned), result.engine, result.feasible, b.notes)
    for v in data.vehicles:
        out.routes[v.id] = ((), None)
    for route in result.routes:
        stops = []
        for s in route.stops:
            info = b.jobs[s.job_id]
            task, visit = info.tasks[s.task]
            stops.append(
                PlannedStop(
                    order=info.order,
                    task=task,
                    lat=visit.location.lat,
                    lon=visit.location.lon,
                    eta_s=b.now + s.arrival,
                    start_s=b.now + s.start,
                    departure_s=b.now + s.departure,
                    service_s=visit.service_s,
                )
            )
            out.assigned[info.order] = route.vehicle_id
        end = b.now + route.arrival if stops else None
        out.routes[route.vehicle_id] = (tuple(stops), end)
    for u in result.unassigned:
        out.unassigned[u.job_id] = str(u.reason)
    return out
