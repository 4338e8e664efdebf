"""The H3 index agrees with the exact point-in-polygon test, and spares most exact tests."""

from __future__ import annotations

import random
from typing import Any

import h3
import pytest

from cloud.ingest.geo.fences import FenceIndex, Geofence, cover
from cloud.ingest.geo.geometry import GeometryError, Polygon, in_ring, parse_geojson


def _fence(fid: str, geometry: Any, tenant: str = "acme") -> Geofence:
    return Geofence(tenant, fid, fid, parse_geojson(geometry))


# A concave "U" around a courtyard, with a hole in its left arm: about 2 km x 2 km.
U_SHAPE: Any = {
    "type": "Polygon",
    "coordinates": [
        [[24.90, 60.16], [24.94, 60.16], [24.94, 60.18], [24.93, 60.18], [24.93, 60.17],
         [24.91, 60.17], [24.91, 60.18], [24.90, 60.18], [24.90, 60.16]],
        [[24.902, 60.171], [24.908, 60.171], [24.908, 60.177], [24.902, 60.177],
         [24.902, 60.171]],
    ],
}  # fmt: skip


def test_index_agrees_with_the_exact_test_everywhere() -> None:
    fence = _fence("u", U_SHAPE)
    index = FenceIndex([fence])
    rng = random.Random(4)
    hits = 0
    for _ in range(3000):
        lat, lon = rng.uniform(60.155, 60.185), rng.uniform(24.895, 24.945)
        expected = fence.contains(lat, lon)
        assert (index.containing("acme", lat, lon) == {"u"}) == expected, (lat, lon)
        hits += expected
    assert hits > 500  # the sample really probed the inside
    # Interior cells answer without the exact test for most inside points.
    assert index.exact_tests < 3000 * 0.5


def test_cover_interior_cells_lie_wholly_inside() -> None:
    fence = _fence("u", U_SHAPE)
    interior, border = cover(fence, 9)
    assert interior
    assert not interior & border
    for cell in interior:
        assert all(fence.contains(lat, lon) for lat, lon in h3.cell_to_boundary(cell))


def test_hole_and_multipolygon() -> None:
    fence = _fence("u", U_SHAPE)
    assert not fence.contains(60.174, 24.905)  # in the hole
    assert fence.contains(60.165, 24.905)
    assert not fence.contains(60.175, 24.92)  # in the courtyard
    multi = _fence("m", {"type": "MultiPolygon", "coordinates": [U_SHAPE["coordinates"],
        [[[25.0, 60.0], [25.01, 60.0], [25.01, 60.01], [25.0, 60.0]]]]})  # fmt: skip
    index = FenceIndex([multi])
    assert index.containing("acme", 60.002, 25.008) == {"m"}
    assert index.containing("acme", 60.165, 24.905) == {"m"}
    assert index.containing("other", 60.165, 24.905) == set()


def test_huge_fence_uses_a_coarser_resolution() -> None:
    big = _fence("finland", {"type": "Polygon", "coordinates": [
        [[21.0, 60.0], [30.0, 60.0], [30.0, 69.0], [21.0, 69.0], [21.0, 60.0]]]})  # fmt: skip
    index = FenceIndex([big])
    assert index.containing("acme", 62.0, 25.0) == {"finland"}
    assert index.containing("acme", 59.0, 25.0) == set()
    assert max(index._resolutions) < 9


def test_ray_casting_basics() -> None:
    square = ((0.0, 0.0), (0.0, 1.0), (1.0, 1.0), (1.0, 0.0))
    assert in_ring(0.5, 0.5, square)
    assert not in_ring(1.5, 0.5, square)
    assert Polygon(square).contains(0.2, 0.8)


@pytest.mark.parametrize(
    ("geometry", "message"),
    [
        ({"type": "Point", "coordinates": [1, 2]}, "Polygon or MultiPolygon"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [0, 0]]]}, "at least 4"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [0, 0], [0, 0]]]}, "3 distinct"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 95], [2, 0], [0, 0]]]}, "range"),
        ({"type": "Polygon", "coordinates": [[[179, 0], [-179, 1], [179, 1], [179, 0]]]},
         "antimeridian"),
        ("not a dict", "GeoJSON object"),
    ],
)  # fmt: skip
def test_bad_geometry_is_refused_with_a_reason(geometry: object, message: str) -> None:
    with pytest.raises(GeometryError, match=message):
        parse_geojson(geometry)
