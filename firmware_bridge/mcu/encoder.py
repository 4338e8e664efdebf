"""Message -> (type, payload bytes) for the MCU link; the inverse of `decoder.decode_payload`."""

from __future__ import annotations

import struct

from firmware_bridge.mcu.messages import (
    Ack,
    CanFrames,
    HeartbeatMsg,
    Hello,
    ImuBatch,
    Inputs,
    Message,
    MsgType,
    Nack,
    TimeReq,
    TimeResp,
)

HELLO = struct.Struct("<BBBBHIIIB")  # 19 bytes
TIME_REQ = struct.Struct("<Q")
TIME_RESP = struct.Struct("<QII")
IMU_HEAD = struct.Struct("<IHHHB")  # base_tick, period, accel_lsb, gyro_lsb, count
IMU_SAMPLE = struct.Struct("<6h")
CAN_HEAD = struct.Struct("<IIB")  # tick, id|flags, dlc
INPUTS = struct.Struct("<III")
HEARTBEAT = struct.Struct("<IIBBH6H")
CAN_EXTENDED = 1 << 31
CAN_REMOTE = 1 << 30
CAN_ID_MASK = (1 << 29) - 1
MAX_IMU_SAMPLES = 19
MAX_CAN_FRAMES = 14


def encode_payload(msg: Message) -> tuple[MsgType, bytes]:
    """Serialise one message; raises ValueError/struct.error for values out of range."""
    if isinstance(msg, Hello):
        return MsgType.HELLO, HELLO.pack(
            msg.proto_min,
            msg.proto_max,
            msg.fw_major,
            msg.fw_minor,
            msg.fw_patch,
            msg.device_id,
            msg.boot_id,
            msg.tick_hz,
            msg.role,
        )
    if isinstance(msg, Ack):
        return MsgType.ACK, b""
    if isinstance(msg, Nack):
        return MsgType.NACK, bytes([msg.reason])
    if isinstance(msg, TimeReq):
        return MsgType.TIME_REQ, TIME_REQ.pack(msg.host_t1_us)
    if isinstance(msg, TimeResp):
        return MsgType.TIME_RESP, TIME_RESP.pack(msg.host_t1_us, msg.rx_tick, msg.tx_tick)
    if isinstance(msg, ImuBatch):
        if not 1 <= len(msg.samples) <= MAX_IMU_SAMPLES:
            raise ValueError(f"IMU batch of {len(msg.samples)} samples")
        head = IMU_HEAD.pack(
            msg.base_tick & 0xFFFFFFFF,
            msg.period_ticks,
            msg.accel_lsb_um_s2,
            msg.gyro_lsb_urad_s,
            len(msg.samples),
        )
        return MsgType.IMU_BATCH, head + b"".join(IMU_SAMPLE.pack(*s) for s in msg.samples)
    if isinstance(msg, CanFrames):
        if not 1 <= len(msg.frames) <= MAX_CAN_FRAMES:
            raise ValueError(f"CAN batch of {len(msg.frames)} frames")
        out = bytearray([len(msg.frames)])
        for f in msg.frames:
            if len(f.data) > 8:
                raise ValueError("classic CAN carries at most 8 data bytes")
            word = (f.can_id & CAN_ID_MASK) | (CAN_EXTENDED if f.extended else 0)
            word |= CAN_REMOTE if f.remote else 0
            out += CAN_HEAD.pack(f.tick & 0xFFFFFFFF, word, len(f.data)) + f.data
        return MsgType.CAN_FRAMES, bytes(out)
    if isinstance(msg, Inputs):
        return MsgType.INPUTS, INPUTS.pack(msg.tick & 0xFFFFFFFF, msg.mask, msg.changed)
    if isinstance(msg, HeartbeatMsg):
        return MsgType.HEARTBEAT, HEARTBEAT.pack(
            msg.tick & 0xFFFFFFFF,
            msg.uptime_s,
            msg.fw_major,
            msg.fw_minor,
            msg.fw_patch,
            *(min(c, 0xFFFF) for c in msg.counters),
        )
    raise TypeError(f"not an MCU message: {msg!r}")
