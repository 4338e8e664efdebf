"""The header byte every payload starts with (version << 4 | deflate << 3 | type) and the size
limits: the checks that need no decoding, shared by every decoder and by relays (the cloud's
bridge), which stop there and leave the full decode to their consumers."""

from __future__ import annotations

from flota_wire.errors import WireError
from flota_wire.limits import MAX_PAYLOAD_BYTES, SCHEMA_VERSION

TYPE_NAMES = {
    1: "telemetry batch",
    2: "sensor batch",
    3: "event",
    4: "command",
    5: "command ack",
    6: "stored ack",
    7: "device state",
}
DEFLATE_FLAG = 0x08


def check_envelope(payload: bytes, kind: int, min_size: int = 2) -> int:
    """Raise WireError unless ``payload`` is bytes of ``min_size`` .. 256 KiB whose header names
    version 1 and message type ``kind``; return the header byte."""
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise WireError(f"payload must be bytes, not {type(payload).__name__}")
    size = len(payload)
    if size > MAX_PAYLOAD_BYTES:
        raise WireError(f"oversized: {size} bytes > {MAX_PAYLOAD_BYTES}")
    name = TYPE_NAMES[kind]
    if size < min_size:
        raise WireError(f"truncated: {size} bytes, shorter than the smallest {name}")
    head = payload[0]
    if head >> 4 != SCHEMA_VERSION:
        raise WireError(f"unsupported schema version {head >> 4} (this decoder speaks 1)")
    if head & 0x07 != kind:
        article = "an" if name[0] in "aeiou" else "a"
        raise WireError(
            f"not {article} {name}: expected message type {kind}, got type {head & 0x07}"
        )
    return head
