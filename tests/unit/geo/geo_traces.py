"""Hand-made traces for the geo rules' tests: straight drives at known speeds, stands, events."""

from __future__ import annotations

from collections.abc import Iterable

from cloud.ingest.geo.config import GeoRules
from cloud.ingest.geo.events import DomainEvent
from cloud.ingest.geo.fences import FenceIndex, Geofence
from cloud.ingest.geo.geometry import EARTH_RADIUS_M, parse_geojson
from cloud.ingest.geo.machine import FixIn, Outcome, Tracker
from cloud.ingest.geo.state import VehicleState
from flota_wire.schema import Event

M_PER_DEG_LAT = EARTH_RADIUS_M * 3.141592653589793 / 180
T0 = 1_780_000_000_000_000  # microseconds, a fixed instant
LAT0, LON0 = 60.17, 24.94


def s(seconds: float) -> int:
    return T0 + round(seconds * 1e6)


class Trace:
    """A vehicle moving north along one meridian, one fix a second by default."""

    def __init__(self, t: float = 0.0, north_m: float = 0.0) -> None:
        self.t, self.north_m = t, north_m
        self.fixes: list[FixIn] = []

    def _fix(self, speed: float) -> None:
        lat = LAT0 + self.north_m / M_PER_DEG_LAT
        self.fixes.append(FixIn(s(self.t), lat, LON0, speed))

    def stand(self, seconds: float, step: float = 1.0) -> Trace:
        for _ in range(round(seconds / step)):
            self._fix(0.0)
            self.t += step
        return self

    def drive(self, seconds: float, speed: float, step: float = 1.0) -> Trace:
        for _ in range(round(seconds / step)):
            self._fix(speed)
            self.t += step
            self.north_m += speed * step
        return self


def box_fence(fence_id: str, south_m: float, north_m: float, half_width_m: float = 200.0,
              tenant: str = "acme", dwell_s: float | None = None) -> Geofence:  # fmt: skip
    """A rectangle across the trace's meridian between two distances north of the origin."""
    lat1 = LAT0 + south_m / M_PER_DEG_LAT
    lat2 = LAT0 + north_m / M_PER_DEG_LAT
    dlon = half_width_m / (M_PER_DEG_LAT * 0.4975)  # cos(60.17 deg)
    ring = [[LON0 - dlon, lat1], [LON0 + dlon, lat1], [LON0 + dlon, lat2], [LON0 - dlon, lat2],
            [LON0 - dlon, lat1]]  # fmt: skip
    return Geofence(tenant, fence_id, fence_id.title(),
                    parse_geojson({"type": "Polygon", "coordinates": [ring]}), dwell_s)  # fmt: skip


def ignition(seq: int, at: float, on: bool) -> Event:
    return Event(seq=seq, time_us=s(at), kind="ignition_on" if on else "ignition_off")


class Run:
    """A vehicle's state and everything it has emitted."""

    def __init__(self, rules: GeoRules | None = None, fences: Iterable[Geofence] = ()) -> None:
        self.rules = rules or GeoRules()
        self.index = FenceIndex(list(fences))
        self.state = VehicleState()
        self.events: list[DomainEvent] = []
        self.outcomes: list[Outcome] = []

    def tracker(self) -> Tracker:
        return Tracker("acme", "truck-1", self.state, self.rules, self.index, self.events)

    def feed(self, *items: FixIn | Event | Trace) -> Run:
        for item in items:
            if isinstance(item, Trace):
                self.feed(*item.fixes)
            elif isinstance(item, FixIn):
                self.outcomes.append(self.tracker().on_fix(item))
            else:
                self.tracker().on_vehicle_event(item)
        return self

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events if e.source == "cloud"]

    def of(self, kind: str) -> list[DomainEvent]:
        return [e for e in self.events if e.kind == kind]
