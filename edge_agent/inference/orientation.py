"""Align a box mounted any way round to the vehicle: gravity gives "up", the speed change gives
"forward", and the yaw rate during turns gives "left" (centripetal acceleration points into the
turn). Updated once per 1 s block so training and agent run identical arithmetic."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)
F64 = npt.NDArray[np.float64]
_VECTORS = ("gravity", "gyro_bias", "fwd_evidence", "left_evidence")
BLOCK = 100  # samples per update at 100 Hz
GRAVITY_BLOCKS = 20.0  # EMA time constant, blocks
AXIS_BLOCKS = 300.0
MIN_SPEED_EVIDENCE = 0.05  # (m/s^2)*(m/s), accumulated |h * dv|
MIN_YAW_EVIDENCE = 0.004  # (m/s^2)*(rad/s)


def _unit(v: F64) -> F64:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


@dataclass
class Aligner:
    """Running estimate of the vehicle frame in device axes; persist it between trips."""

    gravity: F64 = field(default_factory=lambda: np.zeros(3))
    gyro_bias: F64 = field(default_factory=lambda: np.zeros(3))
    fwd_evidence: F64 = field(default_factory=lambda: np.zeros(3))
    left_evidence: F64 = field(default_factory=lambda: np.zeros(3))
    blocks: int = 0

    def frame(self) -> F64 | None:
        """Rows forward, left, up (device axes), or None until there is enough evidence."""
        if self.blocks < 5:
            return None
        up = _unit(self.gravity)
        votes = np.zeros(3)
        f = self.fwd_evidence - np.dot(self.fwd_evidence, up) * up
        if np.linalg.norm(f) > MIN_SPEED_EVIDENCE:
            votes += _unit(f)
        left = self.left_evidence - np.dot(self.left_evidence, up) * up
        if np.linalg.norm(left) > MIN_YAW_EVIDENCE:
            votes += _unit(np.cross(_unit(left), up))
        if not np.any(votes):
            return None
        fwd = _unit(votes - np.dot(votes, up) * up)
        return np.stack([fwd, np.cross(up, fwd), up])

    def update(self, acc: F64, gyro: F64, dv: float | None) -> None:
        """Fold in one block: accelerometer (m/s^2) and gyro (rad/s) samples, speed change (m/s)."""
        mean_acc = acc.mean(axis=0)
        if self.blocks == 0:
            self.gravity = mean_acc.astype(np.float64)
        else:
            self.gravity = self.gravity + (mean_acc - self.gravity) / GRAVITY_BLOCKS
        up = _unit(self.gravity)
        h = mean_acc - self.gravity
        h = h - np.dot(h, up) * up
        w = gyro.mean(axis=0)
        self.gyro_bias = self.gyro_bias + (w - self.gyro_bias) / AXIS_BLOCKS
        yaw = float(np.dot(w - self.gyro_bias, up))
        if dv is not None:
            self.fwd_evidence = self.fwd_evidence + (h * dv - self.fwd_evidence) / AXIS_BLOCKS
        self.left_evidence = self.left_evidence + (h * yaw - self.left_evidence) / AXIS_BLOCKS
        self.blocks += 1

    def to_dict(self) -> dict[str, list[float] | int]:
        return {
            "gravity": self.gravity.tolist(),
            "gyro_bias": self.gyro_bias.tolist(),
            "fwd_evidence": self.fwd_evidence.tolist(),
            "left_evidence": self.left_evidence.tolist(),
            "blocks": self.blocks,
        }

    @classmethod
    def from_dict(cls, d: dict[str, list[float] | int]) -> Aligner:
        """Restore saved state; a corrupt file gives a fresh aligner, never a crash."""
        try:
            vecs = [np.asarray(d[k], dtype=np.float64) for k in _VECTORS]
            blocks = int(d["blocks"])  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError) as err:
            log.warning("aligner state unreadable, starting afresh: %s", err)
            return cls()
        if any(v.shape != (3,) or not np.all(np.isfinite(v)) for v in vecs) or blocks < 0:
            log.warning("aligner state out of range, starting afresh")
            return cls()
        gravity, gyro_bias, fwd, left = vecs
        return cls(gravity, gyro_bias, fwd, left, blocks)
