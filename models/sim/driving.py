"""The driver: plans speed along the route (curves, limits, stops) and injects harsh events.

Planning runs at 10 Hz (a Python loop is cheap there); the result is resampled to 100 Hz.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.sim.labels import HARSH_ACCEL_MS2, HARSH_BRAKE_MS2, HARSH_CORNER_MS2, Event, G
from models.sim.route import Route
from models.sim.vehicle import Vehicle

F64 = npt.NDArray[np.float64]
PLAN_DT = 0.1  # s
IMU_DT = 0.01  # s


@dataclass(frozen=True)
class EventRates:
    """How often the simulator injects events (per km of route, or per trip)."""

    harsh_brake_per_km: float = 0.6
    harsh_accel_per_km: float = 0.5
    harsh_corner_leg_prob: float = 0.15
    collision_prob: float = 0.3


@dataclass(frozen=True)
class Kinematics:
    """The vehicle's true motion at 100 Hz, in the vehicle frame (x forward, y left, z up)."""

    t: F64  # s since trip start
    s: F64  # m along the route
    v: F64  # m/s
    a_long: F64  # m/s^2, driven acceleration (no impacts)
    impact: F64  # (n, 2) m/s^2 collision impulse, longitudinal and lateral
    events: tuple[Event, ...]


def _leg_envelope(route: Route, i0: int, i1: int, veh: Vehicle, lateral: float) -> F64:
    kappa = np.abs(route.curvature[i0 : i1 + 1])
    cap = np.minimum(
        route.speed_limit[i0 : i1 + 1] * veh.speed_factor, np.sqrt(lateral / (kappa + 1e-6))
    )
    cap[-1] = 0.0
    env = cap.copy()
    b2 = 2.0 * veh.brake_ms2 * 0.8
    for i in range(len(env) - 2, -1, -1):
        env[i] = min(env[i], math.sqrt(env[i + 1] ** 2 + b2))
    return env


def _places(rng: np.random.Generator, lo: float, hi: float, n: int) -> list[float]:
    """``n`` sorted positions (m) in [lo, hi]; none on a route too short to hold the range."""
    return sorted(float(x) for x in rng.uniform(lo, hi, n)) if hi > lo else []


