"""The tracker box: how it is mounted and how its IMU errs. One per vehicle, fixed for its life."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]


def random_rotation(rng: np.random.Generator) -> F64:
    """A rotation drawn uniformly over SO(3) (installers mount boxes any way round)."""
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


@dataclass(frozen=True)
class Device:
    """Mounting rotation (device axes from vehicle axes x fwd, y left, z up) and sensor errors."""

    mounting: F64  # 3x3, v_device = mounting @ v_vehicle
    accel_bias: F64  # m/s^2 per axis
    accel_noise: float  # m/s^2, white noise sigma
    gyro_bias: F64  # rad/s per axis
    gyro_noise: float  # rad/s
    accel_range: float  # m/s^2 full scale (saturates)
    engine_coupling: F64  # m/s^2 amplitude of engine vibration, device axes

    @classmethod
    def random(cls, seed: int) -> Device:
        rng = np.random.default_rng(seed)
        return cls(
            mounting=random_rotation(rng),
            accel_bias=rng.uniform(-0.25, 0.25, 3),
            accel_noise=float(rng.uniform(0.03, 0.1)),
            gyro_bias=rng.uniform(-0.02, 0.02, 3),
            gyro_noise=float(rng.uniform(0.002, 0.008)),
            accel_range=16 * 9.80665,
            engine_coupling=rng.normal(0.0, 0.1, 3),
        )
