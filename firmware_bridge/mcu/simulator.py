"""A vehicle microcontroller speaking the MCU link over a pseudo-terminal.

Streams IMU at 100 Hz in batches, CAN frames, ignition/input changes and heartbeats; answers
HELLO and TIME_REQ; retransmits like real firmware. Faults are injected on request so tests
(and the demo) can show the agent surviving them. The agent opens `path` with pyserial; `path`
is a symlink (as udev's /dev/serial/by-id names are) that survives `unplug()`/`replug()`.
"""

from __future__ import annotations

import math
import os
import random
import select
import threading
import time
import tty
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from firmware_bridge.errors import FrameError
from firmware_bridge.mcu import cobs, decoder, encoder
from firmware_bridge.mcu import frame as fr
from firmware_bridge.mcu.messages import (
    HEARTBEAT_COUNTERS,
    CanFrames,
    HeartbeatMsg,
    Hello,
    ImuBatch,
    Inputs,
    Message,
    MsgType,
    Nack,
    RawCan,
    Role,
    TimeReq,
    TimeResp,
)
from firmware_bridge.mcu.reliable import DuplicateFilter, ReliableSender, ack_frame

ACCEL_LSB = 4788  # 1e-6 m/s^2 per LSB: +-16 g full scale
GYRO_LSB = 1065  # 1e-6 rad/s per LSB: +-2000 deg/s full scale
_DATA_TYPES = {MsgType.IMU_BATCH, MsgType.CAN_FRAMES, MsgType.INPUTS, MsgType.HEARTBEAT}


class Fault(StrEnum):
    BIT_FLIP = "bit_flip"  # one payload bit flipped on the wire -> host crc_error
    BAD_CRC = "bad_crc"  # CRC byte corrupted -> host crc_error
    RESET = "reset"  # half a frame, then a reboot: 0x00, HELLO with seq 0
    DUPLICATE = "duplicate"  # a data frame written twice -> host duplicate
    DROP_ACK = "drop_ack"  # the next ACK is ignored -> retransmission -> host duplicate
    BAD_VERSION = "bad_version"  # a frame with protocol version 9 -> host version_mismatch
    UNKNOWN_TYPE = "unknown_type"  # a frame of type 0x7E -> host unknown_type
    LINE_NOISE = "line_noise"  # a random bit of the encoded bytes flipped


