"""Learn per-cell, per-hour speeds from fixes, and measure the model on held-out trips.

Fixes of one vehicle, in time order, become trips: a trip ends at a gap in reporting
(> `max_gap_s`) or when the vehicle stands still longer than `park_s` (parked, not waiting
at a light: short stops stay in, they are part of a travel time). Each step between two
fixes of a trip gives (metres, seconds) to the H3 cell and hour of week where it started.
A deterministic share of trips (by a hash of vehicle and start) is held back; those trips,
cut into legs of about `leg_s`, are predicted by the learned model and by the default speed.
"""

from __future__ import annotations

import math
import statistics
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import h3

from cloud.optimizer.matrix import EARTH_RADIUS_M
from cloud.optimizer.model import Location
from cloud.optimizer.speeds.model import ALL_HOURS, CellSpeed, LearnedSpeeds, hour_of_week

MIN_MPS = 0.5  # a cell slower than this on average is noise (or a car park)
MAX_MPS = 70.0  # 250 km/h: anything faster is a GPS jump


@dataclass(frozen=True)
class LearnParams:
    resolution: int = 8  # H3 cells of about 0.7 km2
    min_samples: int = 30  # steps (about seconds at 1 Hz) before a (cell, hour) counts
    default_mps: float = 30 / 3.6
    circuity: float = 1.3  # road distance / great circle, for the leg-level error
    holdout: float = 0.2  # share of trips held back from learning
    max_gap_s: float = 60.0
    park_s: float = 180.0
    park_mps: float = 0.5
    max_step_mps: float = MAX_MPS
    leg_s: float = 300.0
    max_trip_s: float = 900.0  # longer drives are cut: held-out units the size of a few legs
    min_leg_m: float = 200.0


@dataclass(frozen=True)
class Step:
    cell: str
    hour: int
    metres: float
    seconds: float


@dataclass
class Trip:
    vehicle: str
    steps: list[Step] = field(default_factory=list)
    points: list[tuple[float, float, float]] = field(default_factory=list)  # (t, lat, lon)


@dataclass(frozen=True)
class ErrorFigures:
    """Absolute error of predicted travel time (s) over held-out trips or legs."""

    n: int
    mae_s: float
    p90_s: float
    mape: float  # mean |error| / actual

    @classmethod
    def of(cls, pairs: Sequence[tuple[float, float]]) -> ErrorFigures:
        """`pairs` = (predicted, actual) seconds."""
        if not pairs:
            return cls(0, math.nan, math.nan, math.nan)
        errs = sorted(abs(p - a) for p, a in pairs)
        p90 = errs[min(len(errs) - 1, math.ceil(0.9 * len(errs)) - 1)]
        mape = statistics.fmean(abs(p - a) / a for p, a in pairs if a > 0)
        return cls(len(errs), statistics.fmean(errs), p90, mape)


@dataclass(frozen=True)
class Report:
    fixes: int
    steps_used: int
    trips_learned: int
    trips_held_out: int
    keys: int  # (cell, hour) and (cell, all hours) entries with enough samples
    cells: int
    hours: int
    path: ErrorFigures  # along the driven path: the speed model alone
    path_default: ErrorFigures  # the same trips at the default speed
    legs: ErrorFigures  # straight line x circuity / model speed, legs of about leg_s
    legs_default: ErrorFigures
    learned_circuity: float  # median driven / straight-line over learned legs (nan: none)


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, a)))


def trips_of(
    vehicle: str, fixes: Iterable[tuple[float, float, float]], params: LearnParams
) -> list[Trip]:
    """Split one vehicle's (time s, lat, lon) fixes, in time order, into trips."""
    trips: list[Trip] = []
    cur = Trip(vehicle)
    still = 0.0  # seconds standing still so far
    held: list[Step] = []  # steps of the current still run (kept if it turns out short)
    prev: tuple[float, float, float] | None = None

    def close() -> None:
        nonlocal cur
        if cur.steps:
            trips.append(cur)
        cur = Trip(vehicle)

    for t, lat, lon in fixes:
        if prev is None:
            prev = (t, lat, lon)
            continue
        dt_s = t - prev[0]
        if dt_s <= 0:
            continue  # duplicate or out of order: skip this fix
        metres = haversine_m(prev[1], prev[2], lat, lon)
        if dt_s > params.max_gap_s or metres / dt_s > params.max_step_mps:
            close()
            still, held = 0.0, []
            prev = (t, lat, lon)
            continue
        step = Step(h3.latlng_to_cell(prev[1], prev[2], params.resolution),
                    hour_of_week(prev[0]), metres, dt_s)  # fmt: skip
        if metres / dt_s < params.park_mps:
            still += dt_s
            held.append(step)
            if still > params.park_s:
                held = []  # parked: the still run is no trip time
                close()
        else:
            if still <= params.park_s:
                cur.steps.extend(held)  # a short stop (a light, a queue) is travel time
            held, still = [], 0.0
            if not cur.points:
                cur.points.append(prev)
            cur.steps.append(step)
            cur.points.append((t, lat, lon))
            if t - cur.points[0][0] >= params.max_trip_s:
                close()
        prev = (t, lat, lon)
    close()
    return trips


