"""Features of a 60 s window of OBD-II values at 1 Hz (feature set ``obd_v1``)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]
FEATURE_SET = "obd_v1"
WINDOW = 60  # samples at 1 Hz
HOP = 15
# input columns, in this order
CHANNELS: tuple[str, ...] = (
    "speed_kmh",
    "rpm",
    "coolant_c",
    "fuel_pct",
    "throttle_pct",
    "load_pct",
)
SPEED, RPM, COOLANT, FUEL, THROTTLE, LOAD = range(6)

FEATURE_NAMES: tuple[str, ...] = (
    "coolant_last",
    "coolant_max",
    "coolant_slope",
    "coolant_rise",
    "rpm_mean",
    "rpm_std",
    "rpm_absdiff_median",
    "rpm_absdiff_p75",
    "rpm_absdiff_max",
    "rpm_jumps_steady",
    "speed_mean",
    "speed_std",
    "speed_absdiff_max",
    "idle_frac",
    "fuel_drop_thirds",
    "fuel_range",
    "fuel_slope",
    "fuel_absdiff_max",
    "throttle_mean",
    "load_mean",
    "load_std",
    "load_absdiff_median",
)
FEATURE_UNITS: dict[str, str] = {
    "coolant_last": "degC",
    "coolant_max": "degC",
    "coolant_slope": "degC/min",
    "coolant_rise": "degC",
    "rpm_mean": "rpm",
    "rpm_std": "rpm",
    "rpm_absdiff_median": "rpm",
    "rpm_absdiff_p75": "rpm",
    "rpm_absdiff_max": "rpm",
    "rpm_jumps_steady": "count",
    "speed_mean": "km/h",
    "speed_std": "km/h",
    "speed_absdiff_max": "km/h",
    "idle_frac": "fraction",
    "fuel_drop_thirds": "% of tank",
    "fuel_range": "% of tank",
    "fuel_slope": "%/min",
    "fuel_absdiff_max": "% of tank",
    "throttle_mean": "%",
    "load_mean": "%",
    "load_std": "%",
    "load_absdiff_median": "%",
}


def _slope_per_min(y: F64) -> F64:
    t = np.arange(y.shape[1], dtype=np.float64)
    t -= t.mean()
    out: F64 = (y - y.mean(1, keepdims=True)) @ t / (t @ t) * 60.0
    return out


def _median(x: F64) -> F64:
    srt = np.sort(x, axis=1)
    n = x.shape[1]
    out: F64 = 0.5 * (srt[:, (n - 1) // 2] + srt[:, n // 2])
    return out


def _p75(x: F64) -> F64:
    srt = np.sort(x, axis=1)
    pos = 0.75 * (x.shape[1] - 1)
    lo = int(pos)
    hi = min(lo + 1, x.shape[1] - 1)
    out: F64 = srt[:, lo] + (srt[:, hi] - srt[:, lo]) * (pos - lo)
    return out


def features(x: F64) -> F32:
    """(w, 60, 6) OBD windows -> (w, len(FEATURE_NAMES)) float32 features."""
    sp, rpm, cool, fuel = x[:, :, SPEED], x[:, :, RPM], x[:, :, COOLANT], x[:, :, FUEL]
    d_rpm = np.abs(np.diff(rpm, axis=1))
    d_sp = np.abs(np.diff(sp, axis=1))
    third = x.shape[1] // 3
    load = x[:, :, LOAD]
    cols = [
        cool[:, -1],
        cool.max(1),
        _slope_per_min(cool),
        cool[:, -5:].mean(1) - cool[:, :5].mean(1),
        rpm.mean(1),
        rpm.std(1),
        _median(d_rpm),
        _p75(d_rpm),
        d_rpm.max(1),
        ((d_rpm > 150) & (d_sp <= 1)).sum(1).astype(np.float64),
        sp.mean(1),
        sp.std(1),
        d_sp.max(1),
        (sp < 1).mean(1),
        _median(fuel[:, :third]) - _median(fuel[:, -third:]),
        fuel.max(1) - fuel.min(1),
        _slope_per_min(fuel),
        np.abs(np.diff(fuel, axis=1)).max(1),
        x[:, :, THROTTLE].mean(1),
        load.mean(1),
        load.std(1),
        _median(np.abs(np.diff(load, axis=1))),
    ]
    return np.stack(cols, axis=1).astype(np.float32)


assert len(FEATURE_NAMES) == 22