def default_imu(i: int) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Sample i (100 Hz): gentle sway plus gravity, a slow yaw."""
    t = i / 100.0
    return (
        (0.5 * math.sin(2 * math.pi * 0.5 * t), 0.2 * math.cos(2 * math.pi * 0.2 * t), 9.81),
        (0.0, 0.0, 0.1 * math.sin(2 * math.pi * 0.1 * t)),
    )


@dataclass(frozen=True, slots=True)
class CanSource:
    """A periodic CAN frame whose data is computed from its index."""

    can_id: int
    period_s: float
    data: Callable[[int], bytes]
    extended: bool = False


def counter_source(can_id: int = 0x0C8, period_s: float = 0.1) -> CanSource:
    return CanSource(can_id, period_s, lambda i: bytes([i & 0xFF, (i >> 8) & 0xFF, 0, 0, 0, 0]))


class McuSimulator:
    """Runs in its own thread; see the module docstring."""

    def __init__(
        self,
        link_path: str,
        *,
        tick_hz: int = 10_000,
        imu_hz: int = 100,
        imu_batch: int = 10,
        imu: Callable[[int], tuple[tuple[float, ...], tuple[float, ...]]] = default_imu,
        can: tuple[CanSource, ...] = (counter_source(),),
        heartbeat_s: float = 1.0,
        drift_ppm: float = 0.0,
        tick_start: int = 0,
        ack_timeout_s: float = 0.05,
        max_tries: int = 5,
        firmware: tuple[int, int, int] = (1, 4, 2),
        versions: tuple[int, int] = (1, 1),
        device_id: int = 0xF107A,
        seed: int = 1,
    ) -> None:
        self.link_path = link_path
        self.tick_hz = tick_hz
        self.imu_period = tick_hz // imu_hz
        self.imu_batch = imu_batch
        self.imu_fn = imu
        self.can_sources = can
        self.heartbeat_s = heartbeat_s
        self.drift = drift_ppm * 1e-6
        self.tick_start = tick_start
        self.firmware = firmware
        self.versions = versions
        self.device_id = device_id
        self.rng = random.Random(seed)
        self.sender = ReliableSender(
            version=versions[1], timeout_s=ack_timeout_s, max_tries=max_tries, queue_limit=512
        )
        self.framer = fr.Framer()
        self.host_dups = DuplicateFilter()
        self.counts: Counter[str] = Counter()  # what the MCU generated, sent and saw
        self.mask = 0
        self.streaming = True  # False pauses IMU, CAN and heartbeat generation
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._master: int | None = None
        self._slave: int | None = None
        self._host_boot: int | None = None
        self._boot()

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> McuSimulator:
        self._plug()
        self._thread = threading.Thread(target=self._run, name="mcu-sim", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._unplug()

    def __enter__(self) -> McuSimulator:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def unplug(self) -> None:
        """The USB cable is pulled: the port disappears (the MCU keeps running)."""
        with self._lock:
            self._unplug()

    def replug(self) -> None:
        with self._lock:
            self._plug()

    def inject(self, fault: Fault | str, times: int = 1) -> None:
        with self._lock:
            self._faults.extend([Fault(fault)] * times)

    def set_inputs(self, mask: int) -> None:
        """Change ignition (bit 0) and digital inputs; an INPUTS message follows."""
        with self._lock:
            changed = self.mask ^ mask
            self.mask = mask
            self._submit(Inputs(self.tick(), mask, changed))

    def reboot(self) -> None:
        """A clean reboot (no half frame)."""
        with self._lock:
            self._reboot()

    @property
    def idle(self) -> bool:
        """Nothing queued or unacknowledged and no fault pending."""
        with self._lock:
            return self.sender.idle and not self._faults

    # -- internals ------------------------------------------------------------------------
    def _plug(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        self._master, self._slave = master, slave
        tmp = f"{self.link_path}.tmp"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(os.ttyname(slave), tmp)
        os.replace(tmp, self.link_path)

    def _unplug(self) -> None:
        if os.path.lexists(self.link_path):
            os.unlink(self.link_path)
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = None

    def tick(self) -> int:
        elapsed = time.monotonic() - self._boot_mono
        return self.tick_start + int(elapsed * self.tick_hz * (1 + self.drift))

    def _boot(self) -> None:
        self._boot_mono = time.monotonic()
        self.boot_id = self.rng.getrandbits(32)
        self.sender.reset()
        self.host_dups.reset()
        self.framer.reset()
        self._imu_index = 0
        self._can_index = [0] * len(self.can_sources)
        self._next_heartbeat = 0.0
        self._drop_acks = 0
        lo, hi = self.versions
        self._submit(
            Hello(lo, hi, *self.firmware, self.device_id, self.boot_id, self.tick_hz, Role.MCU)
        )
        self._submit(Inputs(self.tick(), self.mask, 0))
        self.counts["boots"] += 1

    def _hello(self) -> Hello:
        lo, hi = self.versions
        return Hello(lo, hi, *self.firmware, self.device_id, self.boot_id, self.tick_hz, Role.MCU)

    def _reboot(self) -> None:
        self._write(b"\x00")  # flush whatever partial frame the host holds
        self._boot()
        self._transmit()  # HELLO is the first frame of a boot, before any TIME_RESP

    def _submit(self, msg: Message, reliable: bool = True) -> None:
        mtype, payload = encoder.encode_payload(msg)
        self.sender.submit(mtype, payload, reliable)
        self.counts[f"gen_{mtype.name.lower()}"] += 1
        if isinstance(msg, ImuBatch):
            self.counts["gen_imu_samples"] += len(msg.samples)
        elif isinstance(msg, CanFrames):
            self.counts["gen_can"] += len(msg.frames)

    def _write(self, data: bytes) -> None:
        if self._master is None:
            return  # unplugged: bytes go nowhere, retransmission covers them
        try:
            os.write(self._master, data)
        except OSError:
            self.counts["write_failed"] += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            master = self._master
            if master is None:
                time.sleep(0.005)
                with self._lock:
                    self._generate()
                continue
            try:
                ready, _, _ = select.select([master], [], [], 0.005)
            except (OSError, ValueError):
                ready = []
            data = b""
            if ready:
                try:
                    data = os.read(master, 4096)
                except OSError:
                    data = b""
            with self._lock:
                for item in self.framer.feed(data):
                    self._on_frame(item)
                self._generate()
                self._transmit()

    def _generate(self) -> None:
        if not self.streaming:
            return
        now_tick = self.tick() - self.tick_start
        while now_tick >= (self._imu_index + self.imu_batch) * self.imu_period:
            samples = []
            for k in range(self.imu_batch):
                accel, gyro = self.imu_fn(self._imu_index + k)
                samples.append(
                    tuple(round(a * 1e6 / ACCEL_LSB) for a in accel)
                    + tuple(round(g * 1e6 / GYRO_LSB) for g in gyro)
                )
            base = self.tick_start + self._imu_index * self.imu_period
            self._submit(ImuBatch(base, self.imu_period, ACCEL_LSB, GYRO_LSB, tuple(samples)))  # type: ignore[arg-type]
            self._imu_index += self.imu_batch
        seconds = now_tick / self.tick_hz
        due: list[RawCan] = []
        for j, src in enumerate(self.can_sources):
            while seconds >= self._can_index[j] * src.period_s:
                tick = self.tick_start + int(self._can_index[j] * src.period_s * self.tick_hz)
                due.append(
                    RawCan(tick, src.can_id, src.extended, False, src.data(self._can_index[j]))
                )
                self._can_index[j] += 1
        for start in range(0, len(due), encoder.MAX_CAN_FRAMES):
            self._submit(CanFrames(tuple(due[start : start + encoder.MAX_CAN_FRAMES])))
        if seconds >= self._next_heartbeat:
            self._next_heartbeat += self.heartbeat_s
            sent = self.sender.counts
            seen = {
                "rx_crc_errors": self.counts["rx_crc_error"],
                "rx_overruns": self.counts["rx_oversize"],
                "tx_retries": sent["retransmitted"],
                "tx_dropped": sent["gave_up"] + sent["queue_dropped"],
            }
            counters = tuple(seen.get(k, 0) for k in HEARTBEAT_COUNTERS)
            self._submit(HeartbeatMsg(self.tick(), int(seconds), *self.firmware, counters))

    def _transmit(self) -> None:
        for wire in self.sender.poll(time.monotonic()):
            self._write_with_faults(wire)

    def _write_with_faults(self, wire: bytes) -> None:
        raw = cobs.decode(wire[:-1])
        if not self._faults or raw[1] not in _DATA_TYPES:
            self._write(wire)
            return
        fault = self._faults.popleft()
        self.counts[f"fault_{fault.value}"] += 1
        if fault == Fault.BIT_FLIP:
            bad = bytearray(raw)
            bad[fr.HEADER_SIZE + self.rng.randrange(len(raw) - fr.HEADER_SIZE - 2)] ^= 1 << (
                self.rng.randrange(8)
            )
            self._write(cobs.encode(bad) + b"\x00")
        elif fault == Fault.BAD_CRC:
            bad = bytearray(raw)
            bad[-1] ^= 0x5A
            self._write(cobs.encode(bad) + b"\x00")
        elif fault == Fault.LINE_NOISE:
            bad = bytearray(wire)
            bad[self.rng.randrange(len(wire) - 1)] ^= 1 << self.rng.randrange(8)
            self._write(bytes(bad))
        elif fault == Fault.DUPLICATE:
            self._write(wire + wire)
        elif fault == Fault.DROP_ACK:
            self._drop_acks += 1
            self._write(wire)
        elif fault == Fault.RESET:
            self._write(wire[: max(1, len(wire) // 2)])
            self._reboot()
        elif fault in (Fault.BAD_VERSION, Fault.UNKNOWN_TYPE):
            version = 9 if fault == Fault.BAD_VERSION else self.sender.version
            mtype = 0x7E if fault == Fault.UNKNOWN_TYPE else raw[1]
            self._write(fr.encode(fr.Frame(version, mtype, fr.FLAG_ACK_REQ, 0xFFFF, b"\x01\x02")))
            self._write(wire)

    def _on_frame(self, item: fr.Frame | FrameError) -> None:
        if isinstance(item, FrameError):
            self.counts[f"rx_{item.reason}"] += 1
            return
        try:
            msg = decoder.decode_payload(item.type, item.payload)
        except FrameError as err:
            self.counts[f"rx_{err.reason}"] += 1
            return
        if item.type == MsgType.ACK:
            if self._drop_acks:
                self._drop_acks -= 1
                self.counts["acks_dropped"] += 1
                return
            self.sender.on_ack(item.seq)
            return
        if isinstance(msg, Nack):
            self.counts[f"nack_{msg.reason.name.lower()}"] += 1
            self.sender.on_nack(item.seq, msg.reason, time.monotonic())
            return
        if isinstance(msg, Hello) and msg.boot_id != self._host_boot:
            self._host_boot = msg.boot_id
            self.host_dups.reset()
        new = self.host_dups.is_new(item.seq)
        if item.ack_req:
            self._write(ack_frame(self.sender.version, item.seq))
        if not new:
            self.counts["rx_duplicate"] += 1
            return
        if isinstance(msg, Hello):
            self.counts["rx_hello"] += 1
            self._submit(self._hello())
        elif isinstance(msg, TimeReq):
            rx = self.tick()
            self.counts["rx_time_req"] += 1
            self._send_time_resp(msg.host_t1_us, rx)

    def _send_time_resp(self, t1_us: int, rx: int) -> None:
        tx = self.tick()
        mtype, payload = encoder.encode_payload(TimeResp(t1_us, rx & 0xFFFFFFFF, tx & 0xFFFFFFFF))
        seq = self.sender.next_seq
        self.sender.next_seq = (seq + 1) % (1 << 16)
        self._write(fr.encode(fr.Frame(self.sender.version, mtype, 0, seq, payload)))
