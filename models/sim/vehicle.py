"""The vehicle and its driver: mass, drag, gearbox, engine; the driver's normal limits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Vehicle:
    """Parameters of one vehicle and its usual driver (normal driving stays below harsh)."""

    mass_kg: float
    cda_m2: float  # drag coefficient x frontal area
    rated_power_w: float
    gear_ratios: tuple[float, ...]
    final_drive: float
    wheel_radius_m: float
    idle_rpm: float
    tank_l: float
    thermostat_c: float
    # driver: comfortable limits (m/s^2) and how closely the limit is kept
    accel_ms2: float
    brake_ms2: float
    lateral_ms2: float
    speed_factor: float
    fuel_slosh: float  # % of tank reading per m/s^2 of longitudinal acceleration

    @classmethod
    def random(cls, seed: int) -> Vehicle:
        rng = np.random.default_rng(seed)
        van = rng.random() < 0.4
        return cls(
            mass_kg=float(rng.uniform(2000, 3500) if van else rng.uniform(1200, 1900)),
            cda_m2=float(rng.uniform(0.9, 1.3) if van else rng.uniform(0.6, 0.8)),
            rated_power_w=float(rng.uniform(70e3, 130e3)),
            gear_ratios=(3.8, 2.1, 1.4, 1.0, 0.8, 0.65),
            final_drive=float(rng.uniform(3.6, 4.4)),
            wheel_radius_m=float(rng.uniform(0.29, 0.34)),
            idle_rpm=float(rng.uniform(720, 880)),
            tank_l=float(rng.uniform(45, 80)),
            thermostat_c=float(rng.uniform(86, 93)),
            accel_ms2=float(rng.uniform(1.2, 2.4)),
            brake_ms2=float(rng.uniform(1.5, 3.0)),
            lateral_ms2=float(rng.uniform(1.6, 3.0)),
            speed_factor=float(rng.uniform(0.85, 1.1)),
            fuel_slosh=float(rng.uniform(0.5, 1.4)),
        )
