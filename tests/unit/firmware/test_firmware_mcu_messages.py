"""Payload encoder/decoder, reliability state machines and time sync of the MCU link."""

from __future__ import annotations

import contextlib
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.errors import FrameError, PayloadError
from firmware_bridge.mcu import frame as fr
from firmware_bridge.mcu.decoder import decode_payload, to_records
from firmware_bridge.mcu.encoder import encode_payload
from firmware_bridge.mcu.messages import (
    CanFrames,
    HeartbeatMsg,
    Hello,
    ImuBatch,
    Inputs,
    MsgType,
    Nack,
    NackReason,
    RawCan,
    Role,
    TimeReq,
    TimeResp,
)
from firmware_bridge.mcu.reliable import DuplicateFilter, ReliableSender
from firmware_bridge.mcu.timesync import ClockSync, TickUnwrapper
from firmware_bridge.records import CanFrame, DigitalInputs, Heartbeat, ImuSample

MESSAGES = [
    Hello(1, 2, 1, 4, 2, 0xF107A, 0xDEADBEEF, 10_000, Role.MCU),
    Nack(NackReason.VERSION),
    TimeReq(1_795_000_000_123_456),
    TimeResp(1_795_000_000_123_456, 0xFFFFFFF0, 5),
    ImuBatch(123, 100, 4788, 1065, ((1, -2, 2049, 0, -32768, 32767),) * 10),
    CanFrames(
        (
            RawCan(1, 0x7FF, False, False, b"\x01\x02"),
            RawCan(2, 0x1FFFFFFF, True, False, bytes(8)),
            RawCan(3, 0x123, False, True, b""),
        )
    ),
    Inputs(99, 0b101, 0b001),
    HeartbeatMsg(5, 3600, 1, 4, 2, (1, 2, 3, 4, 5, 6)),
]


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_payload_round_trip(msg: object) -> None:
    mtype, payload = encode_payload(msg)  # type: ignore[arg-type]
    assert len(payload) <= fr.MAX_PAYLOAD
    assert decode_payload(mtype, payload) == msg


@pytest.mark.parametrize("msg", MESSAGES[2:], ids=lambda m: type(m).__name__)
def test_short_or_long_payload_is_malformed(msg: object) -> None:
    mtype, payload = encode_payload(msg)  # type: ignore[arg-type]
    with pytest.raises(PayloadError):
        decode_payload(mtype, payload[:-1])
    with pytest.raises(PayloadError):
        decode_payload(mtype, payload + b"\x00")


def test_unknown_type_and_bad_fields() -> None:
    with pytest.raises(FrameError, match="unknown_type"):
        decode_payload(0x7E, b"")
    _, can = encode_payload(CanFrames((RawCan(1, 0x123, False, False, b"\x01"),)))
    bad_dlc = bytearray(can)
    bad_dlc[9] = 9
    with pytest.raises(PayloadError):
        decode_payload(MsgType.CAN_FRAMES, bytes(bad_dlc))
    with pytest.raises(PayloadError):  # 11-bit frame with a 29-bit id
        decode_payload(
            MsgType.CAN_FRAMES, b"\x01" + bytes(4) + (0x800).to_bytes(4, "little") + b"\x00"
        )
    with pytest.raises(PayloadError):
        decode_payload(MsgType.NACK, b"\x09")


@given(st.binary(max_size=250), st.sampled_from(list(MsgType)))
def test_random_payloads_raise_only_frame_errors(payload: bytes, mtype: MsgType) -> None:
    with contextlib.suppress(FrameError):
        decode_payload(mtype, payload)


def test_records_are_si_and_timed() -> None:
    imu = ImuBatch(1000, 100, 4788, 1065, ((2049, 0, -2049, 100, 0, -100),) * 2)
    recs = to_records(imu, lambda t: t, lambda t: 1000.0 + t / 10_000)
    assert len(recs) == 2
    first, second = recs
    assert isinstance(first, ImuSample)
    assert isinstance(second, ImuSample)
    assert first.accel[0] == pytest.approx(9.810612)  # 2049 * 4788e-6 m/s^2
    assert first.gyro[2] == pytest.approx(-0.1065)
    assert second.tick - first.tick == 100
    assert second.time_utc == pytest.approx(1000.11)
    (can,) = to_records(CanFrames((RawCan(7, 0x1F0, False, False, b"\x01"),)), int, lambda t: None)
    assert isinstance(can, CanFrame)
    assert (can.arbitration_id, can.dlc, can.time_utc) == (0x1F0, 1, None)
    (inp,) = to_records(Inputs(5, 0b11, 1), int, lambda t: None)
    assert isinstance(inp, DigitalInputs)
    assert inp.ignition
    assert inp.input(1)
    assert not inp.input(2)
    (hb,) = to_records(HeartbeatMsg(5, 60, 1, 4, 2, (1, 0, 0, 0, 0, 0)), int, lambda t: None)
    assert isinstance(hb, Heartbeat)
    assert hb.firmware == "1.4.2"
    assert hb.errors["rx_crc_errors"] == 1


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0


