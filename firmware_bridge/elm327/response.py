"""ELM327 answer text -> per-ECU payload bytes (headers split off, ISO-TP reassembled).

The adapter prints one line per bus frame. With headers on (ATH1) on CAN each line is the
11-bit (3 hex digits) or 29-bit (8 hex digits) id, the ISO 15765-2 PCI byte and data; on the
older buses (J1850, ISO 9141, KWP) three header bytes, data and a checksum byte. With headers
off on CAN, a multi-frame answer is a total-length line ("014") and numbered lines ("0: ...").
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass

from firmware_bridge.errors import (
    BusError,
    Elm327Error,
    NoDataError,
    ResponseError,
    UnknownCommandError,
)

_HEX = re.compile(r"^[0-9A-F]+$")
_NUMBERED = re.compile(r"^([0-9A-F]):([0-9A-F]*)$")
_BUS_ERRORS = (
    "UNABLE TO CONNECT",
    "CAN ERROR",
    "BUS ERROR",
    "BUS BUSY",
    "FB ERROR",
    "DATA ERROR",
    "<DATA ERROR",
    "BUFFER FULL",
    "STOPPED",
    "LV RESET",
    "ACT ALERT",
    "ERR",
)
INFO_LINES = ("SEARCHING...", "BUS INIT: ...OK", "BUS INIT: OK", "OK")


@dataclass(frozen=True, slots=True)
class BusProtocol:
    """What ATDPN reported: number 1-9 (A-C are user protocols), whether it is CAN, id size."""

    number: int
    name: str
    auto: bool = False

    @property
    def is_can(self) -> bool:
        return self.number >= 6

    @property
    def header_chars(self) -> int:
        if not self.is_can:
            return 6
        return 8 if self.number in (7, 9) else 3


PROTOCOL_NAMES = {
    1: "SAE J1850 PWM",
    2: "SAE J1850 VPW",
    3: "ISO 9141-2",
    4: "ISO 14230-4 KWP (5 baud init)",
    5: "ISO 14230-4 KWP (fast init)",
    6: "ISO 15765-4 CAN (11 bit, 500 kbaud)",
    7: "ISO 15765-4 CAN (29 bit, 500 kbaud)",
    8: "ISO 15765-4 CAN (11 bit, 250 kbaud)",
    9: "ISO 15765-4 CAN (29 bit, 250 kbaud)",
    10: "SAE J1939 CAN (29 bit, 250 kbaud)",
}


def parse_dpn(text: str) -> BusProtocol:
    """Parse an ATDPN answer such as "A6" (auto, found 6) or "7"."""
    t = text.strip().upper()
    auto = t.startswith("A")
    digits = t[1:] if auto else t
    try:
        number = int(digits, 16)
    except ValueError as err:
        raise ResponseError(f"ATDPN answer {text!r}") from err
    if number == 0:
        raise BusError("no protocol found yet")
    return BusProtocol(number, PROTOCOL_NAMES.get(number, f"protocol {number:X}"), auto)


def clean_lines(text: str, command: str = "") -> list[str]:
    """Lines of an answer without echo, prompt, NULs, blank and progress lines; raises the
    matching Elm327Error for an error answer."""
    lines = []
    echo = command.replace(" ", "").upper()
    for raw in re.split(r"[\r\n]+", text.replace("\x00", "").replace(">", "")):
        line = raw.strip().upper()
        if not line or (echo and line.replace(" ", "") == echo):
            continue
        if line.startswith("SEARCHING"):
            line = line.removeprefix("SEARCHING...").strip()
            if not line:
                continue
        if line in INFO_LINES:
            continue
        if line == "NO DATA":
            raise NoDataError(f"{command}: NO DATA")
        if line == "?":
            raise UnknownCommandError(f"{command}: ?")
        if line.startswith("BUS INIT") and "ERROR" in line:
            raise BusError(f"{command}: {line}")
        if any(line.startswith(e) for e in _BUS_ERRORS):
            raise BusError(f"{command}: {line}")
        lines.append(line)
    return lines


def _hex_bytes(s: str, line: str) -> bytes:
    if len(s) % 2 or not _HEX.match(s or "0"):
        raise ResponseError(f"not hex data: {line!r}")
    return bytes.fromhex(s)


def payloads(lines: list[str], protocol: BusProtocol, headers: bool) -> dict[str, bytes]:
    """Per answering ECU (header text, "" with headers off), its reassembled payload.

    Non-CAN answers with several lines from one ECU are concatenated per line payload; callers
    that need per-message structure (mode 03 on old buses) use `messages()`.
    """
    return {ecu: b"".join(msgs) for ecu, msgs in messages(lines, protocol, headers).items()}


def messages(lines: list[str], protocol: BusProtocol, headers: bool) -> dict[str, list[bytes]]:
    """Per ECU, the list of complete messages (ISO-TP reassembled on CAN)."""
    compact = [ln.replace(" ", "") for ln in lines]
    if not headers:
        return {"": _headerless(compact, protocol)}
    frames: OrderedDict[str, list[bytes]] = OrderedDict()
    hc = protocol.header_chars
    for line in compact:
        if len(line) <= hc:
            raise ResponseError(f"line shorter than its header: {line!r}")
        ecu, data = line[:hc], _hex_bytes(line[hc:], line)
        if not _HEX.match(ecu):
            raise ResponseError(f"bad header in {line!r}")
        frames.setdefault(ecu, []).append(data)
    if not protocol.is_can:
        return OrderedDict((ecu, [f[:-1] for f in fs]) for ecu, fs in frames.items())
    return OrderedDict((ecu, _isotp(fs, ecu)) for ecu, fs in frames.items())


def _isotp(frames: list[bytes], ecu: str) -> list[bytes]:
    """ISO 15765-2: single (0x0L), first (0x1LLL), consecutive (0x2N), flow control (0x3)."""
    out: list[bytes] = []
    buf = bytearray()
    want = 0
    expect = 0
    for f in frames:
        if not f:
            raise ResponseError(f"{ecu}: empty frame")
        kind = f[0] >> 4
        if kind == 0:
            n = f[0] & 0xF
            if n == 0 or len(f) < 1 + n:
                raise ResponseError(f"{ecu}: single frame of {n} bytes in {len(f) - 1}")
            out.append(bytes(f[1 : 1 + n]))
        elif kind == 1:
            if len(f) < 2:
                raise ResponseError(f"{ecu}: first frame without length")
            want = ((f[0] & 0xF) << 8) | f[1]
            buf = bytearray(f[2:])
            expect = 1
        elif kind == 2:
            if not want:
                raise ResponseError(f"{ecu}: consecutive frame without a first frame")
            if f[0] & 0xF != expect:
                raise ResponseError(f"{ecu}: consecutive frame {f[0] & 0xF}, expected {expect}")
            buf += f[1:]
            expect = (expect + 1) & 0xF
            if len(buf) >= want:
                out.append(bytes(buf[:want]))
                want = 0
        elif kind != 3:
            raise ResponseError(f"{ecu}: PCI {f[0]:02X}")
    if want:
        raise ResponseError(f"{ecu}: multi-frame answer has {len(buf)} of {want} bytes")
    return out


def _headerless(lines: list[str], protocol: BusProtocol) -> list[bytes]:
    if protocol.is_can and lines and len(lines[0]) == 3 and _HEX.match(lines[0]):
        total = int(lines[0], 16)
        buf = bytearray()
        for line in lines[1:]:
            m = _NUMBERED.match(line)
            if not m:
                raise ResponseError(f"expected a numbered line, got {line!r}")
            buf += _hex_bytes(m.group(2), line)
        if len(buf) < total:
            raise ResponseError(f"multi-frame answer has {len(buf)} of {total} bytes")
        return [bytes(buf[:total])]
    return [_hex_bytes(line, line) for line in lines]


__all__ = ["BusProtocol", "Elm327Error", "clean_lines", "messages", "parse_dpn", "payloads"]
