"""The canonical records of wire version 1, in SI units with fixed integer resolutions.

Units are stated once, here, in the field names: ``_us`` microseconds since the Unix epoch
(UTC), ``_e6`` microdegrees (WGS84), ``_dm`` decimetres, ``_cmps`` centimetres per second,
``_cdeg`` centidegrees, ``_c`` hundredths. Fields are integers so that what a device encodes is
exactly what the cloud decodes: the wire never rounds. Use :meth:`Fix.from_si` to build a fix
from floats in SI units (it rounds once, at the edge of the system) and the properties to read
SI floats back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum, StrEnum
from typing import Any

from flota_wire.limits import SCHEMA_VERSION

__all__ = [
    "SCHEMA_VERSION",
    "AckStatus",
    "Command",
    "CommandAck",
    "CommandKind",
    "DeviceState",
    "Event",
    "Fix",
    "SensorBatch",
    "SensorKind",
    "SensorSample",
    "Severity",
    "StoredAck",
    "Stream",
    "TelemetryBatch",
    "VehicleRef",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

JsonValue = Any
"""A JSON value (dict/list/str/int/float/bool/None); checked by the JSON codec."""


@dataclass(frozen=True, slots=True)
class VehicleRef:
    """Who sent (or receives) a message. On the wire it is carried by the MQTT topic, which the
    broker's ACL binds to the device's credentials, so the payload never repeats it."""

    tenant: str
    vehicle: str


def _round(value: float, scale: float) -> int:
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {value!r}")
    return round(value * scale)


def _opt_round(value: float | None, scale: float) -> int | None:
    return None if value is None else _round(value, scale)


@dataclass(frozen=True, slots=True)
class Fix:
    """One GNSS position fix of one vehicle.

    ``seq`` is the vehicle's telemetry sequence number: unique per vehicle, it only grows.
    Optional fields are None when the receiver did not report them.
    """

    seq: int
    time_us: int  # fix time, microseconds since 1970-01-01T00:00:00Z
    lat_e6: int  # latitude, 1e-6 degree, WGS84, north positive
    lon_e6: int  # longitude, 1e-6 degree, WGS84, east positive
    fix_mode: int = 3  # 2 = 2D fix, 3 = 3D fix
    alt_dm: int | None = None  # altitude above mean sea level, 0.1 m
    speed_cmps: int | None = None  # speed over ground, 0.01 m/s
    track_cdeg: int | None = None  # course over ground, true north, 0.01 degree, [0, 36000)
    hdop_c: int | None = None  # horizontal dilution of precision, 0.01
    sats: int | None = None  # satellites used in the solution

    @classmethod
    def from_si(
        cls,
        *,
        seq: int,
        time_s: float | None = None,
        time_us: int | None = None,
        lat: float,
        lon: float,
        fix_mode: int = 3,
        alt_m: float | None = None,
        speed_mps: float | None = None,
        track_deg: float | None = None,
        hdop: float | None = None,
        sats: int | None = None,
    ) -> Fix:
        """Build a fix from SI floats, rounding each to the wire resolution (the only rounding
        anywhere on the path). Give the time either as ``time_us`` or ``time_s``."""
        if time_us is None:
            if time_s is None:
                raise ValueError("give time_us or time_s")
            time_us = _round(time_s, 1e6)
        track = _opt_round(track_deg, 100)
        return cls(
            seq=seq,
            time_us=time_us,
            lat_e6=_round(lat, 1e6),
            lon_e6=_round(lon, 1e6),
            fix_mode=fix_mode,
            alt_dm=_opt_round(alt_m, 10),
            speed_cmps=_opt_round(speed_mps, 100),
            track_cdeg=None if track is None else track % 36000,
            hdop_c=_opt_round(hdop, 100),
            sats=sats,
        )

    @property
    def lat(self) -> float:
        """Latitude in degrees."""
        return self.lat_e6 / 1e6

    @property
    def lon(self) -> float:
        """Longitude in degrees."""
        return self.lon_e6 / 1e6

    @property
    def time_s(self) -> float:
        """Fix time in seconds since the Unix epoch (float; use time_us for exactness)."""
        return self.time_us / 1e6

    @property
    def time(self) -> datetime:
        """Fix time as an aware UTC datetime (microsecond exact)."""
        return _EPOCH + timedelta(microseconds=self.time_us)

    @property
    def alt_m(self) -> float | None:
        return None if self.alt_dm is None else self.alt_dm / 10

    @property
    def speed_mps(self) -> float | None:
        return None if self.speed_cmps is None else self.speed_cmps / 100

    @property
    def track_deg(self) -> float | None:
        return None if self.track_cdeg is None else self.track_cdeg / 100

    @property
    def hdop(self) -> float | None:
        return None if self.hdop_c is None else self.hdop_c / 100


@dataclass(frozen=True, slots=True)
class TelemetryBatch:
    """Fixes of one vehicle, in strictly increasing seq order (one MQTT message)."""

    vehicle: VehicleRef
    fixes: tuple[Fix, ...]
    version: int = SCHEMA_VERSION

    @property
    def seq(self) -> int:
        """The batch's sequence number: the seq of its first fix."""
        return self.fixes[0].seq

    @property
    def last_seq(self) -> int:
        return self.fixes[-1].seq