def test_sender_window_retransmit_give_up() -> None:
    s = ReliableSender(window=1, timeout_s=0.1, max_tries=3)
    s.submit(0x10, b"a")
    s.submit(0x10, b"b")
    first = s.poll(0.0)
    assert len(first) == 1  # window of one: b waits
    assert s.poll(0.05) == []
    assert s.poll(0.1) == first  # timeout: same bytes again
    assert s.poll(0.2) == first
    second = s.poll(0.35)  # third try used up: a given up, b goes out
    assert s.counts["gave_up"] == 1
    assert s.counts["retransmitted"] == 2
    assert len(second) == 1
    assert fr.decode(second[0][:-1]).seq == 1
    s.on_ack(1)
    assert s.idle


def test_sender_nack_corrupt_resends_now_and_refusal_drops() -> None:
    s = ReliableSender(timeout_s=10.0)
    s.submit(0x10, b"a")
    (wire,) = s.poll(0.0)
    s.on_nack(0xFFFF, NackReason.CORRUPT, 1.0)
    assert s.poll(1.0) == [wire]
    s.on_nack(0, NackReason.UNKNOWN_TYPE, 1.0)
    assert s.idle
    assert s.counts["refused"] == 1


def test_unreliable_frames_bypass_window() -> None:
    s = ReliableSender(window=1)
    s.submit(0x10, b"a")
    s.submit(0x04, b"t", reliable=False)
    assert len(s.poll(0.0)) == 2


def test_duplicate_filter() -> None:
    d = DuplicateFilter(depth=4)
    assert [d.is_new(x) for x in (1, 2, 1, 3, 4, 5, 6, 1)] == [
        True,
        True,
        False,
        True,
        True,
        True,
        True,
        True,
    ]  # 1 forgotten after 4 newer seqs
    d.reset()
    assert d.is_new(2)


def test_tick_unwrapper_crosses_wrap_and_accepts_late_samples() -> None:
    u = TickUnwrapper()
    assert u(0xFFFF_FF00) == 0xFFFF_FF00
    assert u(0x10) == (1 << 32) + 0x10
    assert u(0xFFFF_FFF0) == 0xFFFF_FFF0  # a retransmitted sample from before the wrap
    assert u(0x20) == (1 << 32) + 0x20
    v = TickUnwrapper()
    assert v(0x10) == 0x10
    assert v(0xFFFF_FFF0) == -0x10  # queued before the wrap, seen after a later sample


def test_clock_sync_estimates_offset_and_drift() -> None:
    rng = random.Random(3)
    tick_hz, drift_ppm, utc_at_boot = 10_000, 150.0, 1_795_000_000.0
    sync = ClockSync(tick_hz, min_span_s=5.0)

    def mcu_tick(utc: float) -> int:
        return round((utc - utc_at_boot) * tick_hz * (1 + drift_ppm * 1e-6))

    for i in range(30):
        t1 = utc_at_boot + 10 + 2 * i
        up, down = rng.uniform(0.0002, 0.002), rng.uniform(0.0002, 0.002)
        rx = mcu_tick(t1 + up)
        sync.add(t1, rx, rx + 2, t1 + up + 0.0002 + down)
    est = sync.estimate
    assert est is not None
    assert est.drift_ppm == pytest.approx(drift_ppm, abs=30)
    probe = utc_at_boot + 75.0
    assert sync.to_utc(mcu_tick(probe)) == pytest.approx(probe, abs=0.005)


def test_clock_sync_offset_only_before_enough_span() -> None:
    sync = ClockSync(1000)
    assert sync.to_utc(5) is None
    sync.add(100.0, 0, 0, 100.002)
    assert sync.estimate is not None
    assert sync.estimate.drift_ppm == 0.0
    assert sync.to_utc(1000) == pytest.approx(101.001)
    sync.add(100.0, 10, 5, 100.001)  # negative busy time: ignored
    assert sync.estimate.samples == 1
