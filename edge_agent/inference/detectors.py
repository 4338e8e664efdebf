"""Streaming glue: sensor blocks in, classified windows out, with the same arithmetic (block
order, frame snapshots, windowing) as training used, so the model sees what it was fitted on."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge_agent.inference import imu_features, obd_features
from edge_agent.inference.errors import InputError
from edge_agent.inference.orientation import BLOCK, Aligner
from edge_agent.inference.slot import ModelSlot

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Detection:
    """A window classified as something other than normal."""

    model: str
    version: str
    kind: str
    probability: float
    t: float  # s, end of the window, in the caller's clock


class HarshDrivingDetector:
    """Feed 1 s blocks of 100 Hz IMU samples (device axes) and the speed at the block's end."""

    def __init__(self, slot: ModelSlot, aligner: Aligner | None = None) -> None:
        self.slot = slot
        self.aligner = aligner or Aligner()  # persist ``aligner.to_dict()`` between trips
        self._prev: tuple[F64, F64, F64 | None, F64, F64] | None = None
        self._speed: float | None = None
        self.windows = 0
        self.unaligned = 0
        self.rejected = 0

    def push(
        self, acc: F64, gyro: F64, speed_mps: float | None, t: float = 0.0
    ) -> Detection | None:
        acc = np.asarray(acc, dtype=np.float64)
        gyro = np.asarray(gyro, dtype=np.float64)
        if (
            acc.shape != (BLOCK, 3)
            or gyro.shape != (BLOCK, 3)
            or not (np.all(np.isfinite(acc)) and np.all(np.isfinite(gyro)))
        ):
            self.rejected += 1  # a gap or a glitch: drop the block, start windows afresh
            self._prev = None
            return None
        snap = (self.aligner.frame(), self.aligner.gravity.copy(), self.aligner.gyro_bias.copy())
        dv = None
        if speed_mps is not None and self._speed is not None:
            dv = speed_mps - self._speed
        self._speed = speed_mps
        self.aligner.update(acc, gyro, dv)
        prev, self._prev = self._prev, (acc, gyro, *snap)
        if prev is None:
            return None
        p_acc, p_gyro, frame, gravity, gyro_bias = prev
        if frame is None:
            self.unaligned += 1
            return None
        window = imu_features.align(
            np.concatenate([p_acc, acc])[None],
            np.concatenate([p_gyro, gyro])[None],
            frame[None],
            gravity[None],
            gyro_bias[None],
        )
        self.windows += 1
        return _detection(self.slot, self.slot.classify(window)[0], t)


class EngineAnomalyDetector:
    """Feed OBD rows at 1 Hz (columns as ``obd_features.CHANNELS``); classifies every 15 s."""

    def __init__(self, slot: ModelSlot) -> None:
        self.slot = slot
        self._rows: deque[F64] = deque(maxlen=obd_features.WINDOW)
        self._since = 0
        self.rejected = 0

    def push(self, row: F64, t: float = 0.0) -> Detection | None:
        row = np.asarray(row, dtype=np.float64)
        if row.shape != (len(obd_features.CHANNELS),) or not np.all(np.isfinite(row)):
            self.rejected += 1
            return None
        self._rows.append(row)
        self._since += 1
        if len(self._rows) < obd_features.WINDOW or self._since < obd_features.HOP:
            return None
        self._since = 0
        try:
            probs = self.slot.classify(np.stack(self._rows)[None])
        except InputError:
            self.rejected += 1
            return None
        return _detection(self.slot, probs[0], t)


def _detection(slot: ModelSlot, probs: npt.NDArray[np.float32], t: float) -> Detection | None:
    model = slot.active
    k = int(np.argmax(probs))
    if k == 0:
        return None
    return Detection(model.name, model.version, model.classes[k], float(probs[k]), t)
