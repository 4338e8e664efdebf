"""One decoded sentence -> an `Observation`: typed, range-checked values in SI units.

An observation says what one sentence contributes to an epoch; the assembler merges them.
Validity flags follow the sentence's own status fields: RMC/GLL status and mode indicator,
RMC navigation status (NMEA 4.1), GGA quality, GNS per-system mode, GSA fix type. Manual
input and simulator fixes are not measurements and never count as valid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from edge_agent.gps import fields as f
from edge_agent.gps.sentence import RawSentence

_INVALID_MODES = frozenset("NSM")  # not valid, simulator, manual input
_SIMULATED_QUALITY = frozenset({7, 8})  # GGA manual input, simulator


@dataclass(slots=True)
class Observation:
    address: str
    kind: str
    talker: str
    tod_ms: int | None = None
    date: date | None = None
    lat: float | None = None
    lon: float | None = None
    digits: int = 0  # decimals of the latitude minutes: the position's precision
    valid: bool | None = None  # the sentence's own statement about its fix
    quality: int | None = None
    gsa_mode: int | None = None
    gsa_sats: tuple[str, ...] = ()
    alt_m: float | None = None
    geoid_sep_m: float | None = None
    speed_mps: float | None = None
    track_deg: float | None = None
    hdop: float | None = None
    pdop: float | None = None
    vdop: float | None = None
    sats: int | None = None
    err_lat_m: float | None = None
    err_lon_m: float | None = None
    err_alt_m: float | None = None
    issues: list[str] = field(default_factory=list)


def observe(raw: RawSentence) -> Observation:
    """Convert a decoded sentence; raises FieldError when a key field (time, date, position)
    is malformed, since the sentence then cannot be placed or trusted."""
    obs = Observation(address=raw.address, kind=raw.kind, talker=raw.talker)
    if raw.kind in ("GGA", "RMC", "GNS", "GLL", "ZDA", "GST"):
        obs.tod_ms = f.time_of_day_ms(raw.get("timestamp"))
    _DECODERS[raw.kind](raw, obs)
    return obs


def _position(raw: RawSentence, obs: Observation) -> None:
    lat_text = raw.get("lat")
    lat = f.angle(lat_text, raw.get("lat_dir"), "N", "S", 90.0)
    lon = f.angle(raw.get("lon"), raw.get("lon_dir"), "E", "W", 180.0)
    if lat is None or lon is None:
        return
    if lat == 0.0 and lon == 0.0:
        obs.issues.append("zero_position")
        return
    obs.lat, obs.lon, obs.digits = lat, lon, f.decimals(lat_text)


def _speed(knots: float | None, obs: Observation, factor: float = f.KNOT_MPS) -> float | None:
    if knots is None:
        return None
    if knots < 0:
        obs.issues.append("bad_field")
        return None
    return knots * factor


def _track(degrees: float | None, obs: Observation) -> float | None:
    if degrees is None:
        return None
    if not 0.0 <= degrees <= 360.0:
        obs.issues.append("bad_field")
        return None
    return degrees % 360.0


def _mode_ok(indicator: str) -> bool | None:
    indicator = indicator.strip().upper()
    if not indicator:
        return None
    return not set(indicator) <= _INVALID_MODES


def _gga(raw: RawSentence, obs: Observation) -> None:
    _position(raw, obs)
    obs.quality = f.optional_int(raw.get("gps_qual"), obs.issues)
    if obs.quality is not None:
        obs.valid = obs.quality > 0 and obs.quality not in _SIMULATED_QUALITY
    obs.sats = f.optional_int(raw.get("num_sats"), obs.issues)
    obs.hdop = f.optional(raw.get("horizontal_dil"), obs.issues)
    obs.alt_m = f.optional(raw.get("altitude"), obs.issues)
    obs.geoid_sep_m = f.optional(raw.get("geo_sep"), obs.issues)


def _rmc(raw: RawSentence, obs: Observation) -> None:
    _position(raw, obs)
    obs.date = f.rmc_date(raw.get("datestamp"))
    status = raw.get("status").strip().upper()
    valid = status == "A"
    if _mode_ok(raw.get("mode_indicator")) is False:
        valid = False
    if raw.get("nav_status").strip().upper() == "V":  # NMEA 4.1: equipment says not valid
        valid = False
    obs.valid = valid if status else None
    obs.speed_mps = _speed(f.optional(raw.get("spd_over_grnd"), obs.issues), obs)
    obs.track_deg = _track(f.optional(raw.get("true_course"), obs.issues), obs)


def _gns(raw: RawSentence, obs: Observation) -> None:
    _position(raw, obs)
    obs.valid = _mode_ok(raw.get("mode_indicator"))
    obs.sats = f.optional_int(raw.get("num_sats"), obs.issues)
    obs.hdop = f.optional(raw.get("hdop"), obs.issues)
    obs.alt_m = f.optional(raw.get("altitude"), obs.issues)
    obs.geoid_sep_m = f.optional(raw.get("geo_sep"), obs.issues)


def _gll(raw: RawSentence, obs: Observation) -> None:
    _position(raw, obs)
    status = raw.get("status").strip().upper()
    valid = status == "A" and _mode_ok(raw.get("faa_mode")) is not False
    obs.valid = valid if status else None


def _gsa(raw: RawSentence, obs: Observation) -> None:
    mode = f.optional_int(raw.get("mode_fix_type"), obs.issues)
    obs.gsa_mode = mode if mode in (1, 2, 3) else None
    system = raw.extra[0].strip() if raw.extra else raw.talker
    ids = (raw.fields.get(f"sv_id{n:02d}", "").strip() for n in range(1, 13))
    obs.gsa_sats = tuple(f"{system}:{sv}" for sv in ids if sv)
    obs.pdop = f.optional(raw.get("pdop"), obs.issues)
    obs.hdop = f.optional(raw.get("hdop"), obs.issues)
    obs.vdop = f.optional(raw.get("vdop"), obs.issues)


def _vtg(raw: RawSentence, obs: Observation) -> None:
    if _mode_ok(raw.get("faa_mode")) is False:
        return
    obs.track_deg = _track(f.optional(raw.get("true_track"), obs.issues), obs)
    obs.speed_mps = _speed(f.optional(raw.get("spd_over_grnd_kts"), obs.issues), obs)
    if obs.speed_mps is None:
        kmh = f.optional(raw.get("spd_over_grnd_kmph"), obs.issues)
        obs.speed_mps = _speed(kmh, obs, f.KMH_MPS)


def _zda(raw: RawSentence, obs: Observation) -> None:
    obs.date = f.zda_date(raw.get("day"), raw.get("month"), raw.get("year"))


def _gst(raw: RawSentence, obs: Observation) -> None:
    obs.err_lat_m = f.optional(raw.get("std_dev_latitude"), obs.issues)
    obs.err_lon_m = f.optional(raw.get("std_dev_longitude"), obs.issues)
    obs.err_alt_m = f.optional(raw.get("std_dev_altitude"), obs.issues)


_DECODERS = {
    "GGA": _gga,
    "RMC": _rmc,
    "GNS": _gns,
    "GLL": _gll,
    "GSA": _gsa,
    "VTG": _vtg,
    "ZDA": _zda,
    "GST": _gst,
}
