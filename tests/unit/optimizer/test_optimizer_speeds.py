"""Learned travel speeds: trips from fixes, fallbacks, the held-out error, the cache."""

from __future__ import annotations

import math
import random
from collections import Counter

import h3
import pytest

from cloud.optimizer import ConstantSpeed, GreatCircleMatrix
from cloud.optimizer.model import Location
from cloud.optimizer.speeds import LearnedSpeeds, LearnParams, SpeedCache, hour_of_week, learn
from cloud.optimizer.speeds.learn import ErrorFigures, fit, haversine_m, trips_of
from cloud.optimizer.speeds.model import ALL_HOURS
from flota_wire.tracesim import simulate_city

MONDAY = 1_795_392_000.0  # 2026-11-23T00:00:00Z, a Monday
LAT, LON = 60.17, 24.94
M_PER_DEG = 111_195.0


def straight(t0: float, n: int, mps: float, lat: float = LAT) -> list[tuple[float, float, float]]:
    """Fixes 1 s apart driving north at `mps`."""
    return [(t0 + k, lat + k * mps / M_PER_DEG, LON) for k in range(n)]


def test_hour_of_week_is_monday_based_utc() -> None:
    assert hour_of_week(MONDAY) == 0
    assert hour_of_week(MONDAY + 3600 * 25 + 5) == 25
    assert hour_of_week(MONDAY + 7 * 86400 - 1) == 167


def test_trips_split_at_gaps_and_parking_but_keep_short_stops() -> None:
    p = LearnParams(park_s=60, max_gap_s=30, max_trip_s=10_000)
    drive1 = straight(MONDAY, 50, 10.0)
    light = [(drive1[-1][0] + k, drive1[-1][1], LON) for k in range(1, 21)]  # 20 s at a light
    drive2 = straight(light[-1][0] + 1, 50, 10.0, lat=light[-1][1])
    parked = [(drive2[-1][0] + k, drive2[-1][1], LON) for k in range(1, 301)]  # 5 min parked
    drive3 = straight(parked[-1][0] + 1, 40, 10.0, lat=parked[-1][1])
    gap = straight(drive3[-1][0] + 120, 40, 10.0, lat=drive3[-1][1] + 0.01)  # 2 min silent
    trips = trips_of("v", drive1 + light + drive2 + parked + drive3 + gap, p)
    assert len(trips) == 3
    first = trips[0]
    # the light's 20 s stay in the first trip's time; the parked 5 minutes do not
    assert sum(s.seconds for s in first.steps) == pytest.approx(49 + 20 + 50, abs=1)
    assert all(s.seconds <= 30 for t in trips for s in t.steps)


def test_jumps_and_duplicates_do_not_count() -> None:
    fixes = [*straight(MONDAY, 20, 10.0)]
    fixes.insert(10, fixes[9])  # duplicate instant
    fixes.insert(15, (fixes[14][0] + 0.5, LAT + 1.0, LON))  # a 111 km jump in half a second
    trips = trips_of("v", fixes, LearnParams())
    speeds = [s.metres / s.seconds for t in trips for s in t.steps]
    assert speeds
    assert max(speeds) < 20


def test_fit_falls_back_cell_hour_then_cell_then_hour_then_default() -> None:
    p = LearnParams(min_samples=30, default_mps=5.0)
    busy = trips_of("a", straight(MONDAY + 8 * 3600, 200, 6.0), p)  # Monday 08, 1.2 km
    quiet = trips_of("b", straight(MONDAY + 3 * 3600, 200, 12.0), p)  # Monday 03, same road
    model = fit(busy + quiet, p)
    cell = Counter(s.cell for s in busy[0].steps).most_common(1)[0][0]
    assert model.cell_speed(cell, 8) == pytest.approx(6.0, rel=0.02)
    assert model.cell_speed(cell, 3) == pytest.approx(12.0, rel=0.02)
    # another hour in a known cell: the cell over all hours (distance / time of both)
    assert model.cell_speed(cell, 100) == pytest.approx(8.0, rel=0.05)
    # an unknown cell: the fleet at that hour, else the default
    far = h3.latlng_to_cell(LAT + 1, LON + 1, p.resolution)
    assert model.cell_speed(far, 8) == pytest.approx(6.0, rel=0.02)
    assert model.cell_speed(far, 100) == 5.0
    # too few samples: nothing learned at all
    thin = fit(trips_of("c", straight(MONDAY, 10, 6.0), p), p)
    assert thin.cells == {}
    assert thin.hours == {}


def test_speed_along_a_line_is_a_harmonic_mean() -> None:
    a, b = Location(LON, LAT), Location(LON, LAT + 0.05)
    cells: dict[tuple[str, int], float] = {}
    model = LearnedSpeeds(8, 10.0, cells)
    first = model.cell(LAT, LON)
    cells[(first, ALL_HOURS)] = 2.0  # the origin's cell is slow, the other four points at 10
    expected = 5 / (1 / 2.0 + 4 / 10.0)
    assert model.speed(a, b, 0) == pytest.approx(expected)
    # and GreatCircleMatrix uses it for durations
    dist, dur = GreatCircleMatrix(1.3, model, 0).matrices([a, b])
    assert dur[0, 1] == pytest.approx(dist[0, 1] / expected)


