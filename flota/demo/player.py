"""A demo vehicle's driving: simulator trips played in real time, to the stops of its plan.

With work in its plan the vehicle drives a street-grid route (``models.sim.towards``) to the
next stop it has not served, stands there for the stop's service time, and goes on to the next.
Without work it runs errands (random road-like trips), and turns towards a new job at the next
junction where it comes to rest. The edge agent, reading the GPS this produces, notices the
arrivals and departures itself (``edge_agent.stops``): the player never tells it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from flota_wire import Fix
from models.sim.towards import MIN_ROUTE_M

log = logging.getLogger(__name__)

TRACK_M = 1.6  # between left and right wheels
Imu = tuple[tuple[float, ...], tuple[float, ...]]
# A healthy fleet: an engine fault in one trip of ten (the simulator's training default is one
# in two, to have enough faults to learn from).
ENGINE_FAULT_PROB = 0.1
IDLE_RPM = 750.0
SERVE_HERE_M = MIN_ROUTE_M  # a stop this near is served where the vehicle stands


@dataclass(frozen=True)
class PlanStop:
    id: str
    lat: float
    lon: float
    service_s: float


class GpsSink(Protocol):
    def write_fix(self, fix: Fix) -> None: ...


def no_work(_served: set[str]) -> PlanStop | None:
    return None


class Clock:
    """Real time; tests pass one that runs faster."""

    def now(self) -> float:
        return time.monotonic()

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when ``stop`` was set."""
        return stop.wait(seconds)

    def wall_us(self) -> int:
        """Now, microseconds since the Unix epoch (the fixes' timestamps)."""
        return time.time_ns() // 1000


