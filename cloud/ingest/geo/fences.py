"""Geofences and their H3 index.

Each fence is covered by H3 cells at a resolution chosen for its size (9 by default, about
0.1 km2 a cell; coarser for big fences so no fence needs more than ``MAX_CELLS`` cells):

* *border* cells: exactly the cells the boundary passes through. Candidates are the cells of
  points sampled along each edge (closer than a cell's edge length) and their neighbours; a
  candidate is kept when the edge really crosses its hexagon (enlarged by 1% as a margin for
  the hexagon's geodesic sides), or an edge lies wholly inside it;
* *interior* cells: the cells whose centre lies inside (``h3.polygon_to_cells``) minus the
  border cells. The boundary crosses none of them, so all of each lies inside.

Segment crossing and point-in-polygon are affine-invariant, so they run on raw degrees.

A lookup takes the fix's cell at each resolution in use: an interior hit is inside without
further work, a border hit gets the exact point-in-polygon test, anything else is outside.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import h3

from cloud.ingest.geo.geometry import Polygon, Ring, haversine_m, in_ring

Pt = tuple[float, float]

DEFAULT_RESOLUTION = 9
MAX_CELLS = 20_000


@dataclass(frozen=True, slots=True)
class Geofence:
    """One tenant's named area. ``dwell_s`` overrides the default dwell threshold."""

    tenant: str
    fence_id: str
    name: str
    polygons: tuple[Polygon, ...]
    dwell_s: float | None = None

    def contains(self, lat: float, lon: float) -> bool:
        """The exact test."""
        return any(p.contains(lat, lon) for p in self.polygons)


def _resolution(fence: Geofence, finest: int) -> int:
    area = sum(p.bbox_area_m2() for p in fence.polygons)
    res = finest
    while res > 0 and area / h3.average_hexagon_area(res, "m^2") > MAX_CELLS:
        res -= 1
    return res


def _cross(o: Pt, a: Pt, b: Pt) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _segments_cross(p1: Pt, p2: Pt, q1: Pt, q2: Pt) -> bool:
    d1, d2 = _cross(q1, q2, p1), _cross(q1, q2, p2)
    d3, d4 = _cross(p1, p2, q1), _cross(p1, p2, q2)
    return (d1 * d2 <= 0) and (d3 * d4 <= 0)


def _hexagon(cell: str) -> Ring:
    """The cell's boundary enlarged by 1% about its centre."""
    clat, clon = h3.cell_to_latlng(cell)
    return tuple(
        (clat + (lat - clat) * 1.01, clon + (lon - clon) * 1.01)
        for lat, lon in h3.cell_to_boundary(cell)
    )


def _crosses(hexagon: Ring, a: Pt, b: Pt) -> bool:
    if in_ring(a[0], a[1], hexagon) or in_ring(b[0], b[1], hexagon):
        return True
    n = len(hexagon)
    return any(_segments_cross(a, b, hexagon[i], hexagon[(i + 1) % n]) for i in range(n))


def _boundary_cells(ring: Ring, res: int) -> set[str]:
    step_m = h3.average_hexagon_edge_length(res, "m") / 3
    cells: set[str] = set()
    hexagons: dict[str, Ring] = {}
    n = len(ring)
    for i in range(n):
        a, b = ring[i], ring[(i + 1) % n]
        steps = max(1, math.ceil(haversine_m(a[0], a[1], b[0], b[1]) / step_m))
        sampled = {
            h3.latlng_to_cell(a[0] + (b[0] - a[0]) * k / steps, a[1] + (b[1] - a[1]) * k / steps,
                              res)
            for k in range(steps + 1)
        }  # fmt: skip
        for cell in {c for s in sampled for c in h3.grid_disk(s, 1)} - cells:
            hexagon = hexagons.get(cell)
            if hexagon is None:
                hexagon = hexagons[cell] = _hexagon(cell)
            if _crosses(hexagon, a, b):
                cells.add(cell)
    return cells


def cover(fence: Geofence, res: int) -> tuple[set[str], set[str]]:
    """(interior cells, border cells) of a fence at one resolution."""
    border: set[str] = set()
    centred: set[str] = set()
    for poly in fence.polygons:
        for ring in poly.rings():
            border |= _boundary_cells(ring, res)
        shape = h3.LatLngPoly(list(poly.outer), *[list(h) for h in poly.holes])
        centred.update(h3.polygon_to_cells(shape, res))
    return centred - border, border


@dataclass(slots=True)
class _Entry:
    fence: Geofence
    interior: bool


class FenceIndex:
    """All geofences of all tenants, indexed by H3 cell; immutable once built."""

    def __init__(self, fences: list[Geofence], resolution: int = DEFAULT_RESOLUTION) -> None:
        self.fences = {(f.tenant, f.fence_id): f for f in fences}
        self._cells: dict[int, dict[str, list[_Entry]]] = defaultdict(lambda: defaultdict(list))
        self.exact_tests = 0
        for fence in fences:
            res = _resolution(fence, resolution)
            interior, border = cover(fence, res)
            for cell in interior:
                self._cells[res][cell].append(_Entry(fence, True))
            for cell in border:
                self._cells[res][cell].append(_Entry(fence, False))
        self._resolutions = sorted(self._cells)

    def __len__(self) -> int:
        return len(self.fences)

    def containing(self, tenant: str, lat: float, lon: float) -> set[str]:
        """Ids of the tenant's fences that contain the point."""
        found: set[str] = set()
        for res in self._resolutions:
            entries = self._cells[res].get(h3.latlng_to_cell(lat, lon, res))
            if not entries:
                continue
            for e in entries:
                if e.fence.tenant != tenant or e.fence.fence_id in found:
                    continue
                if e.interior:
                    found.add(e.fence.fence_id)
                else:
                    self.exact_tests += 1
                    if e.fence.contains(lat, lon):
                        found.add(e.fence.fence_id)
        return found

    def get(self, tenant: str, fence_id: str) -> Geofence | None:
        return self.fences.get((tenant, fence_id))
