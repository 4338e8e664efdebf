"""The live dispatcher's logic, without Kafka or a database: changes in, plans out.

`apply_*` take one change each and mark the depots it touches as needing a re-optimisation
(a trigger); `due(now)` says which depots to re-optimise now (debounced); `reoptimise` solves
one depot and returns the plans that changed, each with the next version of its vehicle.
The service (`cloud.optimizer.dispatch.service`) persists those plans, then sends them.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from cloud.optimizer import solve
from cloud.optimizer.dispatch.messages import (
    BREAKDOWN,
    LATE,
    REPAIRED,
    STOP_COMPLETED,
    CancelDoc,
    DepotDoc,
    OrderDoc,
    OrdersTopicDoc,
    VehicleDoc,
    VehicleEvent,
)
from cloud.optimizer.dispatch.planner import (
    Fix,
    PlannerConfig,
    Solved,
    Solver,
    committed_stop,
    plan_depot,
)
from cloud.optimizer.dispatch.state import (
    DepotKey,
    DepotState,
    OrderState,
    PlannedStop,
    VehicleKey,
    VehiclePlan,
    VehicleState,
)
from cloud.optimizer.model import Location
from flota_wire import AckStatus, CommandAck

log = logging.getLogger(__name__)

# The command id of every route plan: one per vehicle, superseded by higher versions.
PLAN_COMMAND_ID = "route-plan"
_PLAN_VERSION = re.compile(r"-v([0-9]{1,18})$")


def plan_id(depot: str, vehicle: str, version: int) -> str:
    """The ``plan_id`` of a route plan (`commands.plan_payload`), named in stop events."""
    return f"{depot}-{vehicle}-v{version}"[:64]


Positions = Callable[[str, list[str]], Mapping[str, Fix]]


@dataclass(frozen=True)
class DispatchConfig:
    min_interval_s: float = 10.0  # at most one re-optimisation per depot this often
    settle_s: float = 1.0  # wait after the first trigger so a burst makes one solve
    refresh_s: float = 300.0  # re-optimise a depot with open orders at least this often
    late_after_s: float = 300.0  # this far past the next stop's ETA: running late
    position_check_s: float = 30.0  # how often positions are compared with the plans
    eta_tolerance_s: float = 120.0  # same stops, ETAs within this: plan unchanged
    planner: PlannerConfig = field(default_factory=PlannerConfig)


@dataclass
class Replan:
    """The outcome of one depot's re-optimisation."""

    depot: DepotKey
    trigger: str
    plans: list[VehiclePlan]  # changed plans, each with its new version
    solved: Solved | None


def _no_positions(_tenant: str, _vehicles: list[str]) -> Mapping[str, Fix]:
    return {}


