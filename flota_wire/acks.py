"""Convenience for the end-to-end acknowledgement ("stored up to seq N"), both sides."""

from __future__ import annotations

from collections.abc import Iterable

from flota_wire.jsoncodec import decode_stored_ack
from flota_wire.jsoncodec import encode_stored_ack as _encode
from flota_wire.schema import StoredAck, Stream

__all__ = ["accepts_stored_ack", "decode_stored_ack", "encode_stored_ack", "merge_ranges"]


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Sorted, with overlapping or adjacent inclusive ranges joined."""
    out: list[list[int]] = []
    for first, last in sorted(ranges):
        if out and first <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], last)
        else:
            out.append([first, last])
    return tuple((a, b) for a, b in out)


def encode_stored_ack(
    ranges: Iterable[tuple[int, int]] | StoredAck,
    *,
    time_us: int | None = None,
    stream: Stream | str = Stream.TELEMETRY,
    seq: int | None = None,
    cloud: str | None = None,
) -> bytes:
    """Payload for ``down/stored``: these inclusive seq ranges of ``stream`` are committed.

    ``seq`` (the downlink counter, only grows per vehicle) defaults to ``time_us``: a stateless
    cloud process may use its clock, since the device only logs it. ``cloud`` names the cloud
    that committed them (devices configured with a cloud id ignore acks of other clouds).
    """
    if isinstance(ranges, StoredAck):
        return _encode(ranges)
    if time_us is None:
        raise ValueError("give time_us")
    return _encode(
        StoredAck(
            seq=time_us if seq is None else seq,
            stream=Stream(stream),
            ranges=merge_ranges(ranges),
            time_us=time_us,
            cloud=cloud,
        )
    )


def accepts_stored_ack(ack: StoredAck, cloud: str | None) -> bool:
    """The device-side rule: a device configured with ``cloud`` acts only on acks naming that
    cloud (an ack without a cloud id is ignored too); a device without one accepts any ack."""
    return cloud is None or ack.cloud == cloud