class TripPlayer:
    """Plays trips in real time: GPS epochs and OBD values from a thread (``play``), IMU
    samples on demand (the MCU simulator asks for sample i at 100 Hz)."""

    def __init__(
        self,
        seed: int,
        origin: tuple[float, float],
        trip_length_m: float,
        next_stop: Callable[[set[str]], PlanStop | None] = no_work,
        clock: Clock | None = None,
    ) -> None:
        self.clock = clock or Clock()
        self.seed = seed
        self.origin = origin
        self.length_m = trip_length_m  # of an errand
        self.next_stop = next_stop
        self.trips = 0
        self.distance_m = 0.0
        self.served: list[str] = []  # stop ids, in the order served
        self.target: PlanStop | None = None  # the stop the current trip drives to
        self.data: Any = None
        self._obd_at = -1
        self.t0 = self.clock.now()
        from models.sim import Device, Vehicle

        # One car and one tracker box for every trip: the mounting the agent's aligner learnt
        # stays true (a box that turned at every trip would look like a crash each time).
        self.device = Device.random(seed)
        self.car = Vehicle.random(seed)
        self._next_trip(origin, heading=(seed * 2.399963) % (2 * math.pi))

    # -- trips -------------------------------------------------------------------------------
    def _next_trip(self, origin: tuple[float, float], heading: float) -> None:
        """An errand: a random road-like trip from ``origin``."""
        from models.sim import Route, TripConfig

        config = TripConfig(length_m=self.length_m, engine_fault_prob=ENGINE_FAULT_PROB)
        route = replace(
            Route.random(self._seed(), config.length_m, config.road_kind),
            origin=origin,
            heading0=heading,
        )
        self._play_route(route, config, None)

    def _trip_to(self, origin: tuple[float, float], stop: PlanStop) -> None:
        from models.sim import TripConfig
        from models.sim.towards import route_towards

        route = route_towards(self._seed(), origin, (stop.lat, stop.lon))
        length = max(500.0, route.length_m)
        config = TripConfig(length_m=length, engine_fault_prob=ENGINE_FAULT_PROB)
        self._play_route(route, config, stop)

    def _seed(self) -> int:
        return self.seed * 1000 + self.trips

    def _play_route(self, route: Any, config: Any, target: PlanStop | None) -> None:
        from models.sim import Trip

        trip = Trip(self._seed(), route=route, device=self.device, vehicle=self.car, config=config)
        prev = self.data
        self.data = (trip.data() if prev is None
                     else _continued(prev, self._obd_at, trip.data(), self.car))  # fmt: skip
        self._obd_at = -1  # where the driver leaves this trip (its end unless cut short)
        self._rest = (_mean(self.data.acc[:50], self.data.gyro[:50]),
                      _mean(self.data.acc[-50:], self.data.gyro[-50:]))  # fmt: skip
        self.t0 = self.clock.now()
        self.trips += 1
        self.target = target

    # -- what the MCU and CAN simulators ask for ---------------------------------------------
    def now_index(self) -> int:
        return int((self.clock.now() - self.t0) * 100)

    def wheel_speeds(self) -> dict[str, float]:
        """The four wheel speeds (m/s) now: the body's speed, the outer wheels faster in a
        turn (yaw rate from the device's gyroscope magnitude, sign from the track)."""
        d = self.data
        k = self.now_index()
        if not 0 <= k < len(d.imu_t):
            v, yaw = 0.0, 0.0
        else:
            v = float(np.interp(d.imu_t[k], d.gps_t, d.gps_speed))
            yaw = float(np.linalg.norm(d.gyro[k]))
        dv = min(v, yaw * TRACK_M / 2)
        fl, fr = v - dv, v + dv  # a left turn; which side is not visible in the magnitude
        return {"whlspeed_FL": fl, "whlspeed_FR": fr, "whlspeed_RL": fl, "whlspeed_RR": fr}

    def imu(self, _i: int) -> Imu:
        d = self.data
        k = self.now_index()
        if not 0 <= k < len(d.imu_t):
            # At rest before or after the trip: gravity as this box, mounted as it is, feels it
            # (not along its z axis: the aligner would see the box turn over at every stop).
            return self._rest[0] if k < 0 else self._rest[1]
        a, g = d.acc[k], d.gyro[k]
        return (float(a[0]), float(a[1]), float(a[2])), (float(g[0]), float(g[1]), float(g[2]))

    # -- playing -----------------------------------------------------------------------------
    def play(self, gps: GpsSink, elm: Any, stop: threading.Event, seconds: float) -> None:
        """GPS epochs (stamped with the clock; ``gps.write_fix``) and OBD values (into the
        ELM327 peer's answers) until ``stop`` or ``seconds``."""
        end = self.clock.now() + seconds
        while not stop.is_set() and self.clock.now() < end:
            d = self.data
            j = self._play_epochs(gps, elm, stop, end)
            if j is None:
                return
            here = (float(d.lat[j]), float(d.lon[j]))
            self.distance_m += float(np.interp(d.gps_t[j], d.imu_t, _travelled(d)))
            heading = math.radians(90.0 - float(d.gps_track[j]))
            self._obd_at = min(int(np.searchsorted(d.obd_t, d.gps_t[j])), len(d.obd_t) - 1)
            target, self.target = self.target, None
            # The trip may have ended short of the stop (a simulated collision stops it): serve
            # only where the stop is, else the next turn drives there again.
            if (
                target is not None
                and _distance_m(here, target) < SERVE_HERE_M
                and not self._serve(target, gps, elm, here, stop, end)
            ):
                return
            job = self.next_stop(set(self.served))
            while job is not None and _distance_m(here, job) < SERVE_HERE_M:
                if not self._serve(job, gps, elm, here, stop, end):  # there already
                    return
                job = self.next_stop(set(self.served))
            if job is not None:
                self._trip_to(here, job)
            else:
                self._next_trip(here, heading)

    def _play_epochs(self, gps: GpsSink, elm: Any, stop: threading.Event, end: float) -> int | None:
        """Play the current trip; the index of its last epoch played, None when told to stop.
        An errand ends early at a standstill once there is a stop to drive to."""
        d = self.data
        for j, t in enumerate(d.gps_t):
            wait = self.t0 + float(t) - self.clock.now()
            if wait > 0 and self.clock.wait(stop, wait):
                return None
            if self.clock.now() >= end:
                return None
            self._write(gps, float(d.lat[j]), float(d.lon[j]), float(d.gps_speed[j]),
                        float(d.gps_track[j]))  # fmt: skip
            k = min(int(np.searchsorted(d.obd_t, t)), len(d.obd_t) - 1)
            elm.vehicle.pids.update(obd_pids(*(float(x) for x in d.obd_matrix[k])))
            at_rest = j > 0 and float(d.gps_speed[j]) < 0.5
            if self.target is None and at_rest and self.next_stop(set(self.served)) is not None:
                return j
        return len(d.gps_t) - 1

    def _serve(
        self, job: PlanStop, gps: GpsSink, elm: Any, here: tuple[float, float],
        stop: threading.Event, end: float,
    ) -> bool:  # fmt: skip
        """At rest at ``here`` for the stop's service time: 1 Hz fixes, the engine idling, the
        IMU still. False when told to stop meanwhile."""
        d = self.data
        k = self._obd_at
        idle = obd_pids(0.0, IDLE_RPM, float(d.coolant_c[k]), float(d.fuel_pct[k]), 0.0, 20.0)
        elm.vehicle.pids.update(idle)
        self.t0 = -1e9  # past the trip's end: the IMU and wheel speeds read "still"
        track = float(d.gps_track[-1])
        t_end = self.clock.now() + max(0.0, job.service_s)
        while self.clock.now() < t_end:
            if self.clock.wait(stop, 1.0) or self.clock.now() >= end:
                return False
            self._write(gps, here[0], here[1], 0.0, track)
        self.served.append(job.id)
        log.debug("served stop %s", job.id)
        return True

    def _write(self, gps: GpsSink, lat: float, lon: float, speed: float, track: float) -> None:
        now_us = self.clock.wall_us()
        gps.write_fix(
            Fix.from_si(
                seq=0,
                time_us=now_us - now_us % 1_000_000,
                lat=lat,
                lon=lon,
                alt_m=25.0,
                speed_mps=speed,
                track_deg=round(track, 2) % 360.0,
                hdop=0.9,
                sats=10,
            )
        )


