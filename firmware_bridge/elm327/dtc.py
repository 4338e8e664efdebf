"""Diagnostic trouble codes (mode 03): two bytes -> "P0133"."""

from __future__ import annotations

from firmware_bridge.errors import ResponseError
from firmware_bridge.records import Dtc

_LETTERS = "PCBU"


def decode_dtc(hi: int, lo: int) -> str:
    """Bits 15-14 pick P/C/B/U, bits 13-12 the first digit (0-3), then three hex digits."""
    return f"{_LETTERS[hi >> 6]}{(hi >> 4) & 3}{hi & 0xF:X}{lo:02X}"


def decode_mode03(payload: bytes, is_can: bool, ecu: str = "") -> list[Dtc]:
    """An ECU's answer to 03. On CAN it is 43, count, then count pairs; on the older buses each
    message is 43 plus three pairs padded with 00 00."""
    if not payload or payload[0] != 0x43:
        raise ResponseError(f"not an answer to 03: {payload.hex(' ').upper()}")
    if is_can:
        if len(payload) < 2:
            raise ResponseError("mode 03 answer without a count")
        count = payload[1]
        body = payload[2 : 2 + 2 * count]
        if len(body) < 2 * count:
            raise ResponseError(f"mode 03 announces {count} codes, carries {len(body) // 2}")
    else:
        body = payload[1:]
    codes = []
    for i in range(0, len(body) - 1, 2):
        if body[i] == 0 and body[i + 1] == 0:
            continue
        codes.append(Dtc(code=decode_dtc(body[i], body[i + 1]), ecu=ecu))
    return codes
