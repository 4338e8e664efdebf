"""Frame layout of the MCU link and the byte-stream framer.

    offset size  field
    0      1     version   protocol version of this frame (1)
    1      1     type      message type (see messages.MsgType)
    2      1     flags     bit 0 ACK_REQ: the receiver must answer ACK/NACK; others 0
    3      2     seq       sequence number, uint16 little-endian, per sender, wraps
    5      1     length    payload length L, 0..MAX_PAYLOAD
    6      L     payload
    6+L    2     crc       CRC-16/CCITT-FALSE over bytes 0..5+L, big-endian (MSB first), so
                           the CRC over the whole frame including it is 0

The frame is COBS-encoded and followed by one 0x00 delimiter.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from firmware_bridge.errors import FrameError
from firmware_bridge.mcu import cobs
from firmware_bridge.mcu.crc import crc16

HEADER = struct.Struct("<BBBHB")
HEADER_SIZE = HEADER.size  # 6
CRC_SIZE = 2
MAX_PAYLOAD = 240
MAX_RAW = HEADER_SIZE + MAX_PAYLOAD + CRC_SIZE  # 248
MAX_ENCODED = MAX_RAW + 2  # COBS adds at most one byte per 254 (+1 slack)
FLAG_ACK_REQ = 0x01


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame with a good CRC; version and type are checked by the link, not here."""

    version: int
    type: int
    flags: int
    seq: int
    payload: bytes

    @property
    def ack_req(self) -> bool:
        return bool(self.flags & FLAG_ACK_REQ)


def pack(frame: Frame) -> bytes:
    """Header + payload + CRC, not yet COBS-encoded."""
    if len(frame.payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(frame.payload)} bytes exceeds {MAX_PAYLOAD}")
    body = (
        HEADER.pack(frame.version, frame.type, frame.flags, frame.seq & 0xFFFF, len(frame.payload))
        + frame.payload
    )
    return body + crc16(body).to_bytes(2, "big")


def encode(frame: Frame) -> bytes:
    """The bytes to write: COBS(pack(frame)) + 0x00."""
    return cobs.encode(pack(frame)) + b"\x00"


def unpack(raw: bytes) -> Frame:
    """Parse a COBS-decoded frame; raise FrameError with the counter's reason."""
    n = len(raw)
    if n < HEADER_SIZE + CRC_SIZE:
        raise FrameError("truncated", f"{n} bytes, header and CRC need {HEADER_SIZE + CRC_SIZE}")
    version, mtype, flags, seq, length = HEADER.unpack_from(raw)
    want = HEADER_SIZE + length + CRC_SIZE
    if n < want:
        raise FrameError("truncated", f"{n} bytes, header declares {want}")
    if n > want:
        raise FrameError("length_error", f"{n} bytes, header declares {want}")
    if crc16(raw) != 0:
        raise FrameError("crc_error", f"type {mtype} seq {seq}")
    return Frame(version, mtype, flags, seq, bytes(raw[HEADER_SIZE : HEADER_SIZE + length]))


def decode(encoded: bytes) -> Frame:
    """COBS-decode and unpack one delimited chunk (delimiter removed)."""
    return unpack(cobs.decode(encoded))


class Framer:
    """Splits a byte stream at 0x00 delimiters; yields a Frame or the FrameError for each chunk.

    Empty chunks (idle delimiters, the 0x00 an MCU sends after boot) are skipped silently. A
    chunk longer than MAX_ENCODED is reported once as "oversize" and skipped to the next 0x00.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._discarding = False

    def reset(self) -> None:
        """Forget a partial frame (the port was reopened)."""
        self._buf.clear()
        self._discarding = False

    def feed(self, data: bytes) -> Iterator[Frame | FrameError]:
        start = 0
        while True:
            end = data.find(b"\x00", start)
            if end < 0:
                self._append(data[start:])
                if self._discarding or len(self._buf) <= MAX_ENCODED:
                    return
                self._buf.clear()
                self._discarding = True
                yield FrameError("oversize", f"no delimiter within {MAX_ENCODED} bytes")
                return
            self._append(data[start:end])
            start = end + 1
            chunk = bytes(self._buf)
            discarding = self._discarding
            self._buf.clear()
            self._discarding = False
            if discarding or not chunk:
                continue
            if len(chunk) > MAX_ENCODED:
                yield FrameError("oversize", f"{len(chunk)} bytes before the delimiter")
                continue
            try:
                yield decode(chunk)
            except FrameError as err:
                yield err

    def _append(self, data: bytes) -> None:
        if not self._discarding:
            self._buf += data
