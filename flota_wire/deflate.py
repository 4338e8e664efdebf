"""Raw deflate (RFC 1951, no zlib header) for payloads, with the contract's size limit.

Shared by the telemetry and the JSON codecs: a payload is compressed only when that makes it
smaller, and inflating never produces more than MAX_PAYLOAD_BYTES.
"""

from __future__ import annotations

import zlib

from flota_wire.errors import WireError
from flota_wire.limits import MAX_PAYLOAD_BYTES


def deflate_if_smaller(body: bytes) -> bytes | None:
    """The raw-deflated body, or None when deflating does not make it smaller."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    packed = c.compress(body) + c.flush()
    return packed if len(packed) < len(body) else None


def inflate(body: bytes) -> bytes:
    """Inflate a raw-deflate stream; anything wrong (corrupt, truncated, trailing bytes,
    beyond the size limit) raises WireError."""
    d = zlib.decompressobj(-15)
    try:
        out = d.decompress(body, MAX_PAYLOAD_BYTES)
    except zlib.error as err:
        raise WireError(f"corrupt deflate stream: {err}") from err
    if d.unconsumed_tail:
        raise WireError(f"oversized: inflates beyond {MAX_PAYLOAD_BYTES} bytes")
    if not d.eof:
        raise WireError("truncated deflate stream")
    if d.unused_data:
        raise WireError("trailing garbage after the deflate stream")
    return out
