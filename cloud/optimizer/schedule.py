"""Turn an engine's visit sequences into timed routes, costs and unassigned reasons.

Times are recomputed here in real numbers from the model (earliest service start, then the
departure from the start delayed to cut idle waiting), except for routes with breaks, whose
placement the engine decided: there the engine's schedule is kept.
"""

from __future__ import annotations

from cloud.optimizer.model import Job, JobKind, ProblemData, Vehicle
from cloud.optimizer.params import SolveParams
from cloud.optimizer.result import (
    Answer,
    Cost,
    Reason,
    Route,
    ScheduledBreak,
    Stop,
    Unassigned,
)


def effective_penalty(job: Job, params: SolveParams, data: ProblemData) -> float:
    """The cost of leaving `job` out, in cost units (priority multiplies it)."""
    base = job.penalty if job.penalty is not None else mandatory_penalty(data, params)
    return base * (1 + job.priority)


def mandatory_penalty(data: ProblemData, params: SolveParams) -> float:
    """Large enough that dropping a mandatory job never pays while serving it is possible."""
    if params.mandatory_penalty is not None:
        return params.mandatory_penalty
    longest = params.distance_weight * float(data.distances.max(initial=0.0)) + (
        params.duration_weight * float(data.durations.max(initial=0.0))
    )
    fixed = max((v.fixed_cost for v in data.vehicles), default=0.0)
    return 10.0 * (longest * (len(data.jobs) + len(data.vehicles) + 1) + fixed) + 1.0


def visit_kind(job: Job, task: int) -> str:
    if job.kind is JobKind.PAIR:
        return "pair_pickup" if task == 0 else "pair_delivery"
    return str(job.kind)


def load_delta(job: Job, task: int) -> tuple[int, ...]:
    """Change of the on-board load at this visit."""
    if job.kind is JobKind.DELIVERY or (job.kind is JobKind.PAIR and task == 1):
        return tuple(-a for a in job.amount)
    return job.amount


def depot_window_start(data: ProblemData, location: int) -> float:
    starts = [d.window.start for d in data.depots if d.location == location]
    return max(starts, default=0.0)


def _service_start(job: Job, task: int, arrival: float) -> float:
    for window in job.tasks[task].windows:
        if arrival <= window.end:
            return max(arrival, window.start)
    return arrival  # too late for every window: the checker reports it


def _route(data: ProblemData, v: int, visits: tuple[tuple[int, int], ...], answer: Answer) -> Route:
    vehicle = data.vehicles[v]
    jobs = [data.jobs[j] for j, _ in visits]
    start_load = [0] * data.dimensions
    for job in jobs:
        if job.kind is JobKind.DELIVERY:
            start_load = [a + b for a, b in zip(start_load, job.amount, strict=True)]
    engine_times = answer.starts is not None and bool(vehicle.breaks)
    departure0 = max(vehicle.shift.start, depot_window_start(data, vehicle.start))
    if engine_times and answer.route_starts is not None:
        departure0 = max(departure0, answer.route_starts[v])
    breaks: list[ScheduledBreak] = []
    if engine_times and answer.break_starts is not None:
        breaks = [
            ScheduledBreak(b.id, s, s + b.duration)
            for b, s in zip(vehicle.breaks, answer.break_starts[v], strict=True)
        ]
    dist = data.distances
    dur = data.durations
    stops: list[Stop] = []
    load = list(start_load)
    here, t, distance = vehicle.start, departure0, 0.0
    for k, ((j, task), job) in enumerate(zip(visits, jobs, strict=True)):
        loc = job.tasks[task].location
        arrival = t + float(dur[here, loc])
        if engine_times and answer.starts is not None:
            start = answer.starts[v][k]
            in_leg = sum(b.end - b.start for b in breaks if t <= b.start < start)
            arrival = min(start, arrival + in_leg)
        else:
            start = _service_start(job, task, arrival)
        departure = start + job.tasks[task].service
        load = [a + d for a, d in zip(load, load_delta(job, task), strict=True)]
        stops.append(
            Stop(
                data.jobs[j].id,
                task,
                visit_kind(job, task),
                loc,
                arrival,
                start,
                departure,
                tuple(load),
            )
        )
        distance += float(dist[here, loc])
        here, t = loc, departure
    end = t
    if vehicle.end is not None:
        distance += float(dist[here, vehicle.end])
        end = t + float(dur[here, vehicle.end])
        if engine_times:
            end += sum(b.end - b.start for b in breaks if b.start >= t)
    if not engine_times and stops:
        # Leave later rather than wait at the first stop; later times do not change.
        first = stops[0]
        latest = first.start - float(dur[vehicle.start, first.location])
        if latest > departure0:
            departure0 = latest
            stops[0] = Stop(
                first.job_id,
                first.task,
                first.kind,
                first.location,
                first.start,
                first.start,
                first.departure,
                first.load,
            )
    return Route(
        vehicle.id,
        tuple(stops),
        tuple(breaks),
        departure0,
        end,
        tuple(start_load),
        distance,
        end - departure0,
    )


def diagnose(data: ProblemData, job: Job, params: SolveParams) -> Reason:
    """Why a job is unassigned: the first rule it breaks when served alone, else room/worth."""
    able = [v for v in data.vehicles if data.vehicle_can_serve(v, job)]
    if not able:
        return Reason.NO_VEHICLE_WITH_SKILLS
    able = [v for v in able if all(a <= c for a, c in zip(job.amount, v.capacity, strict=True))]
    if not able:
        return Reason.OVER_CAPACITY
    if not any(_reachable_alone(data, v, job) for v in able):
        return Reason.UNREACHABLE_IN_TIME
    return Reason.NO_ROOM if job.mandatory else Reason.NOT_WORTH_SERVING


def _reachable_alone(data: ProblemData, vehicle: Vehicle, job: Job) -> bool:
    here = vehicle.start
    t = max(vehicle.shift.start, depot_window_start(data, vehicle.start))
    for task in range(len(job.tasks)):
        loc = job.tasks[task].location
        arrival = t + float(data.durations[here, loc])
        start = _service_start(job, task, arrival)
        if not any(w.start <= start <= w.end for w in job.tasks[task].windows):
            return False
        here, t = loc, start + job.tasks[task].service
    if vehicle.end is not None:
        t += float(data.durations[here, vehicle.end])
    return t <= vehicle.shift.end + 1e-9


def build_result(
    data: ProblemData,
    answer: Answer,
    params: SolveParams,
    runtime: float = 0.0,
) -> tuple[tuple[Route, ...], tuple[Unassigned, ...], Cost]:
    """Timed routes, unassigned jobs and the cost of an engine's answer."""
    routes = tuple(
        _route(data, v, visits, answer) for v, visits in enumerate(answer.routes) if visits
    )
    served = {j for visits in answer.routes for j, _ in visits}
    unassigned = tuple(
        Unassigned(job.id, diagnose(data, job, params), job.mandatory)
        for i, job in enumerate(data.jobs)
        if i not in served
    )
    distance = sum(r.distance for r in routes)
    duration = sum(r.duration for r in routes)
    used = {r.vehicle_id for r in routes}
    fixed = sum(v.fixed_cost for v in data.vehicles if v.id in used)
    penalties = sum(
        effective_penalty(data.job(u.job_id), params, data) for u in unassigned if not u.mandatory
    )
    total = params.distance_weight * distance + params.duration_weight * duration + fixed
    total += penalties
    return routes, unassigned, Cost(distance, duration, fixed, penalties, total)
