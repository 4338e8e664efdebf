"""What engines share: the constraint features a problem uses, and integer scaling."""

from __future__ import annotations

import math
import time
from enum import StrEnum
from typing import Protocol

import numpy as np
import numpy.typing as npt

from cloud.optimizer.model import JobKind, ProblemData
from cloud.optimizer.params import SolveParams
from cloud.optimizer.result import Answer
from cloud.optimizer.stop import StoppingCriterion

IntMatrix = npt.NDArray[np.int64]
HORIZON_CAP = 2**52  # integer times stay exactly representable as floats


class Feature(StrEnum):
    """Constraint kinds; each engine declares the ones it supports."""

    CAPACITY = "capacity"
    MULTI_DIMENSION = "multi_dimension"
    TIME_WINDOWS = "time_windows"
    MULTIPLE_WINDOWS = "multiple_windows"
    PICKUPS = "pickups"  # plain pickups mixed with deliveries (simultaneous)
    PAIRS = "pairs"  # pickup-and-delivery pairs on one vehicle
    SHIFTS = "shifts"
    BREAKS = "breaks"
    SKILLS = "skills"  # job skills or allowed-vehicle lists
    START_POSITION = "start_position"  # a vehicle starting away from any depot
    OPEN_ROUTES = "open_routes"
    OPTIONAL_JOBS = "optional_jobs"
    LOCKED = "locked"
    FIXED_COST = "fixed_cost"


# What each engine adapter supports, known without importing the engine's library (OR-Tools
# takes about 1 s to import: a problem routed to PyVRP alone must not pay for it).
_PYVRP = {
    Feature.CAPACITY, Feature.MULTI_DIMENSION, Feature.TIME_WINDOWS, Feature.MULTIPLE_WINDOWS,
    Feature.PICKUPS, Feature.PAIRS, Feature.SHIFTS, Feature.START_POSITION,
    Feature.OPTIONAL_JOBS, Feature.FIXED_COST,
}  # fmt: skip
SUPPORT: dict[str, frozenset[Feature]] = {"ortools": frozenset(Feature), "pyvrp": frozenset(_PYVRP)}


def features(data: ProblemData) -> frozenset[Feature]:
    """The constraint kinds this problem actually uses."""
    out = {Feature.CAPACITY}
    if data.dimensions > 1:
        out.add(Feature.MULTI_DIMENSION)
    depot_locs = {d.location for d in data.depots}
    for v in data.vehicles:
        if math.isfinite(v.shift.end) or v.shift.start > 0:
            out.add(Feature.SHIFTS)
        if v.breaks:
            out.add(Feature.BREAKS)
        if v.start not in depot_locs:
            out.add(Feature.START_POSITION)
        if v.end is None:
            out.add(Feature.OPEN_ROUTES)
        if v.locked:
            out.add(Feature.LOCKED)
        if v.fixed_cost:
            out.add(Feature.FIXED_COST)
    for job in data.jobs:
        for task in job.tasks:
            if len(task.windows) > 1:
                out.add(Feature.MULTIPLE_WINDOWS)
            if task.windows[0].start > 0 or math.isfinite(task.windows[-1].end):
                out.add(Feature.TIME_WINDOWS)
        if job.kind is JobKind.PICKUP:
            out.add(Feature.PICKUPS)
        elif job.kind is JobKind.PAIR:
            out.add(Feature.PAIRS)
        if job.skills or job.allowed_vehicles:
            out.add(Feature.SKILLS)
        if not job.mandatory:
            out.add(Feature.OPTIONAL_JOBS)
    return frozenset(out)


class Scaler:
    """Real numbers -> engine integers. Times round so integer-feasible means feasible."""

    def __init__(self, data: ProblemData, params: SolveParams) -> None:
        self.s = params.scale
        self.params = params
        # Cost of an arc in integer units; durations rounded up, distances to nearest.
        cost = params.distance_weight * data.distances + params.duration_weight * data.durations
        self.cost: IntMatrix = np.rint(cost * self.s).astype(np.int64)
        self.travel: IntMatrix = np.ceil(data.durations * self.s - 1e-9).astype(np.int64)
        self.travel = np.maximum(self.travel, 0)
        horizon = max(
            [v.shift.end for v in data.vehicles if math.isfinite(v.shift.end)]
            + [w.end for j in data.jobs for t in j.tasks for w in t.windows if math.isfinite(w.end)]
            + [0.0]
        )
        spread = float(data.durations.max(initial=0.0)) + max(
            (t.service for j in data.jobs for t in j.tasks), default=0.0
        )
        if horizon == 0.0:
            horizon = spread * (2 * len(data.jobs) + 2)
        self.horizon = min(self.up(horizon + spread * 2), HORIZON_CAP)

    def up(self, t: float) -> int:
        """A time bound that must not be beaten: round up (earliest starts, services)."""
        if math.isinf(t):
            return HORIZON_CAP
        return math.ceil(t * self.s - 1e-9)

    def down(self, t: float) -> int:
        """A deadline: round down."""
        if math.isinf(t):
            return HORIZON_CAP
        return math.floor(t * self.s + 1e-9)

    def money(self, cost: float) -> int:
        return round(cost * self.s)

    def real(self, t: int) -> float:
        return t / self.s


class Engine(Protocol):
    """An engine adapter. `initial` is another engine's answer to warm-start from."""

    name: str
    supported: frozenset[Feature]

    def solve(
        self,
        data: ProblemData,
        params: SolveParams,
        stop: StoppingCriterion,
        deadline: float,
        initial: Answer | None = None,
    ) -> Answer | None: ...


def seconds_left(deadline: float) -> float:
    """Wall time left until `deadline` (a time.time() value, comparable across processes)."""
    return max(0.0, deadline - time.time())
