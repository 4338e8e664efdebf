"""What the bridge checks in a payload before it goes to Kafka: it must decode under the
contract. Returns a quarantine reason, or None for a good payload."""

from __future__ import annotations

from flota_wire import topics as wt
from flota_wire.errors import WireError
from flota_wire.telemetry import decode_telemetry_columns


def check_payload(addr: wt.TopicAddress, payload: bytes) -> str | None:
    """Decode the payload of a telemetry message fully; other channels pass through to their
    consumers, which decode them."""
    if addr.channel is wt.Channel.TELEMETRY:
        try:
            decode_telemetry_columns(payload)
        except WireError:
            return "decode"
    return None