class SensorKind(IntEnum):
    """What a sensor sample measures; the wire carries the number."""

    IMU_ACCEL = 1  # one axis of acceleration, m/s^2 (name: "x", "y" or "z")
    IMU_GYRO = 2  # one axis of angular rate, rad/s
    OBD = 3  # an OBD-II PID value (name: PID in hex, e.g. "0C"), SI unit in `unit`
    CAN = 4  # a decoded CAN signal (name: signal name), SI unit in `unit`
    DIGITAL = 5  # a digital input, 0/1 (name: e.g. "ignition", "din1")
    ANALOG = 6  # an analog input, e.g. supply voltage in V


@dataclass(frozen=True, slots=True)
class SensorSample:
    """One value of one sensor channel at one time.

    ``value`` is exact on the wire: the encoder sends it as a decimal integer mantissa when that
    round-trips bit for bit, else as an IEEE-754 double.
    """

    seq: int  # the vehicle's sensor sequence number (own counter, only grows)
    time_us: int  # microseconds since the Unix epoch, UTC
    kind: SensorKind
    source: str  # the device or bus: "imu0", "obd", "can0", "io"
    name: str  # axis, PID, signal or input name
    value: float
    unit: str  # SI unit symbol: "m/s2", "rad/s", "m/s", "K", "V", "1/s", "" for counts/booleans


@dataclass(frozen=True, slots=True)
class SensorBatch:
    """Sensor samples of one vehicle, in strictly increasing seq order."""

    vehicle: VehicleRef
    samples: tuple[SensorSample, ...]
    version: int = SCHEMA_VERSION

    @property
    def seq(self) -> int:
        return self.samples[0].seq


class Severity(IntEnum):
    INFO = 0
    WARNING = 1
    CRITICAL = 2


class EventKind(StrEnum):
    """Event kinds known to v1. The wire accepts any ``[a-z0-9_]{1,32}`` kind so that a device
    can report a kind the cloud does not know yet: events are never dropped."""

    HARSH_BRAKE = "harsh_brake"
    HARSH_ACCEL = "harsh_accel"
    HARSH_TURN = "harsh_turn"
    CRASH = "crash"
    SPEEDING = "speeding"
    IDLING = "idling"
    IGNITION_ON = "ignition_on"
    IGNITION_OFF = "ignition_off"
    GNSS_LOST = "gnss_lost"
    GNSS_RESTORED = "gnss_restored"
    MODEL_ALERT = "model_alert"
    OUTBOX_DROP = "outbox_drop"
    TAMPER = "tamper"
    STOP_ARRIVED = "stop_arrived"  # at a stop of the route plan (details: plan_id, stop_id, ...)
    STOP_COMPLETED = "stop_completed"  # left it after serving it (details add dwell_s)


