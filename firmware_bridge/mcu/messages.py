"""Message types of the MCU link and their wire-level contents (raw ticks, scaled integers).

Conversion to canonical records (SI units, UTC) happens in `decoder.to_records`, once the link
knows the tick rate and the clock offset. All integers little-endian.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

PROTOCOL_VERSION = 1
SUPPORTED_VERSIONS = (1, 1)  # (min, max) this implementation speaks


class MsgType(IntEnum):
    HELLO = 0x01
    ACK = 0x02
    NACK = 0x03
    TIME_REQ = 0x04
    TIME_RESP = 0x05
    IMU_BATCH = 0x10
    CAN_FRAMES = 0x11
    INPUTS = 0x12
    HEARTBEAT = 0x13


class NackReason(IntEnum):
    CORRUPT = 1  # CRC/COBS/length error: resend what is outstanding now
    VERSION = 2  # version not negotiated: do not resend
    UNKNOWN_TYPE = 3  # do not resend
    MALFORMED = 4  # payload does not fit its type: do not resend


class Role(IntEnum):
    MCU = 0
    HOST = 1


@dataclass(frozen=True, slots=True)
class Hello:
    proto_min: int
    proto_max: int
    fw_major: int
    fw_minor: int
    fw_patch: int
    device_id: int
    boot_id: int
    tick_hz: int
    role: Role

    @property
    def firmware(self) -> str:
        return f"{self.fw_major}.{self.fw_minor}.{self.fw_patch}"


@dataclass(frozen=True, slots=True)
class Ack:
    pass


@dataclass(frozen=True, slots=True)
class Nack:
    reason: NackReason


@dataclass(frozen=True, slots=True)
class TimeReq:
    host_t1_us: int  # host UTC microseconds when sent; echoed back


@dataclass(frozen=True, slots=True)
class TimeResp:
    host_t1_us: int
    rx_tick: int  # MCU tick when TIME_REQ was received
    tx_tick: int  # MCU tick when TIME_RESP was sent


RawImu = tuple[int, int, int, int, int, int]  # ax ay az gx gy gz, int16


@dataclass(frozen=True, slots=True)
class ImuBatch:
    base_tick: int  # tick of samples[0]
    period_ticks: int  # ticks between samples (tick_hz / 100 at 100 Hz)
    accel_lsb_um_s2: int  # 1e-6 m/s^2 per LSB
    gyro_lsb_urad_s: int  # 1e-6 rad/s per LSB
    samples: tuple[RawImu, ...]


@dataclass(frozen=True, slots=True)
class RawCan:
    tick: int
    can_id: int  # 11 or 29 bits
    extended: bool
    remote: bool
    data: bytes  # 0..8 bytes


@dataclass(frozen=True, slots=True)
class CanFrames:
    frames: tuple[RawCan, ...]


@dataclass(frozen=True, slots=True)
class Inputs:
    tick: int
    mask: int  # bit 0 ignition
    changed: int  # bits that changed since the previous INPUTS


HEARTBEAT_COUNTERS = (
    "rx_crc_errors",
    "rx_overruns",
    "tx_retries",
    "tx_dropped",
    "can_bus_errors",
    "imu_errors",
)


@dataclass(frozen=True, slots=True)
class HeartbeatMsg:
    tick: int
    uptime_s: int
    fw_major: int
    fw_minor: int
    fw_patch: int
    counters: tuple[int, ...]  # in HEARTBEAT_COUNTERS order, uint16 each, saturating


Message = Hello | Ack | Nack | TimeReq | TimeResp | ImuBatch | CanFrames | Inputs | HeartbeatMsg
