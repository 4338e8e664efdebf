"""What the geo processor remembers about one vehicle between fixes.

Plain data, serialisable to JSON: it is saved in ``geo_state`` in the same transaction as the
input offsets it reflects, so a restarted processor continues exactly where it committed.
Times are microseconds since the Unix epoch (UTC), positions degrees, distances metres.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

STATE_VERSION = 1


@dataclass(slots=True)
class Point:
    time_us: int
    lat: float
    lon: float


@dataclass(slots=True)
class FenceVisit:
    """Membership of one geofence, with the hysteresis counter for a pending change."""

    inside: bool = False
    enter_us: int = 0
    dwell_fired: bool = False
    pending: int = 0  # consecutive fixes disagreeing with ``inside``
    pending_at: Point | None = None  # the first of them: where the change happened


@dataclass(slots=True)
class Trip:
    start: Point
    odometer_m: float  # odometer at the start
    started_by: str  # "ignition" or "motion"
    located: bool = True  # False: started before any position was known (set by the next fix)


@dataclass(slots=True)
class VehicleState:
    watermark_us: int = -1  # newest fix time consumed; older or equal fixes are late
    odometer_m: float = 0.0
    anchor: Point | None = None  # the last fix that counted for the odometer
    jump_run: int = 0  # consecutive fixes that jumped away from the anchor
    jump_last: Point | None = None
    last: Point | None = None  # the last usable fix
    ignition: bool | None = None  # None: this vehicle never reported ignition
    ignition_us: int = -1
    moving: bool = False
    moving_since: Point | None = None
    moving_odometer_m: float = 0.0
    still_since: Point | None = None
    still_odometer_m: float = 0.0
    stop_open: bool = False  # stop.start published for the current standing run
    trip: Trip | None = None
    speeding_start_us: int | None = None
    speeding_max_mps: float = 0.0
    fences: dict[str, FenceVisit] = field(default_factory=dict)
    late_fixes: int = 0
    jumps: int = 0

    def to_json(self) -> str:
        doc = asdict(self)
        doc["v"] = STATE_VERSION
        return json.dumps(doc, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes | dict[str, Any]) -> VehicleState:
        doc = dict(text) if isinstance(text, dict) else json.loads(text)
        if doc.pop("v", None) != STATE_VERSION:
            return cls()  # an unknown layout: start afresh rather than misread it

        def point(d: dict[str, Any] | None) -> Point | None:
            return None if d is None else Point(**d)

        for name in ("anchor", "jump_last", "last", "moving_since", "still_since"):
            doc[name] = point(doc.get(name))
        if doc.get("trip") is not None:
            trip = doc["trip"]
            doc["trip"] = Trip(**{**trip, "start": Point(**trip["start"])})
        doc["fences"] = {
            fid: FenceVisit(**{**v, "pending_at": point(v.get("pending_at"))})
            for fid, v in doc.get("fences", {}).items()
        }
        return cls(**doc)
