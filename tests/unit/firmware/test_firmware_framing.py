"""COBS, CRC-16 and frame layout of the MCU link."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge.errors import FrameError
from firmware_bridge.mcu import cobs
from firmware_bridge.mcu import frame as fr
from firmware_bridge.mcu.crc import CHECK, crc16


def test_crc16_check_value() -> None:
    assert crc16(b"123456789") == CHECK == 0x29B1


def test_crc16_streaming_equals_one_shot() -> None:
    assert crc16(b"56789", crc16(b"1234")) == 0x29B1


def test_crc16_residue_of_frame_with_its_crc_is_zero() -> None:
    body = b"hello world"
    assert crc16(body + crc16(body).to_bytes(2, "big")) == 0


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        (b"", b"\x01"),
        (b"\x00", b"\x01\x01"),
        (b"\x00\x00", b"\x01\x01\x01"),
        (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
        (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
        (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
        (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255)) + b"\x01"),
    ],
)
def test_cobs_known_vectors(raw: bytes, encoded: bytes) -> None:
    assert cobs.encode(raw) == encoded
    assert cobs.decode(encoded) == raw


@given(st.binary(max_size=600))
def test_cobs_round_trip_has_no_zero(data: bytes) -> None:
    enc = cobs.encode(data)
    assert 0 not in enc
    assert len(enc) <= len(data) + 1 + len(data) // 254
    assert cobs.decode(enc) == data


@given(
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 0xFFFF),
    st.binary(max_size=fr.MAX_PAYLOAD),
)
def test_frame_round_trip(version: int, mtype: int, seq: int, payload: bytes) -> None:
    f = fr.Frame(version, mtype, fr.FLAG_ACK_REQ, seq, payload)
    wire = fr.encode(f)
    assert wire.endswith(b"\x00")
    assert wire.count(0) == 1
    assert fr.decode(wire[:-1]) == f


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_garbage_only_raises_frame_error(data: bytes) -> None:
    framer = fr.Framer()
    for item in framer.feed(data + b"\x00"):
        assert isinstance(item, fr.Frame | FrameError)


@settings(max_examples=300)
@given(st.binary(min_size=1, max_size=120), st.data())
def test_any_single_bit_flip_is_detected(payload: bytes, data: st.DataObject) -> None:
    raw = bytearray(fr.pack(fr.Frame(1, 0x10, 1, 7, payload)))
    pos = data.draw(st.integers(0, len(raw) - 1))
    raw[pos] ^= 1 << data.draw(st.integers(0, 7))
    with pytest.raises(FrameError) as err:
        fr.unpack(bytes(raw))
    assert err.value.reason in {"crc_error", "truncated", "length_error"}


def _frame_bytes(payload: bytes) -> bytes:
    return fr.encode(fr.Frame(1, 0x10, 1, 3, payload))


def test_cut_inside_a_cobs_block_is_cobs_error() -> None:
    wire = _frame_bytes(b"\x01\x02\x03\x04\x05\x06")
    items = list(fr.Framer().feed(wire[:3] + b"\x00"))
    assert len(items) == 1
    assert isinstance(items[0], FrameError)
    assert items[0].reason == "cobs_error"


def test_cut_at_a_block_boundary_is_truncated() -> None:
    # Header 01 10 01 03 00 06 encodes as blocks; cutting after the block ending at the
    # first zero (seq high byte) leaves valid COBS that is shorter than the header says.
    wire = _frame_bytes(b"\x01\x02\x03\x04\x05\x06")
    first_block = wire[0]
    items = list(fr.Framer().feed(wire[:first_block] + b"\x00"))
    assert isinstance(items[0], FrameError)
    assert items[0].reason == "truncated"


def test_framer_splits_joins_and_skips_idle_delimiters() -> None:
    a = fr.Frame(1, 0x13, 0, 1, b"abc")
    b = fr.Frame(1, 0x13, 0, 2, b"\x00\x00")
    stream = b"\x00\x00" + fr.encode(a) + fr.encode(b) + b"\x00"
    framer = fr.Framer()
    got = []
    for i in range(0, len(stream), 3):  # arrives in pieces
        got.extend(framer.feed(stream[i : i + 3]))
    assert got == [a, b]


def test_framer_reports_oversize_once_and_resynchronises() -> None:
    framer = fr.Framer()
    good = fr.Frame(1, 0x13, 0, 9, b"ok")
    items = list(framer.feed(b"\x01" * 300))
    items += list(framer.feed(b"\x01" * 300 + b"\x00" + fr.encode(good)))
    reasons = [i.reason for i in items if isinstance(i, FrameError)]
    assert reasons == ["oversize"]
    assert items[-1] == good


def test_length_error_for_trailing_bytes() -> None:
    raw = fr.pack(fr.Frame(1, 0x13, 0, 1, b"ab")) + b"\x55"
    with pytest.raises(FrameError, match="length_error"):
        fr.unpack(raw)


def test_payload_over_limit_refused_by_sender() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        fr.pack(fr.Frame(1, 0x10, 0, 0, bytes(fr.MAX_PAYLOAD + 1)))


def test_documented_heartbeat_example() -> None:
    """The worked example of docs/firmware-protocol.md section 10."""
    from firmware_bridge.mcu.encoder import encode_payload
    from firmware_bridge.mcu.messages import HeartbeatMsg

    mtype, payload = encode_payload(HeartbeatMsg(10_000, 1, 1, 4, 2, (0,) * 6))
    wire = fr.encode(fr.Frame(1, mtype, fr.FLAG_ACK_REQ, 7, payload))
    assert wire.hex(" ").upper() == (
        "05 01 13 01 07 04 18 10 27 01 02 01 01 01 04 01 04 02 01 01 "
        "01 01 01 01 01 01 01 01 01 01 03 7E 16 00"
    )