def held_out(trip: Trip, share: float) -> bool:
    key = f"{trip.vehicle}:{trip.points[0][0]:.0f}" if trip.points else trip.vehicle
    return zlib.crc32(key.encode()) % 10_000 < share * 10_000


def fit(trips: Iterable[Trip], params: LearnParams, version: str = "") -> LearnedSpeeds:
    """Aggregate steps into per-(cell, hour), per-cell and per-hour speeds."""
    by_key: dict[tuple[str, int], list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    by_hour: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    for trip in trips:
        for s in trip.steps:
            for agg in (by_key[(s.cell, s.hour)], by_key[(s.cell, ALL_HOURS)], by_hour[s.hour]):
                agg[0] += s.metres
                agg[1] += s.seconds
                agg[2] += 1

    def ok(agg: list[float]) -> float | None:
        m, sec, n = agg
        if n < params.min_samples or sec <= 0:
            return None
        return min(MAX_MPS, max(MIN_MPS, CellSpeed(m, sec, int(n)).mps))

    cells = {k: v for k, agg in by_key.items() if (v := ok(agg)) is not None}
    hours = {h: v for h, agg in by_hour.items() if (v := ok(agg)) is not None}
    return LearnedSpeeds(params.resolution, params.default_mps, cells, hours, version)


def _legs(trip: Trip, leg_s: float) -> list[tuple[int, int]]:
    """Indices (i, j) of consecutive trip points about `leg_s` apart."""
    out = []
    pts = trip.points
    i = 0
    while i < len(pts) - 1:
        j = i + 1
        while j < len(pts) - 1 and pts[j][0] - pts[i][0] < leg_s:
            j += 1
        out.append((i, j))
        i = j
    return out


def evaluate(
    model: LearnedSpeeds, trips: Sequence[Trip], params: LearnParams
) -> tuple[ErrorFigures, ErrorFigures, ErrorFigures, ErrorFigures]:
    """(path, path at default, legs, legs at default) over held-out trips."""
    path, path_d, legs, legs_d = [], [], [], []
    for trip in trips:
        actual = sum(s.seconds for s in trip.steps)
        if actual <= 0:
            continue
        path.append((sum(s.metres / model.cell_speed(s.cell, s.hour) for s in trip.steps), actual))
        path_d.append((sum(s.metres for s in trip.steps) / model.default_mps, actual))
        for i, j in _legs(trip, params.leg_s):
            a, b = trip.points[i], trip.points[j]
            straight = haversine_m(a[1], a[2], b[1], b[2])
            if straight < params.min_leg_m:
                continue
            taken = b[0] - a[0]
            road = straight * params.circuity
            mps = model.speed(Location(a[2], a[1]), Location(b[2], b[1]), hour_of_week(a[0]))
            legs.append((road / mps, taken))
            legs_d.append((road / model.default_mps, taken))
    return (
        ErrorFigures.of(path),
        ErrorFigures.of(path_d),
        ErrorFigures.of(legs),
        ErrorFigures.of(legs_d),
    )


def _circuity(trips: Sequence[Trip], params: LearnParams) -> float:
    ratios = []
    for trip in trips:
        for i, j in _legs(trip, params.leg_s):
            a, b = trip.points[i], trip.points[j]
            straight = haversine_m(a[1], a[2], b[1], b[2])
            if straight >= params.min_leg_m:
                driven = sum(
                    haversine_m(p[1], p[2], q[1], q[2])
                    for p, q in zip(trip.points[i:j], trip.points[i + 1 : j + 1], strict=True)
                )
                ratios.append(driven / straight)
    return statistics.median(ratios) if ratios else math.nan


def learn(
    vehicles: Iterable[tuple[str, Iterable[tuple[float, float, float]]]],
    params: LearnParams | None = None,
    version: str = "",
) -> tuple[LearnedSpeeds, Report]:
    """Learn from (vehicle, fixes in time order) and report the error on held-out trips."""
    params = params or LearnParams()
    fixes = 0
    train: list[Trip] = []
    test: list[Trip] = []

    def counted(it: Iterable[tuple[float, float, float]]) -> Iterable[tuple[float, float, float]]:
        nonlocal fixes
        for row in it:
            fixes += 1
            yield row

    for vehicle, rows in vehicles:
        for trip in trips_of(vehicle, counted(rows), params):
            (test if held_out(trip, params.holdout) else train).append(trip)
    model = fit(train, params, version)
    path, path_d, legs, legs_d = evaluate(model, test, params)
    report = Report(
        fixes=fixes,
        steps_used=sum(len(t.steps) for t in train),
        trips_learned=len(train),
        trips_held_out=len(test),
        keys=len(model.cells),
        cells=len({c for c, _ in model.cells}),
        hours=len(model.hours),
        path=path,
        path_default=path_d,
        legs=legs,
        legs_default=legs_d,
        learned_circuity=_circuity(train[:500], params),
    )
    return model, report
