"""(type, payload bytes) -> Message for the MCU link, and Message -> canonical records."""

from __future__ import annotations

import struct
from collections.abc import Callable

from firmware_bridge.errors import FrameError, PayloadError
from firmware_bridge.mcu import encoder as e
from firmware_bridge.mcu.messages import (
    HEARTBEAT_COUNTERS,
    Ack,
    CanFrames,
    HeartbeatMsg,
    Hello,
    ImuBatch,
    Inputs,
    Message,
    MsgType,
    Nack,
    NackReason,
    RawCan,
    Role,
    TimeReq,
    TimeResp,
)
from firmware_bridge.records import CanFrame, DigitalInputs, Heartbeat, ImuSample, Record


def _fixed(st: struct.Struct, payload: bytes, what: str) -> tuple[int, ...]:
    if len(payload) != st.size:
        raise PayloadError(f"{what} needs {st.size} bytes, got {len(payload)}")
    return st.unpack(payload)


def _hello(p: bytes) -> Hello:
    v = _fixed(e.HELLO, p, "HELLO")
    try:
        role = Role(v[8])
    except ValueError as err:
        raise PayloadError(f"HELLO role {v[8]}") from err
    if v[0] > v[1] or v[0] == 0:
        raise PayloadError(f"HELLO versions {v[0]}..{v[1]}")
    return Hello(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], role)


def _ack(p: bytes) -> Ack:
    if p:
        raise PayloadError("ACK carries no payload")
    return Ack()


def _nack(p: bytes) -> Nack:
    if len(p) != 1:
        raise PayloadError("NACK carries one byte")
    try:
        return Nack(NackReason(p[0]))
    except ValueError as err:
        raise PayloadError(f"NACK reason {p[0]}") from err


def _time_req(p: bytes) -> TimeReq:
    return TimeReq(*_fixed(e.TIME_REQ, p, "TIME_REQ"))


def _time_resp(p: bytes) -> TimeResp:
    return TimeResp(*_fixed(e.TIME_RESP, p, "TIME_RESP"))


def _imu(p: bytes) -> ImuBatch:
    if len(p) < e.IMU_HEAD.size:
        raise PayloadError("IMU_BATCH shorter than its head")
    base, period, alsb, glsb, count = e.IMU_HEAD.unpack_from(p)
    if count == 0 or len(p) != e.IMU_HEAD.size + count * e.IMU_SAMPLE.size:
        raise PayloadError(f"IMU_BATCH of {count} samples in {len(p)} bytes")
    samples = tuple(
        e.IMU_SAMPLE.unpack_from(p, e.IMU_HEAD.size + i * e.IMU_SAMPLE.size) for i in range(count)
    )
    return ImuBatch(base, period, alsb, glsb, samples)


def _can(p: bytes) -> CanFrames:
    if not p or p[0] == 0:
        raise PayloadError("CAN_FRAMES without frames")
    frames = []
    off = 1
    for _ in range(p[0]):
        if off + e.CAN_HEAD.size > len(p):
            raise PayloadError("CAN_FRAMES cut inside a frame head")
        tick, word, dlc = e.CAN_HEAD.unpack_from(p, off)
        off += e.CAN_HEAD.size
        if dlc > 8 or off + dlc > len(p):
            raise PayloadError(f"CAN_FRAMES dlc {dlc}")
        extended = bool(word & e.CAN_EXTENDED)
        can_id = word & e.CAN_ID_MASK
        if not extended and can_id > 0x7FF:
            raise PayloadError(f"standard CAN id {can_id:#x} over 11 bits")
        frames.append(RawCan(tick, can_id, extended, bool(word & e.CAN_REMOTE), p[off : off + dlc]))
        off += dlc
    if off != len(p):
        raise PayloadError(f"CAN_FRAMES has {len(p) - off} trailing bytes")
    return CanFrames(tuple(frames))


def _inputs(p: bytes) -> Inputs:
    return Inputs(*_fixed(e.INPUTS, p, "INPUTS"))


def _heartbeat(p: bytes) -> HeartbeatMsg:
    v = _fixed(e.HEARTBEAT, p, "HEARTBEAT")
    return HeartbeatMsg(v[0], v[1], v[2], v[3], v[4], tuple(v[5:]))


PAYLOAD_DECODERS: dict[int, Callable[[bytes], Message]] = {
    MsgType.HELLO: _hello,
    MsgType.ACK: _ack,
    MsgType.NACK: _nack,
    MsgType.TIME_REQ: _time_req,
    MsgType.TIME_RESP: _time_resp,
    MsgType.IMU_BATCH: _imu,
    MsgType.CAN_FRAMES: _can,
    MsgType.INPUTS: _inputs,
    MsgType.HEARTBEAT: _heartbeat,
}


def decode_payload(mtype: int, payload: bytes) -> Message:
    """Parse a payload; FrameError("unknown_type") or PayloadError ("malformed") if unusable."""
    fn = PAYLOAD_DECODERS.get(mtype)
    if fn is None:
        raise FrameError("unknown_type", f"type {mtype:#04x}")
    return fn(payload)


TickToUtc = Callable[[int], float | None]


def to_records(msg: Message, unwrap: Callable[[int], int], to_utc: TickToUtc) -> list[Record]:
    """Canonical records of a data message. `unwrap` turns a 32-bit tick into a monotonic one;
    `to_utc` maps unwrapped ticks to UTC seconds (None before time sync)."""
    if isinstance(msg, ImuBatch):
        base = unwrap(msg.base_tick)
        a = msg.accel_lsb_um_s2 * 1e-6
        g = msg.gyro_lsb_urad_s * 1e-6
        out: list[Record] = []
        for i, s in enumerate(msg.samples):
            tick = base + i * msg.period_ticks
            out.append(
                ImuSample(
                    tick=tick,
                    time_utc=to_utc(tick),
                    accel=(s[0] * a, s[1] * a, s[2] * a),
                    gyro=(s[3] * g, s[4] * g, s[5] * g),
                )
            )
        return out
    if isinstance(msg, CanFrames):
        frames: list[Record] = []
        for f in msg.frames:
            tick = unwrap(f.tick)
            frames.append(
                CanFrame(
                    arbitration_id=f.can_id,
                    data=f.data,
                    extended=f.extended,
                    remote=f.remote,
                    tick=tick,
                    time_utc=to_utc(tick),
                    channel="mcu",
                )
            )
        return frames
    if isinstance(msg, Inputs):
        tick = unwrap(msg.tick)
        return [DigitalInputs(mask=msg.mask, tick=tick, time_utc=to_utc(tick))]
    if isinstance(msg, HeartbeatMsg):
        tick = unwrap(msg.tick)
        return [
            Heartbeat(
                uptime_s=float(msg.uptime_s),
                firmware=f"{msg.fw_major}.{msg.fw_minor}.{msg.fw_patch}",
                errors=dict(zip(HEARTBEAT_COUNTERS, msg.counters, strict=True)),
                tick=tick,
                time_utc=to_utc(tick),
            )
        ]
    return []
