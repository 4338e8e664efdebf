"""A trip: one vehicle with its device on one route; arrays for training, a stream for demos."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import numpy.typing as npt

from models.sim.device import Device
from models.sim.driving import EventRates, drive
from models.sim.engine import simulate_engine
from models.sim.gps import simulate_gps
from models.sim.imu import synthesize_imu
from models.sim.labels import IMU_CLASSES, Event
from models.sim.route import Route
from models.sim.samples import GpsSample, ImuSample, ObdSample, Sample
from models.sim.vehicle import Vehicle

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class TripConfig:
    """What kind of trip to simulate."""

    length_m: float = 8000.0
    road_kind: str | None = None  # "urban", "suburban", "highway" or a mix
    gps_hz: float = 1.0
    rates: EventRates = field(default_factory=EventRates)
    engine_fault_prob: float = 0.5

    def __post_init__(self) -> None:
        if not 1.0 <= self.gps_hz <= 10.0:
            raise ValueError(f"gps_hz {self.gps_hz} outside 1-10 Hz")
        if self.length_m < 500.0:
            raise ValueError(f"length_m {self.length_m} too short for a trip")
        if self.road_kind not in (None, "urban", "suburban", "highway"):
            raise ValueError(f"unknown road_kind {self.road_kind!r}")
        if not 0.0 <= self.engine_fault_prob <= 1.0:
            raise ValueError("engine_fault_prob must be a probability")


@dataclass(frozen=True)
class TripData:
    """Every stream of a trip as arrays (times in s since trip start) with per-sample labels."""

    imu_t: F64
    acc: F32  # (n, 3) m/s^2, device axes, includes gravity
    gyro: F32  # (n, 3) rad/s, device axes
    imu_label: npt.NDArray[np.int8]  # index into IMU_CLASSES
    obd_t: F64
    speed_kmh: F64
    rpm: F64
    coolant_c: F64
    fuel_pct: F64
    throttle_pct: F64
    load_pct: F64
    obd_label: npt.NDArray[np.int8]  # index into ENGINE_CLASSES
    gps_t: F64
    lat: F64
    lon: F64
    gps_speed: F64
    gps_track: F64
    events: tuple[Event, ...]
    distance_m: float

    @property
    def obd_matrix(self) -> F64:
        """OBD channels as columns: speed km/h, rpm, coolant C, fuel %, throttle %, load %."""
        return np.stack(
            [
                self.speed_kmh,
                self.rpm,
                self.coolant_c,
                self.fuel_pct,
                self.throttle_pct,
                self.load_pct,
            ],
            axis=1,
        )


class Trip:
    """One reproducible trip: the same seed (and route, device, vehicle) gives the same bytes."""

    def __init__(
        self,
        seed: int,
        route: Route | None = None,
        device: Device | None = None,
        vehicle: Vehicle | None = None,
        config: TripConfig | None = None,
    ) -> None:
        self.seed = seed
        self.config = config or TripConfig()
        seeds = np.random.SeedSequence(seed).generate_state(4)
        self.route = route or Route.random(
            int(seeds[0]), self.config.length_m, self.config.road_kind
        )
        self.device = device or Device.random(int(seeds[1]))
        self.vehicle = vehicle or Vehicle.random(int(seeds[2]))
        self._rng_seed = int(seeds[3])

    @cached_property
    def _data(self) -> TripData:
        rng = np.random.default_rng(self._rng_seed)
        kin = drive(self.route, self.vehicle, rng, self.config.rates)
        eng = simulate_engine(kin, self.route, self.vehicle, rng, self.config.engine_fault_prob)
        acc, gyro = synthesize_imu(kin, self.route, self.device, eng.rpm_100hz, rng)
        gps_t, lat, lon, gps_speed, track = simulate_gps(kin, self.route, rng, self.config.gps_hz)
        label = np.zeros(len(kin.t), dtype=np.int8)
        for kind in IMU_CLASSES[1:]:  # collision last: it wins where events overlap
            for e in kin.events:
                if e.kind == kind:
                    label[(kin.t >= e.t_start) & (kin.t < e.t_end)] = IMU_CLASSES.index(kind)
        return TripData(
            imu_t=kin.t,
            acc=acc,
            gyro=gyro,
            imu_label=label,
            obd_t=eng.t,
            speed_kmh=eng.speed_kmh,
            rpm=eng.rpm,
            coolant_c=eng.coolant_c,
            fuel_pct=eng.fuel_pct,
            throttle_pct=eng.throttle_pct,
            load_pct=eng.load_pct,
            obd_label=eng.label,
            gps_t=gps_t,
            lat=lat,
            lon=lon,
            gps_speed=gps_speed,
            gps_track=track,
            events=tuple(sorted(kin.events + eng.events, key=lambda e: e.t_start)),
            distance_m=float(kin.s[-1]),
        )

    def data(self) -> TripData:
        return self._data

    def stream(self) -> Iterator[Sample]:
        """All samples of the trip in time order (IMU, OBD and GPS interleaved)."""
        d = self._data
        imu = (
            ImuSample(float(t), *map(float, a), *map(float, g))
            for t, a, g in zip(d.imu_t, d.acc, d.gyro, strict=True)
        )
        obd = (
            ObdSample(float(t), *map(float, row))
            for t, row in zip(d.obd_t, d.obd_matrix, strict=True)
        )
        gps = (
            GpsSample(float(t), float(la), float(lo), float(sp), float(tr))
            for t, la, lo, sp, tr in zip(
                d.gps_t, d.lat, d.lon, d.gps_speed, d.gps_track, strict=True
            )
        )
        merged: Iterator[Sample] = heapq.merge(imu, obd, gps, key=lambda s: s.t)
        yield from merged
