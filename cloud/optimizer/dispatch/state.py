"""The dispatcher's memory: depots, their vehicles and orders, and what each vehicle was sent.

Everything here is rebuilt from the database at start (`cloud.optimizer.dispatch.store`); the
Kafka topics only bring changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from cloud.optimizer.dispatch.messages import DepotDoc, OrderDoc, Position, VehicleDoc

DepotKey = tuple[str, str]  # (tenant, depot)
VehicleKey = tuple[str, str]  # (tenant, vehicle)
TaskName = Literal["pickup", "delivery"]
StopKey = tuple[str, str]  # (order id, task name)
OrderStatus = Literal["open", "cancelled", "done"]

# Plans kept per vehicle, newest first, so an acknowledgement of a recent version still finds
# its stops.
KEEP_PLANS = 8


@dataclass
class OrderState:
    doc: OrderDoc
    status: OrderStatus = "open"
    done: set[str] = field(default_factory=set)  # task names completed
    picked_by: str | None = None  # vehicle carrying a pair's goods after its pickup
    assigned: str | None = None  # vehicle of the latest plan (None: unassigned)
    reason: str | None = None  # why unassigned, if it is

    @property
    def pending(self) -> bool:
        if self.status != "open":
            return False
        if self.doc.kind == "pair":
            return "delivery" not in self.done
        return not self.done

    def task_pending(self, task: str) -> bool:
        return self.pending and task not in self.done


@dataclass(frozen=True)
class PlannedStop:
    """One stop of a vehicle's plan; times in epoch seconds (UTC)."""

    order: str
    task: str
    lat: float
    lon: float
    eta_s: float  # arrival
    start_s: float  # service start (arrival, or the window's opening if earlier)
    departure_s: float
    service_s: float

    @property
    def key(self) -> StopKey:
        return (self.order, self.task)


@dataclass(frozen=True)
class VehiclePlan:
    """The plan of one vehicle, as sent in a route_plan command."""

    tenant: str
    depot: str
    vehicle: str
    version: int
    stops: tuple[PlannedStop, ...]
    end_eta_s: float | None  # back at the depot
    generated_at_s: float
    trigger: str
    committed: StopKey | None = None

    @property
    def keys(self) -> tuple[StopKey, ...]:
        return tuple(s.key for s in self.stops)


@dataclass
class VehicleState:
    doc: VehicleDoc
    broken: bool = False
    broken_at: Position | None = None  # where it broke down (goods on board are there)
    available_from_s: float = 0.0  # running late: cannot go on before this
    last_version: int = 0  # highest plan version ever issued (only grows)
    last_seq: int = 0  # downlink seq of the last command (only grows)
    plans: dict[int, VehiclePlan] = field(default_factory=dict)  # recent versions
    acked_version: int = 0  # highest version acknowledged accepted/applied
    late_flagged_version: int = 0  # plan version whose lateness already triggered a solve

    @property
    def key(self) -> VehicleKey:
        return (self.doc.tenant, self.doc.vehicle)

    @property
    def usable(self) -> bool:
        return self.doc.active and not self.broken

    @property
    def current(self) -> VehiclePlan | None:
        return self.plans.get(self.last_version)

    def remember(self, plan: VehiclePlan) -> None:
        self.plans[plan.version] = plan
        self.last_version = max(self.last_version, plan.version)
        for old in sorted(self.plans)[:-KEEP_PLANS]:
            if old != self.acked_version:
                del self.plans[old]


@dataclass
class DepotState:
    tenant: str
    depot: str
    doc: DepotDoc | None = None
    dirty_since_s: float | None = None
    reasons: set[str] = field(default_factory=set)
    last_solve_s: float = float("-inf")

    @property
    def key(self) -> DepotKey:
        return (self.tenant, self.depot)

    def touch(self, reason: str, now: float) -> None:
        if self.dirty_since_s is None:
            self.dirty_since_s = now
        self.reasons.add(reason)
