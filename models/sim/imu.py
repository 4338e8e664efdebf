"""From true vehicle motion to what a mounted IMU reports: gravity, body pitch and roll,
road and engine vibration, potholes, mounting rotation, bias, noise, quantisation."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from models.sim.device import Device
from models.sim.driving import IMU_DT, Kinematics
from models.sim.labels import G
from models.sim.route import Route

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]
ACCEL_LSB = 0.0048  # m/s^2 per count, a 16-bit +-16 g part
GYRO_LSB = 0.00107  # rad/s per count, a 16-bit +-2000 deg/s part


def _smooth(x: F64, seconds: float) -> F64:
    n = max(1, int(seconds / IMU_DT))
    pad = np.concatenate([np.full(n, x[0]), x])
    c = np.cumsum(pad)
    out: F64 = (c[n:] - c[:-n]) / n
    return out


def _bumps(kin: Kinematics, route: Route, rng: np.random.Generator) -> tuple[F64, F64, F64]:
    """Potholes, joints and speed bumps: short, mostly vertical impulses (not labelled)."""
    n = len(kin.t)
    vert, lon, pitch_rate = np.zeros(n), np.zeros(n), np.zeros(n)
    rough = route.roughness
    rate = (0.4 + 5.0 * rough.mean()) / 1000.0  # per m
    positions = rng.uniform(0, route.length_m, rng.poisson(rate * route.length_m))
    idx = np.searchsorted(kin.s, positions)
    for i in idx:
        if i >= n - 50 or kin.v[i] < 2.0:
            continue
        v = kin.v[i]
        heavy = rng.random() < 0.07
        peak = rng.uniform(2.0, 9.0) * float(np.clip(v / 12.0, 0.3, 1.6))
        peak *= 0.6 + rough[min(int(kin.s[i]), len(rough) - 1)]
        if heavy:
            peak *= rng.uniform(1.6, 2.6)
        dur = rng.uniform(0.03, 0.09)
        k = int(dur / IMU_DT) + 1
        shape = np.sin(np.linspace(0, math.pi, k + 2)[1:-1])
        lon_frac = -rng.uniform(0.1, 0.6)
        # front axle, then the rear axle a wheelbase later, a little weaker
        for j, gain in ((i, 1.0), (i + int(2.8 / max(v, 1.0) / IMU_DT), 0.7)):
            if j + k >= n:
                continue
            vert[j : j + k] += gain * peak * shape
            lon[j : j + k] += gain * lon_frac * peak * shape
            pitch_rate[j : j + k] += gain * peak * 0.02 * shape * (1 if gain == 1.0 else -1)
    return vert, lon, pitch_rate


def _vibration(n: int, rng: np.random.Generator) -> F64:
    """Unit-variance road vibration: suspension (1.5 Hz) plus tyre/wheel (12 Hz) modes."""
    t = np.arange(0, 0.6, IMU_DT)
    kernel = np.exp(-t / 0.4) * np.sin(2 * math.pi * 1.5 * t) + 0.7 * np.exp(-t / 0.05) * np.sin(
        2 * math.pi * 12 * t
    )
    kernel /= np.sqrt(np.sum(kernel**2))
    out: F64 = np.convolve(rng.normal(size=n + len(t)), kernel, mode="valid")[:n]
    return out


def synthesize_imu(
    kin: Kinematics, route: Route, device: Device, rpm: F64, rng: np.random.Generator
) -> tuple[F32, F32]:
    """Accelerometer (m/s^2) and gyroscope (rad/s) at 100 Hz in the device's axes."""
    n = len(kin.t)
    grid = np.arange(len(route.curvature))
    kappa = np.interp(kin.s, grid, route.curvature)
    grade = np.interp(kin.s, grid, route.grade)
    rough = np.interp(kin.s, grid, route.roughness)
    a_long = kin.a_long + kin.impact[:, 0]
    a_lat = kin.v**2 * kappa + kin.impact[:, 1]
    yaw_rate = kin.v * kappa
    vert, bump_lon, bump_pitch = _bumps(kin, route, rng)
    moving = np.clip(kin.v / 2.0, 0.0, 1.0)
    sigma = rough * (0.12 + 0.035 * kin.v) * moving
    vib = np.stack([0.3 * _vibration(n, rng), 0.3 * _vibration(n, rng), _vibration(n, rng)], axis=1)
    vib *= sigma[:, None]
    pitch = np.arctan(grade) + 0.008 * _smooth(kin.a_long, 0.3)  # nose dives when braking
    roll = 0.012 * _smooth(a_lat - kin.impact[:, 1], 0.3)  # body rolls to the outside
    f = np.stack(
        [
            a_long + G * np.sin(pitch) + bump_lon,
            a_lat + G * np.sin(roll),
            G * np.cos(pitch) * np.cos(roll) + vert,
        ],
        axis=1,
    )
    f += vib
    w = np.stack(
        [np.gradient(roll, IMU_DT), np.gradient(pitch, IMU_DT) + bump_pitch, yaw_rate], axis=1
    )
    phase = np.cumsum(2 * math.pi * 2.0 * rpm / 60.0 * IMU_DT)
    engine = np.sin(phase)[:, None] * device.engine_coupling[None, :]
    acc = f @ device.mounting.T + device.accel_bias + engine
    acc += rng.normal(0.0, device.accel_noise, (n, 3))
    gyro = w @ device.mounting.T + device.gyro_bias + rng.normal(0.0, device.gyro_noise, (n, 3))
    acc = np.clip(np.round(acc / ACCEL_LSB) * ACCEL_LSB, -device.accel_range, device.accel_range)
    gyro = np.round(gyro / GYRO_LSB) * GYRO_LSB
    return acc.astype(np.float32), gyro.astype(np.float32)
