"""The demo's simulated driver: it drives to the stops of its plan, stands there for the
service time, turns from an errand towards new work at the next standstill, and never serves
a stop where it is not. Played on a clock that runs as fast as the test can go."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from flota.demo.player import Clock, PlanStop, TripPlayer
from flota_wire import Fix

DEPOT = (60.1699, 24.9384)


class FastClock(Clock):
    def __init__(self) -> None:
        self.t = 1000.0

    def now(self) -> float:
        return self.t

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        self.t += seconds
        return stop.is_set()

    def wall_us(self) -> int:
        return 1_790_000_000_000_000 + int(self.t * 1e6)


@dataclass
class Gps:
    fixes: list[Fix] = field(default_factory=list)

    def write_fix(self, fix: Fix) -> None:
        self.fixes.append(fix)


class _Pids:
    def __init__(self) -> None:
        self.pids: dict[int, bytes] = {}


class Elm:
    def __init__(self) -> None:
        self.vehicle = _Pids()


def _m(a: tuple[float, float], b: tuple[float, float]) -> float:
    dn = (b[0] - a[0]) * 111_320
    de = (b[1] - a[1]) * 111_320 * math.cos(math.radians(a[0]))
    return math.hypot(de, dn)


def _at(lat_m: float, lon_m: float) -> tuple[float, float]:
    return (
        DEPOT[0] + lat_m / 111_320,
        DEPOT[1] + lon_m / (111_320 * math.cos(math.radians(DEPOT[0]))),
    )


def _play(player: TripPlayer, seconds: float) -> Gps:
    gps = Gps()
    player.play(gps, Elm(), threading.Event(), seconds)
    return gps


def _pos(f: Fix) -> tuple[float, float]:
    return (f.lat_e6 / 1e6, f.lon_e6 / 1e6)


def test_the_vehicle_drives_to_each_stop_of_its_plan_and_stands_there_for_the_service() -> None:
    stops = [PlanStop("o-1:delivery", *_at(900, 600), 120.0),
             PlanStop("o-2:delivery", *_at(-400, 1200), 60.0)]  # fmt: skip

    def plan(served: set[str]) -> PlanStop | None:
        return next((s for s in stops if s.id not in served), None)

    player = TripPlayer(seed=11, origin=DEPOT, trip_length_m=1500, next_stop=plan,
                        clock=FastClock())  # fmt: skip
    gps = _play(player, 3600)
    assert player.served == ["o-1:delivery", "o-2:delivery"]
    for s in stops:
        here = [f for f in gps.fixes if _m(_pos(f), (s.lat, s.lon)) < 25 and f.speed_cmps == 0]
        assert len(here) >= s.service_s * 0.9, s.id  # 1 Hz fixes at rest for the service
    # Then, with nothing left to do, it runs errands: it leaves the last stop.
    last = gps.fixes[-1]
    assert _m(_pos(last), (stops[1].lat, stops[1].lon)) > 100


def test_an_errand_gives_way_to_new_work_at_the_next_standstill() -> None:
    job = PlanStop("o-9:delivery", *_at(-700, -300), 30.0)
    clock = FastClock()
    start = clock.t

    def plan(served: set[str]) -> PlanStop | None:
        # Work arrives 20 s into the first errand.
        return job if clock.t - start > 20 and job.id not in served else None

    player = TripPlayer(seed=4, origin=DEPOT, trip_length_m=20_000, next_stop=plan, clock=clock)
    _play(player, 2400)
    assert player.served == [job.id]
    assert player.distance_m < 20_000  # the 20 km errand was cut short


def test_a_trip_that_ends_short_of_its_stop_does_not_serve_it_there() -> None:
    job = PlanStop("o-5:pickup", *_at(2000, 0), 10.0)
    player = TripPlayer(seed=2, origin=DEPOT, trip_length_m=1500,
                        next_stop=lambda served: None if job.id in served else job,
                        clock=FastClock())  # fmt: skip
    gps = Gps()
    # The trip to the stop "crashes" halfway: the data ends early, far from the stop.
    player.play(gps, Elm(), threading.Event(), 1.0)  # starts the first trip only
    player._trip_to(DEPOT, job)
    d: Any = player.data
    half = len(d.gps_t) // 2
    cut = slice(0, half)
    player.data = replace(d, gps_t=d.gps_t[cut], lat=d.lat[cut], lon=d.lon[cut],
                          gps_speed=d.gps_speed[cut] * 0, gps_track=d.gps_track[cut])  # fmt: skip
    gps2 = _play(player, 1800)
    assert player.served == [job.id]
    there = (job.lat, job.lon)
    served_at = [f for f in gps2.fixes if f.speed_cmps == 0 and _m(_pos(f), there) < 25]
    assert len(served_at) >= 9  # it drove on and served it where the stop is


def test_the_agent_s_stop_tracker_sees_each_stop_the_driver_served(tmp_path: Path) -> None:
    """The driver never tells the agent: the agent's own tracker, fed the player's GPS, finds
    an arrival and a completion for every stop served (the demo's closed loop)."""
    from edge_agent.stops import StopConfig, StopEvent, StopTracker

    stops = [PlanStop("o-1:delivery", *_at(600, -900), 120.0),
             PlanStop("o-2:pickup", *_at(1500, 200), 60.0)]  # fmt: skip
    plan = {
        "plan_id": "HEL-v1-v3",
        "stops": [
            {"id": x.id, "lat": x.lat, "lon": x.lon, "service_s": x.service_s} for x in stops
        ],
    }

    def work(served: set[str]) -> PlanStop | None:
        return next((s for s in stops if s.id not in served), None)

    player = TripPlayer(seed=21, origin=DEPOT, trip_length_m=1500, next_stop=work,
                        clock=FastClock())  # fmt: skip
    gps = _play(player, 3600)
    emitted: list[StopEvent] = []
    tracker = StopTracker(tmp_path / "stops.json", StopConfig(), emitted.append, lambda: 0)
    tracker.set_plan(plan)
    for f in gps.fixes:
        tracker.offer(f.time_us / 1e6, *_pos(f), f.speed_cmps / 100)
    got = [(e.kind, e.details["stop_id"]) for e in emitted]
    assert got == [("stop_arrived", "o-1:delivery"), ("stop_completed", "o-1:delivery"),
                   ("stop_arrived", "o-2:pickup"), ("stop_completed", "o-2:pickup")]  # fmt: skip
    done = [e for e in emitted if e.kind == "stop_completed"]
    assert [e.details["order"] for e in done] == ["o-1", "o-2"]
    assert all(float(e.details["dwell_s"] or 0) >= 50 for e in done)  # type: ignore[arg-type]


def test_at_rest_the_box_feels_gravity_as_it_is_mounted_not_along_its_z_axis() -> None:
    player = TripPlayer(seed=8, origin=DEPOT, trip_length_m=1500, clock=FastClock())
    d: Any = player.data
    player.t0 = -1e9  # long after the trip: standing at a stop
    acc, gyro = player.imu(0)
    assert math.dist(acc, [float(x) for x in d.acc[-50:].mean(axis=0)]) < 1e-6
    assert 9.0 < math.hypot(*acc) < 10.6
    assert abs(acc[2] - 9.81) > 0.5  # this box is not mounted flat
    assert math.hypot(*gyro) < 0.1
    player.t0 = 1e9  # before the trip starts
    acc0, _ = player.imu(0)
    assert math.dist(acc0, [float(x) for x in d.acc[:50].mean(axis=0)]) < 1e-6


def test_one_car_s_gauges_carry_on_from_one_trip_to_the_next() -> None:
    player = TripPlayer(seed=13, origin=DEPOT, trip_length_m=1500, clock=FastClock())
    for _ in range(4):
        first: Any = player.data
        end = (float(first.lat[-1]), float(first.lon[-1]))
        player._next_trip(end, heading=0.0)
        second: Any = player.data
        assert abs(float(second.fuel_pct[0]) - float(first.fuel_pct[-1])) < 0.5
        warm = min(float(first.coolant_c[-1]), player.car.thermostat_c)
        assert float(second.coolant_c.min()) >= round(warm)  # no cold start right after a trip
