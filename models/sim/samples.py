"""The timed samples a trip streams, in the units the agent's sources deliver."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ImuSample:
    """Accelerometer (m/s^2, specific force incl. gravity) and gyroscope (rad/s), device axes."""

    t: float  # s since trip start
    ax: float
    ay: float
    az: float
    gx: float
    gy: float
    gz: float


@dataclass(frozen=True, slots=True)
class ObdSample:
    """OBD-II PIDs as an ELM327 reports them (PID resolution kept)."""

    t: float
    speed_kmh: float  # PID 0x0D, integer km/h
    rpm: float  # PID 0x0C, 0.25 rpm steps
    coolant_c: float  # PID 0x05, integer deg C
    fuel_pct: float  # PID 0x2F, 100/255 % steps
    throttle_pct: float  # PID 0x11
    load_pct: float  # PID 0x04


@dataclass(frozen=True, slots=True)
class GpsSample:
    """A GNSS fix: WGS-84 degrees, speed m/s, track degrees clockwise from true north."""

    t: float
    lat: float
    lon: float
    speed: float
    track: float


Sample = ImuSample | ObdSample | GpsSample