def _travelled(d: Any) -> Any:
    """Distance driven (m) at each IMU sample, from the GPS speeds."""
    v = np.interp(d.imu_t, d.gps_t, d.gps_speed)
    return np.concatenate([[0.0], np.cumsum(v[1:] * np.diff(d.imu_t))])


def _continued(prev: Any, k: int, new: Any, car: Any) -> Any:
    """``new`` with its engine carrying on from ``prev``: each simulated trip starts with a
    random fuel level and, sometimes, a cold engine; one car's gauges do not jump between two
    trips minutes apart (the agent's engine model would call a fuel drop). ``k``: the OBD
    sample of ``prev`` the driver left it at."""
    fuel = np.asarray(new.fuel_pct) + (float(prev.fuel_pct[k]) - float(new.fuel_pct[0]))
    if float(fuel.min()) < 8.0:  # refuelled at the stop
        fuel = fuel + (90.0 - float(fuel[0]))
    warm = min(float(prev.coolant_c[k]), float(car.thermostat_c))
    coolant = np.maximum(np.asarray(new.coolant_c), round(warm))  # no cold start: it just ran
    return replace(new, fuel_pct=np.clip(fuel, 0.0, 100.0), coolant_c=coolant)


def _mean(acc: Any, gyro: Any) -> Imu:
    a, g = np.mean(acc, axis=0), np.mean(gyro, axis=0)
    return (float(a[0]), float(a[1]), float(a[2])), (float(g[0]), float(g[1]), float(g[2]))


def _distance_m(here: tuple[float, float], job: PlanStop) -> float:
    from models.sim.towards import offset_m

    return math.hypot(*offset_m(here, (job.lat, job.lon)))


def _pct_byte(pct: float) -> int:
    return max(0, min(255, round(pct * 255 / 100)))


def obd_pids(speed_kmh: float, rpm: float, coolant_c: float, fuel: float, throttle: float,
             load: float) -> dict[int, bytes]:  # fmt: skip
    """Mode 01 data bytes as an ECU encodes them (SAE J1979 scalings)."""
    r = max(0, min(65535, round(rpm * 4)))
    return {
        0x04: bytes([_pct_byte(load)]),
        0x05: bytes([max(0, min(255, round(coolant_c + 40)))]),
        0x0C: bytes([r >> 8, r & 0xFF]),
        0x0D: bytes([max(0, min(255, round(speed_kmh)))]),
        0x11: bytes([_pct_byte(throttle)]),
        0x2F: bytes([_pct_byte(fuel)]),
    }
