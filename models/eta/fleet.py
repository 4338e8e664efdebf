"""A seeded delivery fleet in a city, at trip level: legs between stops and the dwell at each.

The vehicle-dynamics simulator (models/sim) is far too detailed for the tens of thousands of legs
an ETA model needs, so this one works per H3 cell (resolution 8) around central Helsinki:

- each cell has a kind (centre, inner, outer; a few arterial cells), a free-flow speed, a road
  circuity (street distance over great-circle) and a traffic-light delay per kilometre;
- congestion follows the local hour of week (UTC+2 here): weekday morning and afternoon peaks,
  a lunch bump, quiet nights, milder weekends; its weight grows toward the centre;
- a leg is driven along the straight line in 100 m steps; each step costs its cell's street
  distance at the cell's speed at that moment, plus light delays; a per-driver pace factor,
  per-leg noise and rare incidents (+30-120%) come on top, and a fixed start/park overhead;
- the dwell at a stop depends on the cell (parking in the centre is slow), the hour (lunch,
  evening) and the driver, with a long log-normal tail.

Routes: each vehicle leaves its depot on working days (Monday-Friday, 30% of Saturdays, 10% of
Sundays), three routes in four at 6-10 local time and the rest at any hour (evening and night
shifts), and visits 6-14 stops.
Same seed, same legs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import h3
import numpy as np

from cloud.models_service.eta_features import H3_RESOLUTION, haversine_m

CENTRE = (60.1699, 24.9384)
RADIUS_CELLS = 9  # the city: cells within this grid distance of the centre cell
LOCAL_OFFSET_H = 2  # Helsinki in winter, UTC+2
STEP_M = 100.0
MONDAY0_S = 1_798_416_000  # Monday 2026-12-28 00:00 UTC: day 0 of every simulation


@dataclass(frozen=True)
class CellProps:
    kind: str  # centre | inner | outer | arterial
    free_mps: float
    circuity: float
    light_s_per_km: float
    congestion_weight: float
    dwell_base_s: float


@dataclass(frozen=True)
class SimLeg:
    vehicle: str
    route: int
    stop: int  # 1 = the first stop after the depot
    origin_lat: float
    origin_lon: float
    dest_lat: float
    dest_lon: float
    depart_s: float  # Unix seconds UTC
    travel_s: float
    dwell_s: float
    distance_m: float  # street distance driven (the odometer)


@cache
def city(seed: int) -> dict[str, CellProps]:
    """Per-cell properties of the city, seeded."""
    rng = np.random.default_rng(seed)
    centre = h3.latlng_to_cell(*CENTRE, H3_RESOLUTION)
    cells = sorted(h3.grid_disk(centre, RADIUS_CELLS))
    out: dict[str, CellProps] = {}
    for cell in cells:
        k = h3.grid_distance(centre, cell)
        kind = "centre" if k <= 2 else "inner" if k <= 5 else "outer"
        if kind != "centre" and rng.random() < 0.12:
            kind = "arterial"
        free = {"centre": 7.0, "inner": 10.0, "outer": 13.0, "arterial": 19.0}[kind]
        out[cell] = CellProps(
            kind=kind,
            free_mps=free * float(rng.uniform(0.85, 1.15)),
            circuity=float(rng.uniform(1.15, 1.55)),
            light_s_per_km={"centre": 40.0, "inner": 22.0, "outer": 10.0, "arterial": 6.0}[kind]
            * float(rng.uniform(0.6, 1.4)),
            congestion_weight={"centre": 0.55, "inner": 0.45, "outer": 0.3, "arterial": 0.5}[kind]
            * float(rng.uniform(0.7, 1.3)),
            dwell_base_s={"centre": 330.0, "inner": 220.0, "outer": 170.0, "arterial": 200.0}[kind]
            * float(rng.uniform(0.75, 1.3)),
        )
    return out


def congestion(t_s: float) -> float:
    """0 (free) .. ~1 (worst peak) by local hour of week."""
    local_h = ((t_s - MONDAY0_S) / 3600.0 + LOCAL_OFFSET_H) % 168.0
    day, h = int(local_h // 24), local_h % 24.0

    def bump(mu: float, sd: float, a: float) -> float:
        return a * math.exp(-0.5 * ((h - mu) / sd) ** 2)

    if day < 5:
        c = bump(8.0, 1.0, 1.0) + bump(16.5, 1.3, 0.9) + bump(12.0, 1.2, 0.3) + 0.1
        if day == 4:
            c += bump(14.5, 1.5, 0.25)  # Friday afternoons start early
    else:
        c = bump(13.5, 2.5, 0.35 if day == 5 else 0.2) + 0.05
    return min(c, 1.1)


def _dwell_hour_factor(t_s: float) -> float:
    local_h = ((t_s - MONDAY0_S) / 3600.0 + LOCAL_OFFSET_H) % 24.0
    if 11.0 <= local_h < 13.5:
        return 1.35  # lunch: receivers away
    if local_h >= 17.0 or local_h < 7.0:
        return 0.8
    return 1.0


def _cell_of(lat: float, lon: float, cells: dict[str, CellProps]) -> CellProps:
    c = h3.latlng_to_cell(lat, lon, H3_RESOLUTION)
    return cells.get(c) or CellProps("outer", 14.0, 1.3, 8.0, 0.25, 170.0)


def drive(
    rng: np.random.Generator,
    cells: dict[str, CellProps],
    o: tuple[float, float],
    d: tuple[float, float],
    t0: float,
    pace: float,
) -> tuple[float, float]:
    """(travel seconds, street metres) from ``o`` to ``d`` leaving at ``t0``."""
    gc = haversine_m(*o, *d)
    n = max(1, math.ceil(gc / STEP_M))
    t, dist = t0, 0.0
    for i in range(n):
        f = (i + 0.5) / n
        p = _cell_of(o[0] + f * (d[0] - o[0]), o[1] + f * (d[1] - o[1]), cells)
        seg = gc / n * p.circuity
        speed = p.free_mps * (1.0 - 0.6 * p.congestion_weight * congestion(t))
        t += seg / speed + p.light_s_per_km * seg / 1000.0 * (1.0 + 0.5 * congestion(t))
        dist += seg
    travel = (t - t0) * pace * float(rng.lognormal(0.0, 0.12)) + float(rng.uniform(30.0, 90.0))
    if rng.random() < 0.03:
        travel *= float(rng.uniform(1.3, 2.2))  # an incident, a wrong turn, a closed street
    return travel, dist


def _point(rng: np.random.Generator, cells: list[str]) -> tuple[float, float]:
    lat, lon = h3.cell_to_latlng(cells[int(rng.integers(len(cells)))])
    # anywhere inside the cell (about 460 m edge): jitter around its centre
    return lat + float(rng.normal(0, 0.0025)), lon + float(rng.normal(0, 0.005))


def simulate(seed: int, vehicles: range, days: int = 20, city_seed: int = 20261128) -> list[SimLeg]:
    """Every leg driven by ``vehicles`` over ``days`` calendar days from ``MONDAY0_S``.

    Vehicles work Monday to Friday, each Saturday with probability 0.3 and Sunday with 0.1.
    """
    cells = city(city_seed)
    names = list(cells)
    kinds = [cells[c].kind for c in names]
    centre_weight = np.array(
        [3.0 if k == "centre" else 1.5 if k == "inner" else 1.0 for k in kinds]
    )
    prob = centre_weight / centre_weight.sum()
    legs: list[SimLeg] = []
    for v in vehicles:
        rng = np.random.default_rng([seed, v])
        pace = float(rng.lognormal(0.0, 0.06))
        patience = float(rng.lognormal(0.0, 0.15))
        depot = _point(rng, names)
        route = 0
        for day in range(days):
            weekday = day % 7
            if (weekday == 6 and rng.random() >= 0.1) or (weekday == 5 and rng.random() >= 0.3):
                continue
            # most routes start in the morning; some are evening or night shifts
            start_h = float(rng.uniform(6.0, 10.0) if rng.random() < 0.75 else rng.uniform(0, 24))
            t = MONDAY0_S + day * 86_400 + (start_h - LOCAL_OFFSET_H) * 3600.0
            here = depot
            for stop in range(1, int(rng.integers(6, 15)) + 1):
                dest_cell = names[int(rng.choice(len(names), p=prob))]
                lat, lon = h3.cell_to_latlng(dest_cell)
                dest = (lat + float(rng.normal(0, 0.0025)), lon + float(rng.normal(0, 0.005)))
                travel, dist = drive(rng, cells, here, dest, t, pace)
                p = _cell_of(*dest, cells)
                dwell = (
                    p.dwell_base_s
                    * _dwell_hour_factor(t + travel)
                    * patience
                    * float(rng.lognormal(0.0, 0.35))
                )
                legs.append(
                    SimLeg(
                        f"sim-{v:03d}",
                        route,
                        stop,
                        here[0],
                        here[1],
                        dest[0],
                        dest[1],
                        t,
                        travel,
                        dwell,
                        dist,
                    )
                )
                t += travel + dwell
                here = dest
            route += 1
    return legs
