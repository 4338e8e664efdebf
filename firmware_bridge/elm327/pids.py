"""Mode 01 PIDs we poll, with their SAE J1979 formulas converted to our units (records.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from firmware_bridge.errors import ResponseError
from firmware_bridge.records import ObdReading


@dataclass(frozen=True, slots=True)
class Pid:
    pid: int
    name: str
    size: int  # data bytes after mode and PID
    unit: str
    decode: Callable[[bytes], float]


def _pct(d: bytes) -> float:
    return d[0] * 100.0 / 255.0


PIDS: dict[int, Pid] = {
    p.pid: p
    for p in (
        Pid(0x04, "engine_load", 1, "%", _pct),
        Pid(0x05, "coolant_temp", 1, "degC", lambda d: float(d[0] - 40)),
        Pid(0x0C, "rpm", 2, "rpm", lambda d: (d[0] * 256 + d[1]) / 4.0),
        Pid(0x0D, "speed", 1, "m/s", lambda d: d[0] / 3.6),
        Pid(0x11, "throttle", 1, "%", _pct),
        Pid(0x2F, "fuel_level", 1, "%", _pct),
    )
}
BY_NAME = {p.name: p for p in PIDS.values()}
SUPPORT_PIDS = tuple(range(0x00, 0xE1, 0x20))  # 00, 20, ... E0: bitmaps of the next 32


def decode_reading(pid: int, payload: bytes, ecu: str = "") -> ObdReading:
    """`payload` is an ECU's answer starting with 0x41 and the PID."""
    spec = PIDS.get(pid)
    if spec is None:
        raise ResponseError(f"PID {pid:02X} has no decoder")
    if len(payload) < 2 + spec.size or payload[0] != 0x41 or payload[1] != pid:
        raise ResponseError(f"not an answer to 01{pid:02X}: {payload.hex(' ').upper()}")
    value = spec.decode(payload[2 : 2 + spec.size])
    return ObdReading(pid=pid, name=spec.name, value=value, unit=spec.unit, ecu=ecu)


def decode_support(base: int, payload: bytes) -> set[int]:
    """PIDs flagged in a 01 00/20/40... bitmap: bit 7 of byte A is PID base+1."""
    if len(payload) < 6 or payload[0] != 0x41 or payload[1] != base:
        raise ResponseError(f"not an answer to 01{base:02X}: {payload.hex(' ').upper()}")
    bits = int.from_bytes(payload[2:6], "big")
    return {base + i + 1 for i in range(32) if bits >> (31 - i) & 1}
