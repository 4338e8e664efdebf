"""Consistent Overhead Byte Stuffing (Cheshire and Baker, 1999).

An encoded frame holds no 0x00 byte, so 0x00 delimits frames on the wire and a receiver that
joins mid-stream or loses bytes resynchronises at the next 0x00. Overhead: one byte per 254.
"""

from __future__ import annotations

from firmware_bridge.errors import FrameError


def encode(data: bytes | bytearray) -> bytes:
    """COBS-encode `data` (without the trailing 0x00 delimiter)."""
    out = bytearray()
    block = bytearray()
    for byte in data:
        if byte == 0:
            out.append(len(block) + 1)
            out += block
            block.clear()
        else:
            block.append(byte)
            if len(block) == 254:
                out.append(255)
                out += block
                block.clear()
    out.append(len(block) + 1)
    out += block
    return bytes(out)


def decode(data: bytes | bytearray) -> bytes:
    """Decode one COBS frame (delimiter removed).

    Raises FrameError("cobs_error") when a block runs past the end of the frame (a frame cut
    short, or a corrupted code byte) or the frame holds a 0x00.
    """
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        code = data[i]
        if code == 0:
            raise FrameError("cobs_error", f"zero byte at offset {i}")
        end = i + code
        if end > n:
            raise FrameError("cobs_error", f"block at {i} needs {code - 1} bytes, {n - i - 1} left")
        block = data[i + 1 : end]
        if 0 in block:
            raise FrameError("cobs_error", "zero byte inside a block")
        out += block
        i = end
        if code != 255 and i < n:
            out.append(0)
    return bytes(out)
