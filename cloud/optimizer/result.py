"""What `solve` returns: timed routes, the cost broken down, unassigned jobs with a reason."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum


@dataclass(frozen=True)
class Answer:
    """An engine's raw answer: visit sequences per vehicle, before timing and checking.

    routes[v] lists (job index, task index) pairs in visiting order for vehicle v. Engines
    that place breaks also give their own schedule (`starts`: service start per visit,
    `break_starts`: per break of the vehicle), which the result then keeps.
    """

    engine: str
    routes: tuple[tuple[tuple[int, int], ...], ...]
    starts: tuple[tuple[float, ...], ...] | None = None
    break_starts: tuple[tuple[float, ...], ...] | None = None
    route_starts: tuple[float, ...] | None = None


@dataclass(frozen=True)
class Stop:
    """One visit with its ETA: arrival, service start, departure (s)."""

    job_id: str
    task: int
    kind: str
    location: int
    arrival: float
    start: float
    departure: float
    load: tuple[int, ...]  # on board after the visit, per dimension


@dataclass(frozen=True)
class ScheduledBreak:
    break_id: str
    start: float
    end: float


@dataclass(frozen=True)
class Route:
    vehicle_id: str
    stops: tuple[Stop, ...]
    breaks: tuple[ScheduledBreak, ...]
    departure: float  # leaves its start location
    arrival: float  # reaches its end location (or finishes its last stop if open)
    start_load: tuple[int, ...]
    distance: float
    duration: float


@dataclass(frozen=True)
class Cost:
    """Cost parts in their own units, and the weighted total the engines minimise."""

    distance: float
    duration: float
    fixed: float
    penalties: float
    total: float


class Reason(StrEnum):
    NO_VEHICLE_WITH_SKILLS = "no_vehicle_with_skills"
    OVER_CAPACITY = "over_capacity"
    UNREACHABLE_IN_TIME = "unreachable_in_time"
    NOT_WORTH_SERVING = "not_worth_serving"  # optional; its penalty is below its cost
    NO_ROOM = "no_room"  # could be served alone, but not together with the rest
    NO_ANSWER = "no_answer"  # no engine produced a usable answer


@dataclass(frozen=True)
class Unassigned:
    job_id: str
    reason: Reason
    mandatory: bool


@dataclass(frozen=True)
class Attempt:
    """One engine's answer as seen by the portfolio (for logs and benchmarks)."""

    engine: str
    total: float
    feasible: bool
    violations: int


@dataclass(frozen=True)
class Result:
    routes: tuple[Route, ...]
    unassigned: tuple[Unassigned, ...]
    cost: Cost
    engine: str
    feasible: bool
    violations: tuple[str, ...] = ()
    runtime: float = 0.0
    attempts: tuple[Attempt, ...] = field(default=())

    def with_runtime(self, runtime: float) -> Result:
        return replace(self, runtime=runtime)

    @property
    def num_vehicles(self) -> int:
        return sum(1 for r in self.routes if r.stops)
