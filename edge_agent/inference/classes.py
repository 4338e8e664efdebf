"""Output classes of the edge models, in the models' output order (cards record it too)."""

from __future__ import annotations

IMU_CLASSES: tuple[str, ...] = (
    "normal",
    "harsh_brake",
    "harsh_accel",
    "harsh_corner",
    "collision",
)
ENGINE_CLASSES: tuple[str, ...] = ("normal", "overheating", "misfire", "fuel_drop")
