"""The aligner finds forward, left and up of a box mounted any way round."""

from __future__ import annotations

import numpy as np

from edge_agent.inference.orientation import BLOCK, Aligner
from models.sim import Trip, TripConfig


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    c = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def test_aligner_recovers_the_mounting() -> None:
    trip = Trip(11, config=TripConfig(length_m=4000.0))
    d = trip.data()
    nb = len(d.acc) // BLOCK
    acc = d.acc[: nb * BLOCK].astype(np.float64).reshape(nb, BLOCK, 3)
    gyro = d.gyro[: nb * BLOCK].astype(np.float64).reshape(nb, BLOCK, 3)
    speed = d.speed_kmh / 3.6
    al = Aligner()
    for b in range(nb):
        al.update(acc[b], gyro[b], float(speed[b + 1] - speed[b]) if b + 1 < len(speed) else None)
    frame = al.frame()
    assert frame is not None
    true = trip.device.mounting  # columns: vehicle axes in device coordinates
    assert _angle_deg(frame[2], true[:, 2]) < 8.0  # up (bias and slope limit this)
    assert _angle_deg(frame[0], true[:, 0]) < 15.0  # forward
    restored = Aligner.from_dict(al.to_dict())
    assert np.allclose(restored.frame(), frame)


def test_no_frame_before_evidence() -> None:
    al = Aligner()
    assert al.frame() is None
    still = np.tile([0.0, 0.0, 9.81], (BLOCK, 1))
    for _ in range(10):
        al.update(still, np.zeros((BLOCK, 3)), 0.0)
    assert al.frame() is None  # parked: gravity known, heading not


def test_corrupt_saved_state_starts_afresh() -> None:
    assert Aligner.from_dict({"gravity": [1.0, 2.0]}).blocks == 0  # type: ignore[dict-item]
    bad = Aligner().to_dict()
    bad["gravity"] = [float("nan"), 0.0, 9.8]
    assert Aligner.from_dict(bad).blocks == 0
    bad["gravity"] = "x"  # type: ignore[assignment]
    assert Aligner.from_dict(bad).blocks == 0
