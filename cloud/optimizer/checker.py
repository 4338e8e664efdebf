"""An engine-independent check of a result against the problem, before it leaves the optimizer.

It trusts nothing the engines computed: it re-derives travel, loads and distances from the
model and checks every rule: each job served once (all its visits, one vehicle, pickup before
delivery) or reported unassigned; capacity per dimension at every point; time windows; shift;
depot hours; breaks; skills and allowed vehicles; locked prefixes; the reported distance.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from cloud.optimizer.model import JobKind, ProblemData
from cloud.optimizer.result import Result, Route
from cloud.optimizer.schedule import load_delta

EPS = 1e-6  # seconds / distance units of slack for float round-off


@dataclass(frozen=True)
class Violation:
    kind: str
    vehicle_id: str
    job_id: str
    detail: str

    def __str__(self) -> str:
        where = "/".join(x for x in (self.vehicle_id, self.job_id) if x)
        return f"{self.kind} [{where}]: {self.detail}"


def _tol(x: float) -> float:
    return EPS * max(1.0, abs(x))


def check(data: ProblemData, result: Result) -> list[Violation]:
    """Every violated rule; an empty list means the answer can be trusted."""
    out: list[Violation] = []
    vehicles = {v.id: v for v in data.vehicles}
    seen_vehicles: Counter[str] = Counter(r.vehicle_id for r in result.routes)
    for vid, n in seen_vehicles.items():
        if vid not in vehicles:
            out.append(Violation("unknown_vehicle", vid, "", "route for a vehicle not in model"))
        elif n > 1:
            out.append(Violation("vehicle_reused", vid, "", f"{n} routes for one vehicle"))
    out.extend(_check_coverage(data, result))
    for route in result.routes:
        if route.vehicle_id in vehicles:
            out.extend(_check_route(data, route))
    return out


def _check_coverage(data: ProblemData, result: Result) -> list[Violation]:
    out: list[Violation] = []
    visits: Counter[tuple[str, int]] = Counter()
    owner: dict[str, set[str]] = {}
    for route in result.routes:
        for stop in route.stops:
            visits[(stop.job_id, stop.task)] += 1
            owner.setdefault(stop.job_id, set()).add(route.vehicle_id)
    unassigned = Counter(u.job_id for u in result.unassigned)
    for (job_id, task), n in visits.items():
        if job_id not in data.job_index:
            out.append(Violation("unknown_job", "", job_id, "visit of a job not in the model"))
        elif n > 1:
            out.append(Violation("served_twice", "", job_id, f"task {task} visited {n} times"))
    for job in data.jobs:
        done = [visits[(job.id, t)] > 0 for t in range(len(job.tasks))]
        if any(done) and not all(done):
            out.append(Violation("pair_split", "", job.id, "only part of the job is served"))
        if any(done) and unassigned[job.id]:
            out.append(Violation("served_and_unassigned", "", job.id, "both served and left"))
        if not any(done) and unassigned[job.id] != 1:
            out.append(
                Violation("missing", "", job.id, "neither served nor reported unassigned once")
            )
        if len(owner.get(job.id, ())) > 1:
            out.append(Violation("pair_split", "", job.id, "visits on different vehicles"))
    return out


def _check_route(data: ProblemData, route: Route) -> list[Violation]:
    vehicle = next(v for v in data.vehicles if v.id == route.vehicle_id)
    out: list[Violation] = []

    def bad(kind: str, job_id: str, detail: str) -> None:
        out.append(Violation(kind, vehicle.id, job_id, detail))

    # Skills, allowed vehicles, locked prefix, pair order.
    position: dict[tuple[str, int], int] = {}
    for k, stop in enumerate(route.stops):
        position[(stop.job_id, stop.task)] = k
        if stop.job_id in data.job_index:
            job = data.job(stop.job_id)
            if not data.vehicle_can_serve(vehicle, job):
                bad("skills", stop.job_id, "vehicle lacks a skill or is not allowed")
            if stop.task >= len(job.tasks) or stop.location != job.tasks[stop.task].location:
                bad("wrong_location", stop.job_id, "stop is not at the task's location")
                return out
    for job_id in {s.job_id for s in route.stops}:
        if job_id in data.job_index and data.job(job_id).kind is JobKind.PAIR:
            p, d = position.get((job_id, 0)), position.get((job_id, 1))
            if p is not None and d is not None and p > d:
                bad("pair_order", job_id, "delivery before pickup")
    prefix = tuple(s.job_id for s in route.stops[: len(vehicle.locked)])
    if route.stops and prefix != vehicle.locked:
        bad("locked", "", f"route must begin with {vehicle.locked}, begins with {prefix}")

    # Capacity per dimension: start load = all deliveries on board.
    start_load = [0] * data.dimensions
    for stop in route.stops:
        job = data.job(stop.job_id)
        if job.kind is JobKind.DELIVERY:
            start_load = [a + b for a, b in zip(start_load, job.amount, strict=True)]
    load = start_load
    checkpoints = [("start", start_load)]
    for stop in route.stops:
        delta = load_delta(data.job(stop.job_id), stop.task)
        load = [a + b for a, b in zip(load, delta, strict=True)]
        checkpoints.append((stop.job_id, load))
    for job_id, ld in checkpoints:
        for dim, (amount, cap) in enumerate(zip(ld, vehicle.capacity, strict=True)):
            if amount > cap or amount < 0:
                bad("capacity", job_id if job_id != "start" else "", f"dim {dim}: {amount}/{cap}")

    # Time: travel, windows, service, shift, depot hours, breaks.
    out.extend(_check_times(data, route))
    distance = 0.0
    here = vehicle.start
    for stop in route.stops:
        distance += float(data.distances[here, stop.location])
        here = stop.location
    if vehicle.end is not None:
        distance += float(data.distances[here, vehicle.end])
    if abs(distance - route.distance) > _tol(distance):
        bad("distance", "", f"reported {route.distance}, recomputed {distance}")
    return out


def _check_times(data: ProblemData, route: Route) -> list[Violation]:
    vehicle = next(v for v in data.vehicles if v.id == route.vehicle_id)
    out: list[Violation] = []

    def bad(kind: str, job_id: str, detail: str) -> None:
        out.append(Violation(kind, vehicle.id, job_id, detail))

    breaks = sorted(route.breaks, key=lambda b: b.start)
    expected = sorted(b.id for b in vehicle.breaks) if route.stops else []
    if sorted(b.break_id for b in breaks) != expected:
        bad("breaks", "", f"breaks taken {[b.break_id for b in breaks]}, expected {expected}")
    defs = {b.id: b for b in vehicle.breaks}
    services = [(s.start, s.start + data.job(s.job_id).tasks[s.task].service) for s in route.stops]
    for brk in breaks:
        spec = defs.get(brk.break_id)
        if spec is None:
            continue
        if (
            not spec.window.start - _tol(brk.start)
            <= brk.start
            <= spec.window.end + _tol(brk.start)
        ):
            bad("break_window", "", f"break {brk.break_id} starts at {brk.start}")
        if brk.end - brk.start < spec.duration - _tol(spec.duration):
            bad("break_length", "", f"break {brk.break_id} too short")
        if brk.start < vehicle.shift.start - EPS or brk.end > vehicle.shift.end + _tol(brk.end):
            bad("break_shift", "", f"break {brk.break_id} outside the shift")
        for s0, s1 in services:
            if brk.start < s1 - EPS and s0 < brk.end - EPS:
                bad("break_overlap", "", f"break {brk.break_id} overlaps a service")

    def breaks_in(t0: float, t1: float) -> float:
        return sum(b.end - b.start for b in breaks if t0 - EPS <= b.start and b.end <= t1 + EPS)

    depot_open = [d.window for d in data.depots if d.location == vehicle.start]
    if route.departure < vehicle.shift.start - _tol(route.departure):
        bad("shift", "", f"leaves at {route.departure}, shift starts {vehicle.shift.start}")
    if any(route.departure < w.start - _tol(route.departure) for w in depot_open):
        bad("depot_hours", "", f"leaves the depot at {route.departure} before it opens")
    here, t = vehicle.start, route.departure
    for stop in route.stops:
        task = data.job(stop.job_id).tasks[stop.task]
        travel = float(data.durations[here, stop.location])
        need = t + travel + breaks_in(t, stop.start)
        if stop.arrival < t + travel - _tol(need) or stop.start < need - _tol(need):
            bad("travel_time", stop.job_id, f"service at {stop.start}, earliest {need}")
        if stop.start < stop.arrival - _tol(stop.start):
            bad("service_before_arrival", stop.job_id, "service starts before arrival")
        if not any(
            w.start - _tol(stop.start) <= stop.start <= w.end + _tol(stop.start)
            for w in task.windows
        ):
            bad("time_window", stop.job_id, f"service starts at {stop.start}")
        if stop.departure < stop.start + task.service - _tol(stop.departure):
            bad("service_time", stop.job_id, "leaves before the service ends")
        here, t = stop.location, stop.departure
    end = t
    if vehicle.end is not None:
        end = t + float(data.durations[here, vehicle.end]) + breaks_in(t, route.arrival)
        if route.arrival < end - _tol(end):
            bad("travel_time", "", f"back at {route.arrival}, earliest {end}")
        end_open = [d.window for d in data.depots if d.location == vehicle.end]
        if any(max(end, route.arrival) > w.end + _tol(end) for w in end_open):
            bad("depot_hours", "", f"reaches the end depot at {end} after it closes")
    if max(end, route.arrival) > vehicle.shift.end + _tol(end):
        bad("shift", "", f"finishes at {max(end, route.arrival)}, shift ends {vehicle.shift.end}")
    return out