def drive(route: Route, veh: Vehicle, rng: np.random.Generator, rates: EventRates) -> Kinematics:
    """Drive the route leg by leg (rest to rest) and return 100 Hz kinematics with events."""
    n_pts = len(route.curvature)
    km = route.length_m / 1000.0
    brake_at = _places(rng, 150, route.length_m - 100, rng.poisson(rates.harsh_brake_per_km * km))
    accel_at = _places(rng, 50, route.length_m - 200, rng.poisson(rates.harsh_accel_per_km * km))
    crash_at = (
        float(rng.uniform(0.5, 0.95) * route.length_m)
        if rng.random() < rates.collision_prob
        else math.inf
    )
    bounds = [0, *route.stops, n_pts - 1]
    ts: list[float] = []
    ss: list[float] = []
    vs: list[float] = []
    accs: list[float] = []
    events: list[Event] = []
    impacts: list[tuple[float, float, float, float]] = []  # t, dur, long peak, lat peak
    t = 0.0
    crashed_at: float | None = None
    harsh: tuple[str, float, float] | None = None  # kind, accel command, end speed
    a = 0.0
    for leg, (i0, i1) in enumerate(itertools.pairwise(bounds)):
        corner_leg = (
            rng.random() < rates.harsh_corner_leg_prob
            and float(np.max(np.abs(route.curvature[i0 : i1 + 1]))) > 1 / 250
        )
        lateral = (
            float(rng.uniform(1.15, 1.6) * HARSH_CORNER_MS2) if corner_leg else veh.lateral_ms2
        )
        env = _leg_envelope(route, i0, i1, veh, lateral)
        length = float(i1 - i0)
        s, v = 0.0, 0.0
        while True:
            pos = i0 + s
            i = min(int(s), len(env) - 1)
            look = min(i + int(v * 1.2) + 1, len(env) - 1)
            v_t = min(env[i], env[look])
            a_cmd = float(np.clip((v_t - v) / 1.5, -veh.brake_ms2, veh.accel_ms2))
            jerk = 6.0
            if crashed_at is None and pos >= crash_at and v > 3.0:
                dv = float(min(v, rng.uniform(1.5, 10.0)))
                dur = float(rng.uniform(0.05, 0.15))
                peak = dv * math.pi / (2 * dur)
                side = rng.random()
                lon, lat = (
                    (-peak, 0.0)
                    if side < 0.6
                    else (peak, 0.0)
                    if side < 0.8
                    else (0.0, peak * rng.choice([-1.0, 1.0]))
                )
                impacts.append((t, dur, lon, lat))
                events.append(Event("collision", t, t + dur, peak))
                v = max(0.0, v - dv) if lon <= 0 else v + dv
                crashed_at = t
                harsh = None
            if crashed_at is not None:
                a_cmd = -3.0 if v > 0 else 0.0
            elif harsh is None and brake_at and pos >= brake_at[0]:
                if v > 7.0:
                    d = float(rng.uniform(1.12, 2.0) * HARSH_BRAKE_MS2)
                    harsh = ("harsh_brake", -d, max(0.0, v - rng.uniform(4.0, min(v, 16.0))))
                brake_at.pop(0)
            elif (
                harsh is None and accel_at and pos >= accel_at[0] and v < 6.0 and env[look] > v + 8
            ):
                d = float(rng.uniform(1.15, 1.65) * HARSH_ACCEL_MS2)
                harsh = ("harsh_accel", d, min(float(env[look]), v + rng.uniform(7.0, 14.0)))
                accel_at.pop(0)
            if harsh is not None:
                _kind, cmd, v_end = harsh
                done = v <= v_end if cmd < 0 else (v >= v_end or v >= env[look])
                if done:
                    harsh = None
                else:
                    a_cmd, jerk = cmd, 25.0
            a += float(np.clip(a_cmd - a, -jerk * PLAN_DT, jerk * PLAN_DT))
            ts.append(t)
            ss.append(i0 + s)
            vs.append(v)
            accs.append(a)
            t += PLAN_DT
            v = max(0.0, v + a * PLAN_DT)
            if v == 0.0 and a < 0:
                a = 0.0
            s = min(length, s + v * PLAN_DT)
            if crashed_at is not None and t - crashed_at > 20.0 and v == 0.0:
                break
            if length - s < 2.0 and v < 0.6:
                break
        if crashed_at is not None:
            break
        if leg < len(bounds) - 2:  # dwell at the stop, engine idling
            for _ in range(int(rng.uniform(2.0, 40.0) / PLAN_DT)):
                ts.append(t)
                ss.append(float(i1))
                vs.append(0.0)
                accs.append(0.0)
                t += PLAN_DT
            a = 0.0
    t10 = np.asarray(ts)
    t100 = np.arange(0.0, t10[-1], IMU_DT)
    v100 = np.interp(t100, t10, np.asarray(vs))
    s100 = np.interp(t100, t10, np.asarray(ss))
    a100 = np.interp(t100, t10 + PLAN_DT / 2, np.asarray(accs))
    a100[v100 <= 0.0] = 0.0  # parked: no driven acceleration
    impact = np.zeros((len(t100), 2))
    for t0, dur, lon, lat in impacts:
        m = (t100 >= t0) & (t100 < t0 + dur)
        shape = np.sin(math.pi * (t100[m] - t0) / dur)
        impact[m, 0] += lon * shape
        impact[m, 1] += lat * shape
    events.extend(
        _threshold_events(t100, a100, v100, np.interp(s100, np.arange(n_pts), route.curvature))
    )
    events.sort(key=lambda e: e.t_start)
    return Kinematics(t=t100, s=s100, v=v100, a_long=a100, impact=impact, events=tuple(events))


def _runs(mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True))


def _threshold_events(t: F64, a: F64, v: F64, kappa: F64) -> list[Event]:
    """Harsh-driving events as the true kinematics exceed the label definitions."""
    lat = v * v * kappa
    out: list[Event] = []
    for kind, mask, mag in (
        ("harsh_brake", a <= -HARSH_BRAKE_MS2, -a),
        ("harsh_accel", a >= HARSH_ACCEL_MS2, a),
        ("harsh_corner", np.abs(lat) >= HARSH_CORNER_MS2, np.abs(lat)),
    ):
        for i, j in _runs(mask):
            out.append(Event(kind, float(t[i]), float(t[j - 1] + IMU_DT), float(mag[i:j].max())))
    return out


__all__ = ["EventRates", "G", "Kinematics", "drive"]
