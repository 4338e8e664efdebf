"""The canonical GPS fix of the agent: one record per receiver epoch, SI units throughout.

Units: time in seconds since the Unix epoch (UTC), lat/lon in degrees (WGS 84), altitudes and
error estimates in metres, speed in m/s, track in degrees true (0..360).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True, slots=True)
class GpsFix:
    """One receiver epoch with a position.

    `time_s` is None when the receiver never said which day it is (GGA-only streams): the
    time of day is still known (`time_of_day_s`), an absolute time is not.
    """

    time_s: float | None
    time_of_day_s: float
    lat: float
    lon: float
    mode: int  # 2 = 2D, 3 = 3D
    alt_m: float | None = None  # above mean sea level
    geoid_sep_m: float | None = None  # ellipsoid height = alt_m + geoid_sep_m
    speed_mps: float | None = None
    track_deg: float | None = None
    quality: int | None = None  # GGA fix quality (1 GPS, 2 DGPS, 4 RTK fixed, 5 RTK float, ...)
    hdop: float | None = None
    pdop: float | None = None
    vdop: float | None = None
    sats: int | None = None
    err_lat_m: float | None = None  # 1-sigma, from GST
    err_lon_m: float | None = None
    err_alt_m: float | None = None
    talker: str | None = None  # of the sentence the position came from (GP, GN, ...)

    @property
    def utc(self) -> datetime | None:
        """The fix time as an aware UTC datetime (millisecond resolution), if known."""
        if self.time_s is None:
            return None
        return datetime.fromtimestamp(round(self.time_s * 1000) / 1000, tz=UTC)

    def iso_time(self) -> str | None:
        """ISO-8601 UTC with milliseconds and a trailing Z, as gpsd prints it."""
        if self.time_s is None:
            return None
        ms = round(self.time_s * 1000)
        stamp = datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{stamp}.{ms % 1000:03d}Z"
