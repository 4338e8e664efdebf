"""What each edge model is: its classes, data, features, baseline and learner settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge_agent.inference import imu_features, obd_features
from edge_agent.inference.rules import engine_rules, harsh_driving_rules
from models.sim import ENGINE_CLASSES, IMU_CLASSES
from models.training.datasets import WindowSet

I64 = npt.NDArray[np.int64]


def _imu_rules(ws: WindowSet) -> I64:
    assert ws.aligned is not None
    return harsh_driving_rules(ws.aligned)


def _obd_rules(ws: WindowSet) -> I64:
    assert ws.raw is not None
    return engine_rules(ws.raw)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    version: str
    task: str
    classes: tuple[str, ...]
    feature_set: str
    feature_names: tuple[str, ...]
    feature_units: dict[str, str]
    window: str
    baseline: Callable[[WindowSet], I64]
    baseline_text: str
    normal_keep: float  # fraction of all-normal training windows kept (speed; events all kept)
    max_iter: int


SPECS: dict[str, ModelSpec] = {
    "harsh_driving": ModelSpec(
        name="harsh_driving",
        version="1.0.0",
        task="Harsh-driving and collision classifier on 2 s IMU windows (any mounting).",
        classes=IMU_CLASSES,
        feature_set=imu_features.FEATURE_SET,
        feature_names=imu_features.FEATURE_NAMES,
        feature_units=imu_features.FEATURE_UNITS,
        window="2 s of 100 Hz accelerometer + gyroscope, every 1 s, rotated into the vehicle "
        "frame by edge_agent.inference.orientation.Aligner",
        baseline=_imu_rules,
        baseline_text="tracker thresholds on the same aligned frame: 0.1 s low-pass, held 0.2 s: "
        "brake < -0.4 g, accel > 0.3 g, |lateral| > 0.4 g; collision |a - g| > 2.5 g",
        normal_keep=0.35,
        max_iter=100,
    ),
    "engine_anomaly": ModelSpec(
        name="engine_anomaly",
        version="1.0.0",
        task="Engine-anomaly classifier on 60 s windows of OBD-II values.",
        classes=ENGINE_CLASSES,
        feature_set=obd_features.FEATURE_SET,
        feature_names=obd_features.FEATURE_NAMES,
        feature_units=obd_features.FEATURE_UNITS,
        window="60 s of OBD-II at 1 Hz (speed km/h, rpm, coolant C, fuel %, throttle %, "
        "load %), every 15 s",
        baseline=_obd_rules,
        baseline_text="tracker thresholds: coolant > 105 C; fuel level falls >= 5 points in the "
        "window; >= 3 RPM jumps > 250 rpm with speed steady (<= 1 km/h)",
        normal_keep=1.0,
        max_iter=100,
    ),
}
