"""Travel speeds learned from the fleet's fixes: per H3 cell and hour of week, with fallbacks.

A trip from A to B at hour h is timed at the harmonic mean of the speeds of the cells along
the straight line A-B (five points), each cell's speed looked up as: (cell, hour) if it had
enough samples, else the cell over all hours, else the fleet over that hour, else the default.
Hours of week are UTC: 0 = Monday 00:00-01:00, 167 = Sunday 23:00-24:00.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import h3

from cloud.optimizer.errors import ModelError
from cloud.optimizer.model import Location

ALL_HOURS = -1  # the key of a cell's all-hours speed
LINE_POINTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def hour_of_week(epoch_s: float) -> int:
    """0..167, Monday 00:00 UTC = 0."""
    t = dt.datetime.fromtimestamp(epoch_s, tz=dt.UTC)
    return t.weekday() * 24 + t.hour


@dataclass(frozen=True)
class CellSpeed:
    """What was learned for one (cell, hour): metres driven over seconds taken."""

    metres: float
    seconds: float
    samples: int

    @property
    def mps(self) -> float:
        return self.metres / self.seconds


@dataclass
class LearnedSpeeds:
    """A `SpeedProvider` (see matrix.py) backed by learned per-cell, per-hour speeds."""

    resolution: int
    default_mps: float
    cells: dict[tuple[str, int], float]  # (cell, hour or ALL_HOURS) -> m/s, enough samples only
    hours: dict[int, float] = field(default_factory=dict)  # fleet-wide per hour of week
    version: str = ""  # when it was learned (cache invalidation)
    _cell_of: dict[tuple[float, float], str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.resolution <= 15:
            raise ModelError("H3 resolution must be in 0..15")
        if not self.default_mps > 0:
            raise ModelError("default speed must be > 0 m/s")
        if any(not v > 0 for v in (*self.cells.values(), *self.hours.values())):
            raise ModelError("learned speeds must be > 0 m/s")

    def cell(self, lat: float, lon: float) -> str:
        key = (round(lat, 6), round(lon, 6))
        got = self._cell_of.get(key)
        if got is None:
            got = h3.latlng_to_cell(lat, lon, self.resolution)
            if len(self._cell_of) < 1_000_000:
                self._cell_of[key] = got
        return got

    def cell_speed(self, cell: str, hour: int) -> float:
        for key in ((cell, hour), (cell, ALL_HOURS)):
            v = self.cells.get(key)
            if v is not None:
                return v
        return self.hours.get(hour, self.default_mps)

    def speed(self, origin: Location, dest: Location, hour_of_week: int) -> float:
        """Harmonic mean over points along the line (x = longitude, y = latitude)."""
        inverse = 0.0
        for f in LINE_POINTS:
            lat = origin.y + (dest.y - origin.y) * f
            lon = origin.x + (dest.x - origin.x) * f
            inverse += 1.0 / self.cell_speed(self.cell(lat, lon), hour_of_week)
        return len(LINE_POINTS) / inverse
