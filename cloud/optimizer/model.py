"""The routing model: a builder (`Model`) that produces immutable `ProblemData`.

Units: distances in metres (or the instance's own unit for benchmark files), times in seconds
from an origin the caller chooses (e.g. midnight UTC of the plan day). Amounts are integers per
capacity dimension (e.g. kilograms, pallets).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, TypedDict, Unpack

import numpy as np
import numpy.typing as npt

from cloud.optimizer.errors import ModelError

if TYPE_CHECKING:
    from cloud.optimizer.matrix import MatrixProvider

FloatMatrix = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TimeWindow:
    """A closed interval [start, end] in seconds; `end` may be infinite."""

    start: float = 0.0
    end: float = math.inf

    def __post_init__(self) -> None:
        if math.isnan(self.start) or math.isnan(self.end) or self.start > self.end:
            raise ModelError(f"time window [{self.start}, {self.end}] is empty or not a number")
        if self.start < 0:
            raise ModelError(f"time window starts before 0: {self.start}")


ALWAYS = TimeWindow()


@dataclass(frozen=True)
class Location:
    """A point: x/y in the matrix provider's frame (longitude/latitude degrees for geo)."""

    x: float
    y: float
    name: str = ""


@dataclass(frozen=True)
class Depot:
    id: str
    location: int
    window: TimeWindow = ALWAYS


@dataclass(frozen=True)
class Break:
    """A driver break of `duration` seconds that must start inside `window`."""

    id: str
    window: TimeWindow
    duration: float


@dataclass(frozen=True)
class Vehicle:
    """One vehicle. `start`/`end` are location indices; `end=None` is an open route.

    A vehicle already on the road starts at its current position (any location) at
    `shift.start` (= now). `locked` lists single-visit jobs it has committed to: its route must
    begin with them, in that order (the live dispatcher's frozen prefix).
    """

    id: str
    capacity: tuple[int, ...]
    start: int
    end: int | None
    shift: TimeWindow = ALWAYS
    breaks: tuple[Break, ...] = ()
    skills: frozenset[str] = frozenset()
    fixed_cost: float = 0.0
    locked: tuple[str, ...] = ()


class JobKind(StrEnum):
    DELIVERY = "delivery"  # goods loaded at the vehicle's start, dropped here
    PICKUP = "pickup"  # goods collected here, brought to the vehicle's end
    PAIR = "pair"  # collected at tasks[0], dropped at tasks[1] by the same vehicle


@dataclass(frozen=True)
class Task:
    """One visit: where, when service may start (any of the windows), and for how long."""

    location: int
    windows: tuple[TimeWindow, ...] = (ALWAYS,)
    service: float = 0.0


@dataclass(frozen=True)
class Job:
    """A delivery, a pickup or a pickup-and-delivery pair.

    `penalty` is the cost of leaving the job out (in cost units, i.e. distance-equivalents);
    None means the job is mandatory. `priority` (>= 0) multiplies the penalty by
    (1 + priority), so higher priorities are dropped last.
    """

    id: str
    kind: JobKind
    tasks: tuple[Task, ...]
    amount: tuple[int, ...] = ()
    priority: int = 0
    penalty: float | None = None
    skills: frozenset[str] = frozenset()
    allowed_vehicles: frozenset[str] = frozenset()

    @property
    def mandatory(self) -> bool:
        return self.penalty is None


@dataclass(frozen=True, eq=False)
class ProblemData:
    """Immutable problem: build it with `Model`. Matrices are read-only numpy arrays."""

    locations: tuple[Location, ...]
    depots: tuple[Depot, ...]
    vehicles: tuple[Vehicle, ...]
    jobs: tuple[Job, ...]
    distances: FloatMatrix
    durations: FloatMatrix
    dimensions: int
    name: str = ""
    job_index: dict[str, int] = field(default_factory=dict, repr=False)

    def job(self, job_id: str) -> Job:
        return self.jobs[self.job_index[job_id]]

    def vehicle_can_serve(self, vehicle: Vehicle, job: Job) -> bool:
        """Skills and allowed-vehicle restrictions (not capacity or time)."""
        if not job.skills <= vehicle.skills:
            return False
        return not job.allowed_vehicles or vehicle.id in job.allowed_vehicles


def _check_windows(windows: Sequence[TimeWindow], what: str) -> tuple[TimeWindow, ...]:
    if not windows:
        raise ModelError(f"{what}: at least one time window is needed")
    ordered = tuple(sorted(windows, key=lambda w: w.start))
    for before, after in itertools.pairwise(ordered):
        if after.start <= before.end:
            raise ModelError(f"{what}: time windows overlap or touch; merge them")
    return ordered