def city_trips(n: int, seed: int) -> list[tuple[str, list[tuple[float, float, float]]]]:
    """Vehicles crossing a slow centre (5 m/s; 2.5 m/s at 08 UTC) into fast outskirts (15)."""
    rng = random.Random(seed)
    out = []
    for k in range(n):
        hour = rng.choice([8, 8, 13, 20])
        t = MONDAY + hour * 3600 + rng.uniform(0, 3000)
        lat = LAT + rng.randrange(5) * 0.004
        lon = LON + rng.uniform(0, 0.02)
        noise = rng.uniform(0.9, 1.1)
        m_per_deg_lon = M_PER_DEG * math.cos(math.radians(lat))
        fixes = []
        while lon < LON + 0.1:
            fixes.append((t, lat, lon))
            centre = lon < LON + 0.05
            v = (2.5 if hour == 8 else 5.0) if centre else 15.0
            lon += v * noise / m_per_deg_lon
            t += 1.0
        out.append((f"v{k}", fixes))
    return out


def test_learned_model_beats_the_default_on_held_out_trips() -> None:
    model, report = learn(city_trips(40, 1), LearnParams(holdout=0.25, max_trip_s=400))
    assert report.trips_held_out > 0
    assert report.trips_learned > report.trips_held_out
    assert report.keys > 0
    assert model.cells
    assert report.path.n == report.trips_held_out
    assert report.path.mae_s < 0.5 * report.path_default.mae_s
    assert report.legs.n > 0
    assert report.legs.mae_s < report.legs_default.mae_s
    assert report.path.p90_s >= report.path.mae_s * 0.5
    centre = model.cell(LAT, LON + 0.01)
    assert model.cell_speed(centre, 8) < model.cell_speed(centre, 13)


def test_simulated_city_fixes_give_a_sane_report() -> None:
    vehicles = []
    for k in range(3):
        fixes = simulate_city(900, seed=k, start_us=int((MONDAY + 9 * 3600 + k * 60) * 1e6))
        vehicles.append(
            (f"v{k}", [(f.time_us / 1e6, f.lat_e6 / 1e6, f.lon_e6 / 1e6) for f in fixes])
        )
    model, report = learn(vehicles, LearnParams(holdout=0.3, min_samples=20, max_trip_s=300))
    assert report.fixes == sum(len(f) for _, f in vehicles)
    assert report.trips_held_out > 0
    assert report.trips_learned > 0
    assert 0 < report.path.mae_s < math.inf
    assert report.path.n == report.trips_held_out
    assert not math.isnan(report.learned_circuity)
    assert report.learned_circuity >= 1.0
    assert all(0.5 <= v <= 70 for v in model.cells.values())


def test_error_figures() -> None:
    e = ErrorFigures.of([(110, 100), (90, 100), (100, 100), (300, 200)])
    assert e.n == 4
    assert e.mae_s == pytest.approx(30.0)
    assert e.p90_s == 100
    assert math.isnan(ErrorFigures.of([]).mae_s)
    assert haversine_m(LAT, LON, LAT + 1, LON) == pytest.approx(M_PER_DEG, rel=1e-3)


class FakeStore:
    def __init__(self) -> None:
        self.stored: LearnedSpeeds | None = None
        self.fail = False
        self.version_calls = 0

    def version(self, tenant: str) -> str | None:
        self.version_calls += 1
        if self.fail:
            raise OSError("database down")
        return self.stored.version if self.stored else None

    def load(self, tenant: str) -> LearnedSpeeds | None:
        return self.stored


def test_cache_reloads_only_when_the_stored_version_changes() -> None:
    now = [0.0]
    db = FakeStore()
    default = ConstantSpeed(7.0)
    cache = SpeedCache(db.version, db.load, default, check_s=60, clock=lambda: now[0])
    assert cache.provider("t") is default  # nothing learned yet
    db.stored = LearnedSpeeds(8, 9.0, {}, {}, version="v1")
    assert cache.provider("t") is default  # within check_s: not even asked
    assert db.version_calls == 1
    now[0] = 61
    first = cache.provider("t")
    assert first is db.stored
    assert cache.loads == 1
    now[0] = 122
    assert cache.provider("t") is first
    assert cache.loads == 1
    db.stored = LearnedSpeeds(8, 9.5, {}, {}, version="v2")
    now[0] = 183
    assert cache.provider("t") is db.stored
    assert cache.loads == 2
    db.fail = True
    now[0] = 244
    assert cache.provider("t").speed(Location(0, 0), Location(1, 1), 0) == 9.5  # keeps the last
    cache.invalidate()
    assert cache.provider("t") is default  # nothing in memory and the store fails
