"""Features of one leg (origin, destination, departure time) for the ETA model.

Used both by training (models/eta) and by the service, so the model sees at serving time exactly
the numbers it was fitted on. Degrees, metres, seconds, UTC; numpy and h3 only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import h3
import numpy as np
import numpy.typing as npt

EARTH_RADIUS_M = 6_371_008.8  # the optimizer's value (cloud/optimizer/matrix.py)
H3_RESOLUTION = 8
WEEK_S = 7 * 86_400
EPOCH_MONDAY_OFFSET_S = 4 * 86_400  # 1970-01-05 was a Monday; hour_of_week 0 = Monday 00 UTC
MAX_LEG_M = 500_000.0  # a leg longer than this is refused (the model knows city legs)

FEATURE_NAMES: tuple[str, ...] = (
    "gc_distance_m",
    "origin_lat",
    "origin_lon",
    "dest_lat",
    "dest_lon",
    "h3_cells_apart",
    "hour_of_week",
    "hour_of_day",
    "day_of_week",
)
FEATURE_UNITS: dict[str, str] = {
    "gc_distance_m": "metres (great-circle, origin to destination)",
    "origin_lat": "degrees WGS84",
    "origin_lon": "degrees WGS84",
    "dest_lat": "degrees WGS84",
    "dest_lon": "degrees WGS84",
    "h3_cells_apart": f"H3 resolution-{H3_RESOLUTION} grid distance between the two cells (cells)",
    "hour_of_week": "hours since Monday 00:00 UTC at departure, fractional (0-168)",
    "hour_of_day": "hours since 00:00 UTC at departure, fractional (0-24)",
    "day_of_week": "0 = Monday (UTC)",
}
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Leg:
    """A drive from one place to the next, leaving at ``depart_s`` (Unix seconds, UTC)."""

    origin_lat: float
    origin_lon: float
    dest_lat: float
    dest_lon: float
    depart_s: float


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, max(0.0, a))))


def hour_of_week(t_s: float) -> float:
    return ((t_s - EPOCH_MONDAY_OFFSET_S) % WEEK_S) / 3600.0


def cells_apart(leg: Leg, distance_m: float) -> float:
    """H3 grid distance; beyond what h3 can walk (far apart, pentagons) an estimate from metres."""
    a = h3.latlng_to_cell(leg.origin_lat, leg.origin_lon, H3_RESOLUTION)
    b = h3.latlng_to_cell(leg.dest_lat, leg.dest_lon, H3_RESOLUTION)
    try:
        return float(h3.grid_distance(a, b))
    except h3.H3BaseException:  # pragma: no cover - needs a leg across a pentagon or > 1000 km
        edge_m = float(h3.average_hexagon_edge_length(H3_RESOLUTION, "m"))
        return float(round(distance_m / (2 * edge_m)))


def check_leg(leg: Leg) -> None:
    """Raise ValueError naming what is wrong with a leg (the service answers 422 with it)."""
    for name, lat in (("origin_lat", leg.origin_lat), ("dest_lat", leg.dest_lat)):
        if not -90.0 <= lat <= 90.0:
            raise ValueError(f"{name} {lat} is outside -90..90 degrees")
    for name, lon in (("origin_lon", leg.origin_lon), ("dest_lon", leg.dest_lon)):
        if not -180.0 <= lon <= 180.0:
            raise ValueError(f"{name} {lon} is outside -180..180 degrees")
    if not math.isfinite(leg.depart_s):
        raise ValueError("departure time is not finite")
    d = haversine_m(leg.origin_lat, leg.origin_lon, leg.dest_lat, leg.dest_lon)
    if d > MAX_LEG_M:
        raise ValueError(f"leg of {d / 1000:.0f} km is longer than {MAX_LEG_M / 1000:.0f} km")


def leg_features(leg: Leg) -> list[float]:
    d = haversine_m(leg.origin_lat, leg.origin_lon, leg.dest_lat, leg.dest_lon)
    how = hour_of_week(leg.depart_s)
    return [
        d,
        leg.origin_lat,
        leg.origin_lon,
        leg.dest_lat,
        leg.dest_lon,
        cells_apart(leg, d),
        how,
        how % 24.0,
        float(int(how // 24)),
    ]


def features(legs: list[Leg]) -> F64:
    """(n, len(FEATURE_NAMES)) float64; the model's input (cast to float32 by the caller)."""
    if not legs:
        return np.zeros((0, len(FEATURE_NAMES)), dtype=np.float64)
    return np.asarray([leg_features(leg) for leg in legs], dtype=np.float64)
