"""A simulated trip streamed block by block through the agent's detectors and shipped models."""

from __future__ import annotations

import numpy as np
import pytest

from edge_agent.inference import ModelSlot, OnnxModelConfig
from edge_agent.inference.detectors import EngineAnomalyDetector, HarshDrivingDetector
from models.sim import Trip, TripConfig
from models.training.train import MODELS_ROOT


@pytest.fixture(scope="module")
def slots() -> dict[str, ModelSlot]:
    return {
        n: ModelSlot(OnnxModelConfig(name=n, path=MODELS_ROOT / n))
        for n in ("harsh_driving", "engine_anomaly")
    }


def test_trip_with_brake_and_crash_is_detected_in_stream(slots: dict[str, ModelSlot]) -> None:
    d = Trip(40, config=TripConfig(length_m=4000.0)).data()
    truth = {e.kind: e.t_start for e in d.events}
    assert set(truth) == {"harsh_brake", "collision"}
    det = HarshDrivingDetector(slots["harsh_driving"])
    speed = d.speed_kmh / 3.6
    found: list[tuple[str, float]] = []
    for b in range(len(d.acc) // 100):
        sp = float(speed[b + 1]) if b + 1 < len(speed) else None
        hit = det.push(
            d.acc[b * 100 : (b + 1) * 100], d.gyro[b * 100 : (b + 1) * 100], sp, t=b + 1.0
        )
        if hit:
            found.append((hit.kind, hit.t))
    kinds = {k for k, _ in found}
    assert kinds == {"harsh_brake", "collision"}
    crash_t = [t for k, t in found if k == "collision"]
    assert min(crash_t) - truth["collision"] < 2.5
    assert det.windows > 200
    assert det.unaligned < 60


def test_bad_blocks_are_counted_not_raised(slots: dict[str, ModelSlot]) -> None:
    det = HarshDrivingDetector(slots["harsh_driving"])
    assert det.push(np.full((100, 3), np.nan), np.zeros((100, 3)), 10.0) is None
    assert det.push(np.zeros((50, 3)), np.zeros((50, 3)), 10.0) is None
    assert det.rejected == 2
    eng = EngineAnomalyDetector(slots["engine_anomaly"])
    assert eng.push(np.array([1.0, 2.0])) is None
    assert eng.rejected == 1


def test_engine_detector_flags_overheating(slots: dict[str, ModelSlot]) -> None:
    eng = EngineAnomalyDetector(slots["engine_anomaly"])
    hits = []
    for i in range(120):
        coolant = 92.0 + max(0, i - 30) * 0.4  # climbing 24 C/min at cruise
        hit = eng.push(np.array([60.0, 2000.0 + (i % 3), coolant, 50.0, 20.0, 35.0]), t=float(i))
        if hit:
            hits.append(hit.kind)
    assert hits
    assert hits[-1] == "overheating"


@pytest.mark.parametrize("device_seed", [1, 2, 3])
def test_detections_do_not_depend_on_mounting(
    slots: dict[str, ModelSlot], device_seed: int
) -> None:
    from models.sim import Device

    device = Device.random(device_seed)
    d = Trip(40, device=device, config=TripConfig(length_m=4000.0)).data()
    det = HarshDrivingDetector(slots["harsh_driving"])
    speed = d.speed_kmh / 3.6
    kinds = set()
    for b in range(len(d.acc) // 100):
        sp = float(speed[b + 1]) if b + 1 < len(speed) else None
        hit = det.push(d.acc[b * 100 : (b + 1) * 100], d.gyro[b * 100 : (b + 1) * 100], sp)
        if hit:
            kinds.add(hit.kind)
    assert kinds == {"harsh_brake", "collision"}
