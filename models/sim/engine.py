"""Engine and OBD-II at 1 Hz: gearbox, load, throttle, coolant, fuel, and engine faults."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.sim.driving import IMU_DT, Kinematics
from models.sim.labels import ENGINE_CLASSES, Event, G
from models.sim.route import Route
from models.sim.vehicle import Vehicle

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class EngineTrace:
    """OBD values at 1 Hz (PID resolution), their labels, and engine speed at 100 Hz."""

    t: F64
    speed_kmh: F64
    rpm: F64
    coolant_c: F64
    fuel_pct: F64
    throttle_pct: F64
    load_pct: F64
    label: npt.NDArray[np.int8]
    rpm_100hz: F64
    events: tuple[Event, ...]


def simulate_engine(
    kin: Kinematics, route: Route, veh: Vehicle, rng: np.random.Generator, fault_prob: float
) -> EngineTrace:
    t = np.arange(0.0, kin.t[-1], 1.0)
    n = len(t)
    idx = np.minimum((t / IMU_DT).astype(int), len(kin.t) - 1)
    v = kin.v[idx]
    k = int(1.0 / IMU_DT)
    c = np.cumsum(np.concatenate([np.zeros(k), kin.a_long]))
    a = ((c[k:] - c[:-k]) / k)[idx]  # mean acceleration over the last second
    grade = np.interp(kin.s[idx], np.arange(len(route.grade)), route.grade)
    ambient = float(rng.uniform(-10, 40))
    cold = rng.random() < 0.4
    fault = str(rng.choice(ENGINE_CLASSES[1:])) if rng.random() < fault_prob else None
    onset = float(rng.uniform(0.15, 0.6) * t[-1]) if fault else math.inf
    events: list[Event] = []
    label = np.zeros(n, dtype=np.int8)

    ratio = (
        np.asarray(veh.gear_ratios) * veh.final_drive * 60.0 / (2 * math.pi * veh.wheel_radius_m)
    )
    rpm = np.empty(n)
    gear = 0
    for i in range(n):
        aggr = float(np.clip(a[i] / 3.0, 0.0, 1.0))
        if v[i] < 1.5:
            gear = 0
            rpm[i] = veh.idle_rpm + 600.0 * aggr
            continue
        while gear < len(ratio) - 1 and v[i] * ratio[gear] > 2200 + 1800 * aggr:
            gear += 1
        while gear > 0 and v[i] * ratio[gear] < 1100:
            gear -= 1
        rpm[i] = max(veh.idle_rpm, v[i] * ratio[gear])
    rpm += rng.normal(0.0, 12.0, n)

    power = (
        veh.mass_kg * v * (a + G * np.sin(np.arctan(grade)) + 0.012 * G) + 0.6 * veh.cda_m2 * v**3
    )
    avail = veh.rated_power_w * np.clip(rpm / 5000.0, 0.15, 1.0)
    load = np.clip(power / avail, 0.0, 1.0)
    load_pct = np.where(power < 0, rng.uniform(6, 12, n), 20.0 + 78.0 * load)
    throttle = np.where(power < 0, 11.0, 11.0 + 75.0 * load**0.8) + rng.normal(0.0, 0.8, n)

    # coolant: warm-up to the thermostat, then load- and ambient-driven excursions
    coolant = np.empty(n)
    temp = ambient if cold else veh.thermostat_c + rng.uniform(-3, 2)
    load_lp = 0.3
    excess = 0.0
    rate = float(rng.uniform(1.5, 4.0)) / 60.0
    for i in range(n):
        load_lp += (load[i] - load_lp) / 120.0
        heat = 22.0 * max(0.0, load_lp - 0.45) * (ambient + 15) / 55 + 0.35 * max(0.0, ambient - 25)
        if fault == "overheating" and t[i] >= onset:
            excess = min(35.0, excess + rate)
        normal = veh.thermostat_c + heat
        target = normal + excess
        if temp < veh.thermostat_c - 1 and excess == 0.0:
            temp += 0.1 + 0.3 * load[i]
        else:
            temp += (target - temp) / 90.0
        if excess > 0.0 and temp >= normal + 6.0:  # the fault shows on the gauge
            label[i] = 1
        coolant[i] = temp + rng.normal(0.0, 0.3)

    if fault == "misfire":
        on = t >= onset
        sigma = rng.uniform(60.0, 220.0)
        rpm[on] += rng.normal(0.0, sigma, int(on.sum()))
        load_pct[on] += rng.normal(0.0, 4.0, int(on.sum()))
        label[on] = 2
        events.append(Event("misfire", onset, float(t[-1]), float(sigma)))
    elif fault == "overheating":
        hot = np.flatnonzero(label == 1)
        if len(hot):
            events.append(
                Event("overheating", float(t[hot[0]]), float(t[-1]), float(coolant.max()))
            )

    # fuel: consumption, a damped sender that sloshes with acceleration and slope
    litres = veh.tank_l * rng.uniform(0.15, 0.95) - np.cumsum(
        np.maximum(power, 0.0) / (0.28 * 34.2e6) + 0.8 / 3600
    )
    level = 100.0 * litres / veh.tank_l
    if fault == "fuel_drop":
        dur = float(rng.uniform(15.0, 90.0))
        amount = float(rng.uniform(4.0, 18.0))
        level -= amount * np.clip((t - onset) / dur, 0.0, 1.0)
        label[(t >= onset) & (t < onset + max(dur, 40.0))] = 3
        events.append(Event("fuel_drop", onset, onset + dur, amount))
    sign = rng.choice([-1.0, 1.0])
    raw = level + sign * veh.fuel_slosh * (a + 0.5 * G * grade) + rng.normal(0.0, 0.25, n)
    fuel = np.empty(n)
    shown = raw[0]
    for i in range(n):
        shown += (raw[i] - shown) / 4.0
        fuel[i] = shown

    lsb = 100.0 / 255.0
    return EngineTrace(
        t=t,
        speed_kmh=np.round(v * 3.6),
        rpm=np.round(np.maximum(rpm, 0.0) * 4) / 4,
        coolant_c=np.round(coolant),
        fuel_pct=np.clip(np.round(fuel / lsb) * lsb, 0.0, 100.0),
        throttle_pct=np.clip(np.round(throttle / lsb) * lsb, 0.0, 100.0),
        load_pct=np.clip(np.round(load_pct / lsb) * lsb, 0.0, 100.0),
        label=label,
        rpm_100hz=np.interp(kin.t, t, rpm),
        events=tuple(events),
    )
