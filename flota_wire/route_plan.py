"""The ``route_plan`` command payload: one definition for the dispatcher that writes it and the
agent that applies it.

A plan is a JSON object::

    {"plan_id": str (1..64), "stops": [stop, ...] (0..1000), ...}
    stop = {"id": str (1..128), "lat": deg, "lon": deg, "eta_us"?: int, "service_s"?: s >= 0, ...}

Zero stops is a valid plan: every order of that vehicle was cancelled or moved. Other keys (the
dispatcher adds depot, version, trigger, task, committed and its own ETA fields) are allowed and
kept, so new keys are a compatible change; the checked keys above are what a device relies on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from flota_wire.errors import WireError

MAX_STOPS = 1000


def _number(raw: Any, what: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise WireError(f"{what} must be a finite number")
    return float(raw)


def _id(raw: Any, what: str, longest: int) -> str:
    if not isinstance(raw, str) or not 1 <= len(raw) <= longest:
        raise WireError(f"{what} must be a string of 1..{longest} characters")
    return raw


def check_stop(i: int, s: Any) -> dict[str, Any]:
    if not isinstance(s, Mapping):
        raise WireError(f"stop {i} must be an object")
    _id(s.get("id"), f"stop {i} id", 128)
    lat = _number(s.get("lat"), f"stop {i} lat")
    lon = _number(s.get("lon"), f"stop {i} lon")
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
        raise WireError(f"stop {i}: position out of range")
    eta = s.get("eta_us")
    if eta is not None and (isinstance(eta, bool) or not isinstance(eta, int)):
        raise WireError(f"stop {i}: eta_us must be an integer (microseconds since the epoch)")
    service = s.get("service_s")
    if service is not None and _number(service, f"stop {i} service_s") < 0:
        raise WireError(f"stop {i}: service_s must be >= 0")
    return {**s, "lat": lat, "lon": lon, "eta_us": eta, "service_s": service}


def check_route_plan(payload: Any) -> dict[str, Any]:
    """The plan with its checked keys normalised; raises WireError with the first problem."""
    if not isinstance(payload, Mapping):
        raise WireError("a route plan must be an object")
    _id(payload.get("plan_id"), "plan_id", 64)
    stops = payload.get("stops")
    if not isinstance(stops, list) or len(stops) > MAX_STOPS:
        raise WireError(f"stops must be a list of at most {MAX_STOPS} stops")
    return {**payload, "stops": [check_stop(i, s) for i, s in enumerate(stops)]}