class JobOptions(TypedDict, total=False):
    """Keyword options shared by `add_delivery` and `add_pickup`."""

    windows: Sequence[TimeWindow]
    service: float
    priority: int
    penalty: float | None
    skills: Iterable[str]
    allowed_vehicles: Iterable[str]


class Model:
    """Builder: add locations, depots, vehicles and jobs, then call `data()`."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._locations: list[Location] = []
        self._depots: list[Depot] = []
        self._vehicles: list[Vehicle] = []
        self._jobs: list[Job] = []

    # -- locations and depots -------------------------------------------------------------
    def add_location(self, x: float, y: float, name: str = "") -> int:
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ModelError(f"location {name!r}: coordinates must be finite")
        self._locations.append(Location(float(x), float(y), name))
        return len(self._locations) - 1

    def add_depot(self, id: str, location: int, window: TimeWindow = ALWAYS) -> Depot:
        self._check_location(location, f"depot {id!r}")
        depot = Depot(id, location, window)
        self._depots.append(depot)
        return depot

    # -- vehicles ---------------------------------------------------------------------------
    def add_vehicle(
        self,
        id: str,
        capacity: Iterable[int],
        *,
        start: int | Depot,
        end: int | Depot | None,
        shift: TimeWindow = ALWAYS,
        breaks: Iterable[Break] = (),
        skills: Iterable[str] = (),
        fixed_cost: float = 0.0,
        locked: Iterable[str] = (),
    ) -> Vehicle:
        start_loc = start.location if isinstance(start, Depot) else start
        end_loc = end.location if isinstance(end, Depot) else end
        what = f"vehicle {id!r}"
        self._check_location(start_loc, what)
        if end_loc is not None:
            self._check_location(end_loc, what)
        cap = tuple(int(c) for c in capacity)
        if any(c < 0 for c in cap):
            raise ModelError(f"{what}: negative capacity {cap}")
        if fixed_cost < 0 or not math.isfinite(fixed_cost):
            raise ModelError(f"{what}: fixed cost must be finite and >= 0")
        brks = tuple(breaks)
        for brk in brks:
            if brk.duration < 0 or brk.window.start < shift.start:
                raise ModelError(
                    f"{what}: break {brk.id!r} has negative length or is outside shift"
                )
        vehicle = Vehicle(
            id,
            cap,
            start_loc,
            end_loc,
            shift,
            brks,
            frozenset(skills),
            float(fixed_cost),
            tuple(locked),
        )
        self._vehicles.append(vehicle)
        return vehicle

    # -- jobs -------------------------------------------------------------------------------
    def add_delivery(
        self, id: str, location: int, amount: Iterable[int] = (), **kw: Unpack[JobOptions]
    ) -> Job:
        return self._add_single(JobKind.DELIVERY, id, location, amount, **kw)

    def add_pickup(
        self, id: str, location: int, amount: Iterable[int] = (), **kw: Unpack[JobOptions]
    ) -> Job:
        return self._add_single(JobKind.PICKUP, id, location, amount, **kw)

    def add_pair(
        self,
        id: str,
        pickup: Task,
        delivery: Task,
        amount: Iterable[int] = (),
        *,
        priority: int = 0,
        penalty: float | None = None,
        skills: Iterable[str] = (),
        allowed_vehicles: Iterable[str] = (),
    ) -> Job:
        tasks = (
            self._task(pickup.location, pickup.windows, pickup.service, f"pair {id!r} pickup"),
            self._task(delivery.location, delivery.windows, delivery.service, f"pair {id!r}"),
        )
        return self._add_job(
            Job(
                id,
                JobKind.PAIR,
                tasks,
                tuple(int(a) for a in amount),
                priority,
                penalty,
                frozenset(skills),
                frozenset(allowed_vehicles),
            )
        )

    def _add_single(
        self,
        kind: JobKind,
        id: str,
        location: int,
        amount: Iterable[int],
        *,
        windows: Sequence[TimeWindow] = (ALWAYS,),
        service: float = 0.0,
        priority: int = 0,
        penalty: float | None = None,
        skills: Iterable[str] = (),
        allowed_vehicles: Iterable[str] = (),
    ) -> Job:
        task = self._task(location, windows, service, f"{kind} {id!r}")
        return self._add_job(
            Job(
                id,
                kind,
                (task,),
                tuple(int(a) for a in amount),
                int(priority),
                penalty,
                frozenset(skills),
                frozenset(allowed_vehicles),
            )
        )

    def _task(
        self, location: int, windows: Sequence[TimeWindow], service: float, what: str
    ) -> Task:
        self._check_location(location, what)
        if service < 0 or not math.isfinite(service):
            raise ModelError(f"{what}: service time must be finite and >= 0")
        return Task(location, _check_windows(windows, what), float(service))

    def _add_job(self, job: Job) -> Job:
        what = f"job {job.id!r}"
        if any(a < 0 for a in job.amount):
            raise ModelError(f"{what}: negative amount {job.amount}")
        if job.priority < 0:
            raise ModelError(f"{what}: priority must be >= 0")
        if job.penalty is not None and (job.penalty < 0 or not math.isfinite(job.penalty)):
            raise ModelError(f"{what}: penalty must be finite and >= 0 (None = mandatory)")
        self._jobs.append(job)
        return job

    def _check_location(self, location: int, what: str) -> None:
        if not 0 <= location < len(self._locations):
            raise ModelError(f"{what}: unknown location index {location}")

    # -- build ------------------------------------------------------------------------------
    def data(
        self,
        matrix: MatrixProvider | None = None,
        *,
        distances: npt.ArrayLike | None = None,
        durations: npt.ArrayLike | None = None,
    ) -> ProblemData:
        """Validate the whole model and freeze it, with matrices from `matrix` or given."""
        if matrix is not None:
            dist, dur = matrix.matrices(self._locations)
        elif distances is not None and durations is not None:
            dist = np.asarray(distances, dtype=np.float64)
            dur = np.asarray(durations, dtype=np.float64)
        else:
            raise ModelError("give a matrix provider or both distance and duration matrices")
        n = len(self._locations)
        for name, mat in (("distance", dist), ("duration", dur)):
            if mat.shape != (n, n):
                raise ModelError(f"{name} matrix is {mat.shape}, expected {(n, n)}")
            if not np.all(np.isfinite(mat)) or np.any(mat < 0):
                raise ModelError(f"{name} matrix must be finite and >= 0")
        if not self._vehicles:
            raise ModelError("the model has no vehicle")
        dims = self._dimensions()
        job_index: dict[str, int] = {}
        for i, job in enumerate(self._jobs):
            if job.id in job_index:
                raise ModelError(f"duplicate job id {job.id!r}")
            job_index[job.id] = i
        self._check_vehicles(job_index)
        dist = dist.copy()
        dur = dur.copy()
        dist.setflags(write=False)
        dur.setflags(write=False)
        return ProblemData(
            tuple(self._locations),
            tuple(self._depots),
            tuple(self._vehicles),
            tuple(self._jobs),
            dist,
            dur,
            dims,
            self.name,
            job_index,
        )

    def _dimensions(self) -> int:
        dims = {len(v.capacity) for v in self._vehicles}
        if len(dims) != 1:
            raise ModelError(f"vehicles disagree on the number of capacity dimensions: {dims}")
        n = dims.pop()
        for job in self._jobs:
            if job.amount and len(job.amount) != n:
                raise ModelError(f"job {job.id!r}: amount has {len(job.amount)} dims, not {n}")
        # Jobs without an amount carry zero in every dimension.
        self._jobs = [
            j
            if j.amount
            else Job(
                j.id, j.kind, j.tasks, (0,) * n, j.priority, j.penalty, j.skills, j.allowed_vehicles
            )
            for j in self._jobs
        ]
        return n

    def _check_vehicles(self, job_index: dict[str, int]) -> None:
        seen: set[str] = set()
        vehicle_ids = {v.id for v in self._vehicles}
        if len(vehicle_ids) != len(self._vehicles):
            raise ModelError("duplicate vehicle id")
        for job in self._jobs:
            unknown = job.allowed_vehicles - vehicle_ids
            if unknown:
                raise ModelError(f"job {job.id!r}: unknown allowed vehicles {sorted(unknown)}")
        for vehicle in self._vehicles:
            for job_id in vehicle.locked:
                if job_id not in job_index:
                    raise ModelError(f"vehicle {vehicle.id!r}: locked job {job_id!r} unknown")
                if job_id in seen:
                    raise ModelError(f"job {job_id!r} is locked to two vehicles or twice")
                if self._jobs[job_index[job_id]].kind is JobKind.PAIR:
                    raise ModelError(f"locked job {job_id!r}: lock single visits, not pairs")
                seen.add(job_id)
