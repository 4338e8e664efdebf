"""Travel distances and times between locations, behind one small interface.

`EuclideanMatrix` serves benchmark instances (plane coordinates, time = distance / speed).
`GreatCircleMatrix` serves real coordinates (x = longitude, y = latitude, degrees): the
haversine distance times a road-circuity factor, at a speed given by a `SpeedProvider`.
The fleet-learned speeds (per H3 cell and hour of week) plug in as a `SpeedProvider`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from cloud.optimizer.errors import ModelError
from cloud.optimizer.model import FloatMatrix, Location

EARTH_RADIUS_M = 6_371_008.8


class MatrixProvider(Protocol):
    """Anything that turns locations into (distance m, duration s) matrices."""

    def matrices(self, locations: Sequence[Location]) -> tuple[FloatMatrix, FloatMatrix]: ...


class SpeedProvider(Protocol):
    """Travel speed (m/s) for a trip leaving `origin` toward `dest` at `hour_of_week` (0-167).

    The learned provider looks the origin's H3 cell and hour up and falls back to a default
    where the fleet has too few observations.
    """

    def speed(self, origin: Location, dest: Location, hour_of_week: int) -> float: ...


@dataclass(frozen=True)
class ConstantSpeed:
    """The default speed everywhere (m/s)."""

    mps: float = 30 / 3.6

    def __post_init__(self) -> None:
        if not self.mps > 0:
            raise ModelError("speed must be > 0 m/s")

    def speed(self, origin: Location, dest: Location, hour_of_week: int) -> float:
        return self.mps


def _coords(locations: Sequence[Location]) -> tuple[FloatMatrix, FloatMatrix]:
    xs = np.fromiter((loc.x for loc in locations), dtype=np.float64, count=len(locations))
    ys = np.fromiter((loc.y for loc in locations), dtype=np.float64, count=len(locations))
    return xs, ys


@dataclass(frozen=True)
class EuclideanMatrix:
    """Unrounded Euclidean distance; duration = distance / speed (speed 1 for Solomon)."""

    speed: float = 1.0

    def __post_init__(self) -> None:
        if not self.speed > 0:
            raise ModelError("speed must be > 0")

    def matrices(self, locations: Sequence[Location]) -> tuple[FloatMatrix, FloatMatrix]:
        xs, ys = _coords(locations)
        dist = np.hypot(xs[:, None] - xs[None, :], ys[:, None] - ys[None, :])
        return dist, dist / self.speed


@dataclass(frozen=True)
class GreatCircleMatrix:
    """Haversine metres x circuity; seconds from a speed provider at a given hour of week."""

    circuity: float = 1.3
    speeds: SpeedProvider = ConstantSpeed()
    hour_of_week: int = 0

    def __post_init__(self) -> None:
        if not self.circuity >= 1.0:
            raise ModelError("road circuity must be >= 1")
        if not 0 <= self.hour_of_week < 168:
            raise ModelError("hour_of_week must be in 0..167")

    def matrices(self, locations: Sequence[Location]) -> tuple[FloatMatrix, FloatMatrix]:
        lon, lat = (np.radians(a) for a in _coords(locations))
        dlat = lat[:, None] - lat[None, :]
        dlon = lon[:, None] - lon[None, :]
        hav = (
            np.sin(dlat / 2) ** 2
            + np.cos(lat[:, None]) * np.cos(lat[None, :]) * np.sin(dlon / 2) ** 2
        )
        dist = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(hav, 0.0, 1.0))) * self.circuity
        if isinstance(self.speeds, ConstantSpeed):
            return dist, dist / self.speeds.mps
        n = len(locations)
        speed = np.empty((n, n), dtype=np.float64)
        for i, origin in enumerate(locations):
            for j, dest in enumerate(locations):
                speed[i, j] = self.speeds.speed(origin, dest, self.hour_of_week)
        if np.any(speed <= 0):
            raise ModelError("speed provider returned a speed <= 0")
        return dist, dist / speed
