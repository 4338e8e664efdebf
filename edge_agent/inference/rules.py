"""The fixed-threshold rules trackers ship, kept as the baseline and as a fallback plugin.

Harsh driving: low-pass the acceleration (0.1 s), then a threshold held for at least 0.2 s
(brake < -0.4 g, acceleration > 0.3 g, cornering |lateral| > 0.4 g); a crash is any sample with
|acceleration - gravity| > 2.5 g. Engine: coolant > 105 C, a fuel-level fall of 5 points, three
RPM jumps over 250 rpm at steady speed.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from edge_agent.inference.imu_features import AlignedWindows, moving_average
from edge_agent.inference.obd_features import COOLANT, FUEL, RPM, SPEED

G = 9.80665
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
HOLD = 20  # samples at 100 Hz


def _held(mask: npt.NDArray[np.bool_], n: int) -> npt.NDArray[np.bool_]:
    """True where ``mask`` stays true for at least ``n`` consecutive samples in the window."""
    run = np.zeros(mask.shape[0], dtype=np.int64)
    best = np.zeros(mask.shape[0], dtype=np.int64)
    for j in range(mask.shape[1]):
        run = np.where(mask[:, j], run + 1, 0)
        best = np.maximum(best, run)
    out: npt.NDArray[np.bool_] = best >= n
    return out


def harsh_driving_rules(w: AlignedWindows) -> I64:
    """Class index per window (IMU order: normal, brake, accel, corner, collision)."""
    s = moving_average(w.lin, 10)
    lo, la = s[:, :, 0], s[:, :, 1]
    out = np.zeros(w.lin.shape[0], dtype=np.int64)
    out[_held(lo > 0.3 * G, HOLD)] = 2
    out[_held(np.abs(la) > 0.4 * G, HOLD)] = 3
    out[_held(lo < -0.4 * G, HOLD)] = 1
    out[np.linalg.norm(w.lin, axis=2).max(1) > 2.5 * G] = 4
    return out


def engine_rules(x: F64) -> I64:
    """Class index per (w, 60, 6) OBD window (normal, overheating, misfire, fuel_drop)."""
    fuel = x[:, :, FUEL]
    fall = np.max(np.maximum.accumulate(fuel, axis=1) - fuel, axis=1)
    jumps = (np.abs(np.diff(x[:, :, RPM], axis=1)) > 250) & (
        np.abs(np.diff(x[:, :, SPEED], axis=1)) <= 1
    )
    out = np.zeros(x.shape[0], dtype=np.int64)
    out[jumps.sum(1) >= 3] = 2
    out[fall >= 5.0] = 3
    out[x[:, :, COOLANT].max(1) > 105] = 1
    return out
