"""The shared physical-limits check (STYLE.md item 3): plausibility, not decodability.

The decoder is lossless and never changes a value; whether a decoded fix is physically
plausible is a separate question the cloud bridge asks before it stores, to quarantine bad
input with an exact reason. Each reason is a stable string, for counting.
"""

from __future__ import annotations

from flota_wire.schema import Fix

MAX_SPEED_CMPS = 100_00  # 100 m/s = 360 km/h: no road vehicle reports more
MIN_ALT_DM = -500_0  # 500 m below sea level
MAX_ALT_DM = 10_000_0  # 10 km above sea level
MAX_HDOP_C = 100_00
MAX_SATS = 128
MIN_TIME_US = 946_684_800_000_000  # 2000-01-01T00:00:00Z
MAX_FUTURE_US = 5 * 60 * 1_000_000  # fixes more than 5 minutes ahead of the receiver's clock

REASONS = (
    "lat_out_of_range",
    "lon_out_of_range",
    "null_island",
    "time_too_old",
    "time_in_future",
    "speed_impossible",
    "track_out_of_range",
    "alt_out_of_range",
    "hdop_out_of_range",
    "sats_out_of_range",
)


def fix_problems(fix: Fix, now_us: int) -> list[str]:
    """Reasons (from REASONS) why ``fix`` is not physically plausible at ``now_us``; empty if
    it is. ``now_us`` is the receiving side's clock, microseconds since the Unix epoch."""
    out = []
    if not -90_000_000 <= fix.lat_e6 <= 90_000_000:
        out.append("lat_out_of_range")
    if not -180_000_000 <= fix.lon_e6 <= 180_000_000:
        out.append("lon_out_of_range")
    if fix.lat_e6 == 0 and fix.lon_e6 == 0:
        out.append("null_island")
    if fix.time_us < MIN_TIME_US:
        out.append("time_too_old")
    if fix.time_us > now_us + MAX_FUTURE_US:
        out.append("time_in_future")
    if fix.speed_cmps is not None and not 0 <= fix.speed_cmps <= MAX_SPEED_CMPS:
        out.append("speed_impossible")
    if fix.track_cdeg is not None and not 0 <= fix.track_cdeg < 36_000:
        out.append("track_out_of_range")
    if fix.alt_dm is not None and not MIN_ALT_DM <= fix.alt_dm <= MAX_ALT_DM:
        out.append("alt_out_of_range")
    if fix.hdop_c is not None and not 0 <= fix.hdop_c <= MAX_HDOP_C:
        out.append("hdop_out_of_range")
    if fix.sats is not None and not 0 <= fix.sats <= MAX_SATS:
        out.append("sats_out_of_range")
    return out
