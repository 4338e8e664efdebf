"""Plane geometry on WGS84 degrees: distances, point-in-polygon and GeoJSON polygons.

Geofences are small (a depot, a district), so edges are straight lines in (lon, lat), as in
GeoJSON (RFC 7946 section 3.1.1); polygons that cross the antimeridian are not supported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

EARTH_RADIUS_M = 6_371_008.8

Ring = tuple[tuple[float, float], ...]
"""A closed ring of (lat, lon) vertices in degrees, without the repeated closing vertex."""


class GeometryError(ValueError):
    """A geometry that cannot be used as a geofence."""


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def in_ring(lat: float, lon: float, ring: Ring) -> bool:
    """Even-odd ray casting; a point exactly on an edge may fall either side."""
    inside = False
    n = len(ring)
    j = n - 1
    for i in range(n):
        yi, xi = ring[i]
        yj, xj = ring[j]
        if (yi > lat) != (yj > lat) and lon < (xj - xi) * (lat - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


@dataclass(frozen=True, slots=True)
class Polygon:
    """An outer ring with optional holes."""

    outer: Ring
    holes: tuple[Ring, ...] = ()

    def contains(self, lat: float, lon: float) -> bool:
        return in_ring(lat, lon, self.outer) and not any(in_ring(lat, lon, h) for h in self.holes)

    def rings(self) -> tuple[Ring, ...]:
        return (self.outer, *self.holes)

    def bbox_area_m2(self) -> float:
        lats = [p[0] for p in self.outer]
        lons = [p[1] for p in self.outer]
        mid = (min(lats) + max(lats)) / 2
        height = haversine_m(min(lats), 0.0, max(lats), 0.0)
        width = haversine_m(mid, min(lons), mid, max(lons))
        return height * width


def _ring(coords: Any) -> Ring:
    if not isinstance(coords, list) or len(coords) < 4:
        raise GeometryError("a ring needs at least 4 positions (closed)")
    pts: list[tuple[float, float]] = []
    for pos in coords:
        if not isinstance(pos, list) or len(pos) < 2:
            raise GeometryError("a position is [lon, lat]")
        lon, lat = pos[0], pos[1]
        if not all(isinstance(v, int | float) and math.isfinite(v) for v in (lon, lat)):
            raise GeometryError("positions must be finite numbers")
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise GeometryError(f"position out of range: {pos}")
        pts.append((float(lat), float(lon)))
    if pts[0] == pts[-1]:
        pts.pop()
    if len(set(pts)) < 3:
        raise GeometryError("a ring needs at least 3 distinct positions")
    lons = [p[1] for p in pts]
    if max(lons) - min(lons) > 180:
        raise GeometryError("polygons across the antimeridian are not supported")
    return tuple(pts)


def parse_geojson(geometry: Any) -> tuple[Polygon, ...]:
    """The polygons of a GeoJSON ``Polygon`` or ``MultiPolygon`` geometry (a dict)."""
    if not isinstance(geometry, dict):
        raise GeometryError("geometry must be a GeoJSON object")
    kind, coords = geometry.get("type"), geometry.get("coordinates")
    if kind == "Polygon":
        parts = [coords]
    elif kind == "MultiPolygon" and isinstance(coords, list):
        parts = coords
    else:
        raise GeometryError(f"geometry type must be Polygon or MultiPolygon, not {kind!r}")
    polygons = []
    for part in parts:
        if not isinstance(part, list) or not part:
            raise GeometryError("a polygon is a list of rings")
        rings = [_ring(r) for r in part]
        polygons.append(Polygon(rings[0], tuple(rings[1:])))
    if not polygons:
        raise GeometryError("no polygon")
    return tuple(polygons)