@dataclass(frozen=True, slots=True)
class Event:
    """Something the vehicle detected. Events are never dropped by the agent's outbox."""

    seq: int  # the vehicle's event sequence number (own counter, only grows)
    time_us: int  # when it happened, microseconds since the Unix epoch, UTC
    kind: str  # an EventKind value, or a newer kind matching [a-z0-9_]{1,32}
    severity: Severity = Severity.INFO
    lat_e6: int | None = None  # where, 1e-6 degree (both or neither)
    lon_e6: int | None = None
    details: tuple[tuple[str, str | int | float | bool | None], ...] = ()
    # details: sorted (key, scalar) pairs, e.g. (("peak_mps2", 7.9),); kept a tuple so the
    # record stays hashable and immutable; `details_dict` gives a dict.

    @property
    def details_dict(self) -> dict[str, str | int | float | bool | None]:
        return dict(self.details)


class CommandKind(StrEnum):
    ROUTE_PLAN = "route_plan"
    CONFIG = "config"
    MODEL_UPDATE = "model_update"


@dataclass(frozen=True, slots=True)
class Command:
    """An instruction from the cloud to one vehicle (downlink)."""

    seq: int  # the vehicle's downlink sequence number (cloud side, only grows)
    id: str  # stable id of the command, [A-Za-z0-9_-]{1,64}
    version: int  # revision of this command id; a higher version supersedes a lower one
    kind: CommandKind
    payload: JsonValue  # kind-specific JSON object
    issued_at_us: int  # microseconds since the Unix epoch, UTC
    expires_at_us: int | None = None  # the device rejects it after this time


class AckStatus(StrEnum):
    ACCEPTED = "accepted"  # received and valid, not yet in effect
    APPLIED = "applied"  # in effect
    REJECTED = "rejected"  # refused (expired, invalid, superseded); see reason
    FAILED = "failed"  # tried and failed; see reason


@dataclass(frozen=True, slots=True)
class CommandAck:
    """The device's answer to a command (uplink)."""

    seq: int  # the vehicle's command-ack sequence number (own counter, only grows)
    command_id: str
    command_version: int
    status: AckStatus
    time_us: int
    reason: str | None = None


class Stream(StrEnum):
    """The uplink streams whose rows the device keeps until the cloud has stored them."""

    TELEMETRY = "telemetry"
    SENSORS = "sensors"
    EVENTS = "events"
    ACKS = "acks"


@dataclass(frozen=True, slots=True)
class StoredAck:
    """End-to-end acknowledgement (downlink): the cloud has durably committed these seqs of
    this stream. The device deletes exactly the rows whose seq lies in one of ``ranges``
    (inclusive ``(first, last)`` pairs) and infers nothing about other seqs."""

    seq: int  # the vehicle's downlink sequence number (cloud side, only grows)
    stream: Stream
    ranges: tuple[tuple[int, int], ...]
    time_us: int
    cloud: str | None = None
    """The id of the cloud that stored the rows (``[A-Za-z0-9_-]{1,64}``). A device configured
    with a cloud id acts only on acks naming it, so another cloud's bridge on a shared broker
    cannot make it forget rows; ``None`` (absent on the wire): an ack from before the field."""

    def covers(self, seq: int) -> bool:
        return any(first <= seq <= last for first, last in self.ranges)

    @property
    def up_to(self) -> int:
        """The highest seq stored by this acknowledgement."""
        return max(last for _, last in self.ranges)


@dataclass(frozen=True, slots=True)
class DeviceState:
    """Retained on the state topic: "online" on connect, "offline" as the last will."""

    seq: int  # the device's connection counter: only grows, orders state messages
    online: bool
    time_us: int  # when the device composed it (for the will: connect time)
    agent_version: str | None = None
