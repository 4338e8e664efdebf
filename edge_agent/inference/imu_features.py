"""Features of a 2 s IMU window in the vehicle frame (orientation-invariant once aligned).

Feature set ``imu_v1``: the card names it; change the arithmetic only with a new version.
Everything is float64 numpy here, cast to float32 at the end (the ONNX input type).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]
FEATURE_SET = "imu_v1"
RATE_HZ = 100
WINDOW = 200  # samples (2 s)
HOP = 100  # samples (1 s)
SMOOTH = 25  # samples (0.25 s): longer than a pothole, shorter than a manoeuvre
G = 9.80665


@dataclass(frozen=True)
class AlignedWindows:
    """Windows in the vehicle frame: linear acceleration (m/s^2) and yaw rate (rad/s)."""

    lin: F64  # (w, n, 3): forward, left, up; gravity removed
    yaw: F64  # (w, n)
    gyro_norm: F64  # (w, n)


def align(acc: F64, gyro: F64, frames: F64, gravity: F64, gyro_bias: F64) -> AlignedWindows:
    """Rotate windows (w, n, 3) into their frames (w, 3, 3) after removing gravity (w, 3)."""
    lin = np.einsum("wij,wtj->wti", frames, acc - gravity[:, None, :])
    g = gyro - gyro_bias[:, None, :]
    yaw = np.einsum("wj,wtj->wt", frames[:, 2, :], g)
    return AlignedWindows(lin=lin, yaw=yaw, gyro_norm=np.linalg.norm(g, axis=2))


def moving_average(x: F64, n: int) -> F64:
    """Trailing mean over ``n`` samples along axis 1 (the first n-1 use what they have)."""
    c = np.cumsum(x, axis=1)
    out = c.copy()
    out[:, n:] = c[:, n:] - c[:, :-n]
    count = np.minimum(np.arange(1, x.shape[1] + 1), n).astype(np.float64)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    result: F64 = out / count.reshape(shape)
    return result


FEATURE_NAMES: tuple[str, ...] = (
    *(
        f"{axis}_{stat}"
        for axis in ("long", "lat", "vert")
        for stat in ("mean", "std", "min", "max")
    ),
    "long_s_min",
    "long_s_max",
    "lat_s_absmax",
    "vert_s_absmax",
    "long_s_p10",
    "long_s_p90",
    "lat_s_p90abs",
    "frac_long_s_below_0.3g",
    "frac_long_s_above_0.25g",
    "frac_lat_s_above_0.3g",
    "horiz_peak",
    "vert_peak",
    "norm_peak",
    "horiz_50ms_peak",
    "vert_50ms_peak",
    "jerk_long_max",
    "jerk_lat_max",
    "yaw_mean",
    "yaw_absmax",
    "gyro_norm_max",
    "lat_over_yaw",
    "long_second_minus_first",
    "vert_std_s",
)
FEATURE_UNITS: dict[str, str] = {
    **{
        n: "m/s^2" for n in FEATURE_NAMES if n.startswith(("long", "lat_", "vert", "horiz", "norm"))
    },
    "jerk_long_max": "m/s^3",
    "jerk_lat_max": "m/s^3",
    "yaw_mean": "rad/s",
    "yaw_absmax": "rad/s",
    "gyro_norm_max": "rad/s",
    "lat_over_yaw": "m/s",
    **{n: "fraction" for n in FEATURE_NAMES if n.startswith("frac")},
}


def percentile(x: F64, q: float) -> F64:
    """numpy's default (linear) percentile along axis 1, with one sort: 5x faster on a window."""
    srt = np.sort(x, axis=1)
    pos = q / 100.0 * (x.shape[1] - 1)
    lo = int(np.floor(pos))
    hi = min(lo + 1, x.shape[1] - 1)
    out: F64 = srt[:, lo] + (srt[:, hi] - srt[:, lo]) * (pos - lo)
    return out


def features(w: AlignedWindows) -> F32:
    """(w, len(FEATURE_NAMES)) float32 features; few, wide numpy calls (this runs per second)."""
    lin = w.lin
    n_w = lin.shape[0]
    s = moving_average(lin, SMOOTH)
    lo_s, la_s, ve_s = s[:, :, 0], s[:, :, 1], s[:, :, 2]
    abs_la_s = np.abs(la_s)
    horiz = np.hypot(lin[:, :, 0], lin[:, :, 1])
    short = moving_average(np.concatenate([horiz[:, :, None], np.abs(lin[:, :, 2:])], axis=2), 5)
    smax = short.max(1)
    half = lin.shape[1] // 2
    yaw_s = moving_average(w.yaw, SMOOTH)
    yaw_s_mean = yaw_s.mean(1)
    per_axis = np.stack([lin.mean(1), lin.std(1), lin.min(1), lin.max(1)], axis=2).reshape(n_w, 12)
    s_min, s_max = s.min(1), s.max(1)
    jerk = np.abs(np.diff(s[:, :, :2], axis=1)).max(1) * RATE_HZ
    cols = [
        s_min[:, 0],
        s_max[:, 0],
        abs_la_s.max(1),
        np.maximum(-s_min[:, 2], s_max[:, 2]),
        percentile(lo_s, 10),
        percentile(lo_s, 90),
        percentile(abs_la_s, 90),
        (lo_s < -0.3 * G).mean(1),
        (lo_s > 0.25 * G).mean(1),
        (abs_la_s > 0.3 * G).mean(1),
        horiz.max(1),
        np.abs(lin[:, :, 2]).max(1),
        np.sqrt((lin * lin).sum(2).max(1)),
        smax[:, 0],
        smax[:, 1],
        jerk[:, 0],
        jerk[:, 1],
        w.yaw.mean(1),
        np.abs(yaw_s).max(1),
        w.gyro_norm.max(1),
        la_s.mean(1) / (np.abs(yaw_s_mean) + 0.05) * np.sign(yaw_s_mean + 1e-9),
        lin[:, half:, 0].mean(1) - lin[:, :half, 0].mean(1),
        ve_s.std(1),
    ]
    out = np.concatenate([per_axis, np.stack(cols, axis=1)], axis=1).astype(np.float32)
    return out


assert len(FEATURE_NAMES) == 35
