"""Class names and the labelled events the simulator injects."""

from __future__ import annotations

from dataclasses import dataclass

# The agent owns the class order (its models output it); the simulator labels with it.
from edge_agent.inference.classes import ENGINE_CLASSES, IMU_CLASSES

__all__ = ["ENGINE_CLASSES", "IMU_CLASSES", "Event"]

G = 9.80665  # m/s^2

# Physical definitions of the labels, on the vehicle's true (noise-free) acceleration.
# Normal driving in the simulator stays below 0.9 x these, harsh events above 1.1 x.
HARSH_BRAKE_MS2 = 0.40 * G
HARSH_ACCEL_MS2 = 0.30 * G
HARSH_CORNER_MS2 = 0.40 * G


@dataclass(frozen=True)
class Event:
    """One injected event: its class, start and end (s since trip start) and peak size."""

    kind: str
    t_start: float
    t_end: float
    peak: float  # m/s^2 for driving events, class-specific for engine faults
