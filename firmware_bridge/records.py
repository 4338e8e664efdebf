"""Canonical records every device family decodes into.

Units, stated once for the whole package:
- time: seconds; `time_utc` is a POSIX timestamp in seconds (UTC), `tick` the MCU's raw
  monotonic counter (wraps; converted with the link's time sync).
- acceleration m/s^2, angular rate rad/s, vehicle speed m/s.
- temperature in degrees Celsius (unit "degC"): every consumer of engine data displays it, and
  kelvin offsets only invite sign errors; engine speed in revolutions per minute ("rpm");
  fractions as percent 0..100 ("%").
- CAN signal values keep the unit their DBC file declares (a DBC is the source of truth).
"""

from __future__ import annotations

from dataclasses import dataclass, field

Scalar = float | int | str


@dataclass(frozen=True, slots=True)
class ImuSample:
    """One IMU sample: accelerometer (m/s^2) and gyroscope (rad/s) in the sensor frame."""

    tick: int  # unwrapped MCU ticks
    time_utc: float | None  # from time sync; None until the link has a time estimate
    accel: tuple[float, float, float]
    gyro: tuple[float, float, float]


@dataclass(frozen=True, slots=True)
class CanFrame:
    """One raw CAN (or CAN FD) frame as seen on the bus."""

    arbitration_id: int
    data: bytes
    extended: bool = False
    remote: bool = False
    error: bool = False
    fd: bool = False
    tick: int | None = None  # MCU ticks when it came over the MCU link
    time_utc: float | None = None
    channel: str = ""

    @property
    def dlc(self) -> int:
        return len(self.data)


@dataclass(frozen=True, slots=True)
class SignalValue:
    """A decoded CAN signal: number (or choice name) with the DBC's unit ("" when none)."""

    value: Scalar
    unit: str


@dataclass(frozen=True, slots=True)
class CanSignals:
    """All signals of one decoded CAN message."""

    arbitration_id: int
    message: str
    signals: dict[str, SignalValue]
    time_utc: float | None = None


@dataclass(frozen=True, slots=True)
class ObdReading:
    """One decoded OBD-II mode 01 value; `unit` as in the module docstring."""

    pid: int
    name: str
    value: float
    unit: str
    ecu: str = ""  # the answering ECU's header (e.g. "7E8") when headers are on
    time_utc: float | None = None


@dataclass(frozen=True, slots=True)
class Dtc:
    """A diagnostic trouble code such as P0133 (letter P/C/B/U + 4 hex digits)."""

    code: str
    ecu: str = ""


@dataclass(frozen=True, slots=True)
class DigitalInputs:
    """Ignition and digital inputs: bit i of `mask` is input i; bit 0 is ignition."""

    mask: int
    tick: int
    time_utc: float | None

    @property
    def ignition(self) -> bool:
        return bool(self.mask & 1)

    def input(self, index: int) -> bool:
        return bool(self.mask >> index & 1)


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The MCU's periodic health report."""

    uptime_s: float
    firmware: str
    errors: dict[str, int] = field(default_factory=dict)
    tick: int = 0
    time_utc: float | None = None


@dataclass(frozen=True, slots=True)
class McuHello:
    """What an MCU announced when it (re)booted or answered our HELLO."""

    protocol_min: int
    protocol_max: int
    firmware: str
    device_id: int
    boot_id: int
    tick_hz: int


Record = ImuSample | CanFrame | DigitalInputs | Heartbeat | McuHello | CanSignals | ObdReading | Dtc
