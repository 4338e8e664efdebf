"""Physical-limits checks on decoded fixes: what goes to quarantine instead of the fixes table.

One place for the limits (STYLE item 3). Each check returns a stable reason code; the store
counts them per reason and writes each refused fix to the quarantine table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Reason codes (stable: they are metric labels and quarantine.reason values).
NULL_ISLAND = "null_island"
OUT_OF_RANGE = "out_of_range"
FUTURE = "future"
TOO_OLD = "too_old"
IMPOSSIBLE_SPEED = "impossible_speed"
DUPLICATE = "duplicate"
DECODE = "decode"
UNREGISTERED = "unregistered"
BAD_TOPIC = "bad_topic"


@dataclass(frozen=True, slots=True)
class Limits:
    """Tolerances; the defaults suit road vehicles."""

    future_tolerance_s: float = 120.0  # receiver clocks are GNSS-disciplined: small slack
    max_age_s: float = 30 * 86400.0  # older than this is not live telemetry
    max_speed_mps: float = 90.0  # 324 km/h: above it two consecutive fixes are a GPS jump
    max_reported_speed_mps: float = 150.0


EARTH_RADIUS_M = 6_371_008.8
JUMP_SLACK_M = 50.0
"""Two noisy fixes a second apart are not a jump: this much distance is always allowed."""


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def check_fix(
    lat_e6: int,
    lon_e6: int,
    *,
    time_us: int,
    speed_cmps: int | None,
    now_us: int,
    limits: Limits,
) -> str | None:
    """A reason code when one fix is impossible on its own, else None."""
    if lat_e6 == 0 and lon_e6 == 0:
        return NULL_ISLAND
    if not (-90_000_000 <= lat_e6 <= 90_000_000 and -180_000_000 <= lon_e6 <= 180_000_000):
        return OUT_OF_RANGE
    if speed_cmps is not None and not 0 <= speed_cmps <= limits.max_reported_speed_mps * 100:
        return OUT_OF_RANGE
    if time_us > now_us + limits.future_tolerance_s * 1e6:
        return FUTURE
    if time_us < now_us - limits.max_age_s * 1e6:
        return TOO_OLD
    return None


def is_jump(
    prev: tuple[int, int, int], lat_e6: int, lon_e6: int, time_us: int, limits: Limits
) -> bool:
    """True when reaching this fix from ``prev`` (time_us, lat_e6, lon_e6) needs an impossible
    speed. Fixes at the same instant are not judged here (that is a duplicate)."""
    dt = abs(time_us - prev[0]) / 1e6
    if dt == 0:
        return False
    dist = haversine_m(prev[1] / 1e6, prev[2] / 1e6, lat_e6 / 1e6, lon_e6 / 1e6)
    return (dist - JUMP_SLACK_M) / dt > limits.max_speed_mps