class Dispatcher:
    def __init__(
        self,
        config: DispatchConfig | None = None,
        *,
        solver: Solver = solve,
        positions: Positions = _no_positions,
    ) -> None:
        self.config = config or DispatchConfig()
        self.solver = solver
        self.positions = positions
        self.depots: dict[DepotKey, DepotState] = {}
        self.vehicles: dict[VehicleKey, VehicleState] = {}
        self.orders: dict[tuple[str, str], OrderState] = {}  # (tenant, order id)
        self.counters: Counter[str] = Counter()  # events applied or ignored, by reason
        self._positions_checked_s = float("-inf")

    # -- state ---------------------------------------------------------------------------
    def depot(self, tenant: str, depot: str) -> DepotState:
        key = (tenant, depot)
        if key not in self.depots:
            self.depots[key] = DepotState(tenant, depot)
        return self.depots[key]

    def depot_vehicles(self, key: DepotKey) -> list[VehicleState]:
        return [v for v in self.vehicles.values() if (v.doc.tenant, v.doc.depot) == key]

    def depot_orders(self, key: DepotKey) -> list[OrderState]:
        return [o for o in self.orders.values() if (o.doc.tenant, o.doc.depot) == key and o.pending]

    # -- changes -------------------------------------------------------------------------
    def apply_doc(self, doc: OrdersTopicDoc, now: float) -> None:
        """An orders-topic document: order, cancel, depot or vehicle."""
        if isinstance(doc, OrderDoc):
            old = self.orders.get((doc.tenant, doc.id))
            if old is not None and old.status != "open":
                log.info("order %s/%s is %s; revision ignored", doc.tenant, doc.id, old.status)
                return
            if old is not None and (old.doc.depot != doc.depot):
                self.depot(old.doc.tenant, old.doc.depot).touch("order_moved", now)
            state = OrderState(doc)
            if old is not None:
                state.done, state.picked_by = old.done, old.picked_by
            self.orders[(doc.tenant, doc.id)] = state
            self.depot(doc.tenant, doc.depot).touch("order_new", now)
        elif isinstance(doc, CancelDoc):
            order = self.orders.get((doc.tenant, doc.id))
            if order is None or order.status != "open":
                log.info("cancel of unknown or closed order %s/%s", doc.tenant, doc.id)
                return
            order.status = "cancelled"
            self.depot(doc.tenant, order.doc.depot).touch("order_cancelled", now)
        elif isinstance(doc, DepotDoc):
            self.depot(doc.tenant, doc.depot).doc = doc
            self.depot(doc.tenant, doc.depot).touch("depot", now)
        elif isinstance(doc, VehicleDoc):
            key = (doc.tenant, doc.vehicle)
            old_v = self.vehicles.get(key)
            if old_v is None:
                self.vehicles[key] = VehicleState(doc)
            else:
                if old_v.doc.depot != doc.depot:
                    self.depot(doc.tenant, old_v.doc.depot).touch("vehicle_left", now)
                old_v.doc = doc
            self.depot(doc.tenant, doc.depot).touch("vehicle", now)

    def apply_event(self, ev: VehicleEvent, now: float) -> bool:
        """A vehicle event; False when the vehicle is unknown here."""
        vehicle = self.vehicles.get((ev.tenant, ev.vehicle))
        if vehicle is None:
            return False
        depot = self.depot(ev.tenant, vehicle.doc.depot)
        if ev.kind == BREAKDOWN:
            vehicle.broken = True
            vehicle.broken_at = ev.position
            depot.touch("breakdown", now)
        elif ev.kind == REPAIRED:
            vehicle.broken = False
            vehicle.broken_at = None
            depot.touch("repaired", now)
        elif ev.kind == LATE:
            vehicle.available_from_s = max(vehicle.available_from_s, ev.time_s + ev.delay_s)
            depot.touch("late", now)
        elif ev.kind == STOP_COMPLETED:
            self._stop_completed(vehicle, ev)
        return True

    def _stop_completed(self, vehicle: VehicleState, ev: VehicleEvent) -> None:
        """``order`` and ``task`` (or ``stop_id``, see VehicleEvent); with a ``plan_id`` (as the
        agent sends), that plan must be one of this vehicle's and hold the stop, else the
        completion is ignored (counted, logged)."""
        order_id = str(ev.detail.get("order") or "")
        order = self.orders.get((ev.tenant, order_id))
        if order is None:
            self.counters["stop_completed_unknown_order"] += 1
            log.warning("stop_completed for unknown order %s/%s (detail %s)", ev.tenant,
                        order_id, ev.detail)  # fmt: skip
            return
        default = "pickup" if order.doc.kind == "pickup" else "delivery"
        task = str(ev.detail.get("task") or default)
        pid = ev.detail.get("plan_id")
        if pid is not None:
            why = self._plan_mismatch(vehicle, str(pid), (order_id, task))
            if why is not None:
                self.counters[f"stop_completed_{why}"] += 1
                log.warning("stop_completed of %s/%s %s:%s ignored: %s %s", ev.tenant,
                            ev.vehicle, order_id, task, why.replace("_", " "), pid)  # fmt: skip
                return
        self.counters["stop_completed"] += 1
        order.done.add(task)
        if order.doc.kind == "pair" and task == "pickup":
            order.picked_by = vehicle.doc.vehicle
        if not order.pending and order.status == "open":
            order.status = "done"

    def _plan_mismatch(self, vehicle: VehicleState, pid: str, stop: tuple[str, str]) -> str | None:
        """None if plan ``pid`` is this vehicle's and holds ``stop``; else the reason."""
        for plan in vehicle.plans.values():
            if plan_id(plan.depot, plan.vehicle, plan.version) == pid:
                return None if stop in plan.keys else "stop_not_in_plan"
        # An older version than those kept in memory: its id names this vehicle and a version
        # it was sent.
        m = _PLAN_VERSION.search(pid)
        if m is not None and 1 <= int(m.group(1)) <= vehicle.last_version:
            depots = {vehicle.doc.depot} | {p.depot for p in vehicle.plans.values()}
            version = int(m.group(1))
            if any(plan_id(d, vehicle.doc.vehicle, version) == pid for d in depots):
                return None
        return "plan_not_the_vehicles"

    def apply_ack(self, tenant: str, vehicle_id: str, ack: CommandAck) -> VehiclePlan | None:
        """A vehicle's acknowledgement of a route plan: the plan it names, if known here."""
        vehicle = self.vehicles.get((tenant, vehicle_id))
        if vehicle is None or ack.command_id != PLAN_COMMAND_ID:
            return None
        plan = vehicle.plans.get(ack.command_version)
        ok = ack.status in (AckStatus.ACCEPTED, AckStatus.APPLIED)
        if ok and plan is not None and ack.command_version > vehicle.acked_version:
            vehicle.acked_version = ack.command_version
        return plan

    # -- triggers --------------------------------------------------------------------------
    def due(self, now: float) -> list[DepotKey]:
        """Depots to re-optimise now: triggered, settled, and not re-optimised too recently.
        Also raises the periodic and running-late triggers."""
        cfg = self.config
        settled = now - cfg.settle_s  # triggers raised here have no burst to wait for
        for v in self.vehicles.values():
            plan = v.current
            if plan is None or not v.usable or v.late_flagged_version >= plan.version:
                continue
            nxt = self._next_stop(v, plan)
            if nxt is not None and now > nxt.eta_s + cfg.late_after_s:
                v.late_flagged_version = plan.version
                self.depot(v.doc.tenant, v.doc.depot).touch("late_detected", settled)
        if now - self._positions_checked_s >= cfg.position_check_s:
            self._positions_checked_s = now
            self._check_positions(now, settled)
        out = []
        busy = {(o.doc.tenant, o.doc.depot) for o in self.orders.values() if o.pending}
        for key, d in self.depots.items():
            stale = now - d.last_solve_s >= cfg.refresh_s
            if d.dirty_since_s is None and stale and key in busy:
                d.touch("refresh", settled)
            if d.dirty_since_s is None:
                continue
            if now - d.dirty_since_s >= cfg.settle_s and now - d.last_solve_s >= cfg.min_interval_s:
                out.append(key)
        return out

    def _check_positions(self, now: float, settled: float) -> None:
        """Running late, seen from where the vehicle is: from its latest position, its next
        stop cannot be reached before that stop's ETA + LATE_AFTER_S."""
        cfg = self.config.planner
        watch: dict[str, list[tuple[VehicleState, PlannedStop]]] = {}
        for v in self.vehicles.values():
            plan = v.current
            if plan is None or not v.usable or v.late_flagged_version >= plan.version:
                continue
            nxt = self._next_stop(v, plan)
            if nxt is not None:
                watch.setdefault(v.doc.tenant, []).append((v, nxt))
        for tenant, pairs in watch.items():
            matrix = cfg.matrix(tenant, now)
            fixes = self.positions(tenant, [v.doc.vehicle for v, _ in pairs])
            for v, stop in pairs:
                fix = fixes.get(v.doc.vehicle)
                if fix is None or now - fix.time_s > cfg.position_max_age_s:
                    continue
                here, there = Location(fix.lon, fix.lat), Location(stop.lon, stop.lat)
                travel = float(matrix.matrices([here, there])[1][0, 1])
                if max(now, fix.time_s) + travel > stop.eta_s + self.config.late_after_s:
                    v.late_flagged_version = v.last_version
                    self.depot(tenant, v.doc.depot).touch("late_position", settled)

    def _next_stop(self, v: VehicleState, plan: VehiclePlan) -> PlannedStop | None:
        for stop in plan.stops:
            order = self.orders.get((v.doc.tenant, stop.order))
            if order is not None and order.task_pending(stop.task):
                return stop
        return None

    # -- re-optimisation -----------------------------------------------------------------
    def reoptimise(self, key: DepotKey, now: float) -> Replan:
        depot = self.depot(*key)
        trigger = ",".join(sorted(depot.reasons)) or "manual"
        depot.dirty_since_s = None
        depot.reasons = set()
        depot.last_solve_s = now
        vehicles = self.depot_vehicles(key)
        orders = self.depot_orders(key)
        ids = [v.doc.vehicle for v in vehicles]
        positions = self.positions(key[0], ids) if ids else {}
        solved = plan_depot(
            depot, vehicles, orders, positions, now, self.config.planner, self.solver
        )
        if solved is None:
            return Replan(key, trigger, [], None)
        for order in orders:
            order.assigned = solved.assigned.get(order.doc.id)
            order.reason = solved.unassigned.get(order.doc.id)
        changed = []
        for v in vehicles:
            stops, end = solved.routes.get(v.doc.vehicle, ((), None))
            if not self._changed(v, stops):
                continue
            plan = VehiclePlan(
                tenant=key[0],
                depot=key[1],
                vehicle=v.doc.vehicle,
                version=v.last_version + 1,
                stops=stops,
                end_eta_s=end,
                generated_at_s=now,
                trigger=trigger,
                committed=committed_stop(v, {o.doc.id: o for o in orders}),
            )
            v.remember(plan)
            changed.append(plan)
        self._forget_closed(key)
        log.info(
            "depot %s/%s re-optimised (%s): %d orders, %d vehicles, %d plans changed, "
            "%d unassigned, engine %s",
            *key, trigger, len(orders), len(vehicles), len(changed), len(solved.unassigned),
            solved.engine,
        )  # fmt: skip
        return Replan(key, trigger, changed, solved)

    def _forget_closed(self, key: DepotKey) -> None:
        """Drop done and cancelled orders no vehicle's current plan still shows."""
        shown = {
            (v.doc.tenant, s.order)
            for v in self.depot_vehicles(key)
            if v.current is not None
            for s in v.current.stops
        }
        for okey, order in list(self.orders.items()):
            same_depot = (order.doc.tenant, order.doc.depot) == key
            if same_depot and order.status != "open" and okey not in shown:
                del self.orders[okey]

    def _changed(self, v: VehicleState, stops: Iterable[PlannedStop]) -> bool:
        new = tuple(stops)
        old = v.current
        if old is None:
            return bool(new)
        # Stops done since are gone from the new plan without a change; a cancelled one is a
        # change the vehicle must hear about.
        pending = tuple(s for s in old.stops if not self._completed(v, s))
        if tuple(s.key for s in pending) != tuple(s.key for s in new):
            return True
        tol = self.config.eta_tolerance_s
        return any(abs(a.eta_s - b.eta_s) > tol for a, b in zip(pending, new, strict=True))

    def _completed(self, v: VehicleState, stop: PlannedStop) -> bool:
        order = self.orders.get((v.doc.tenant, stop.order))
        return order is not None and (stop.task in order.done or order.status == "done")
