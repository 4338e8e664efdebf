"""The agent's end of the MCU link: serial port, framing, acks, duplicates, time sync, reconnect.

Single-threaded and poll-driven: call `poll()` in a loop (or iterate `records()`); every bad
frame is counted under its reason in `counts` and the loop keeps going.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import serial

from firmware_bridge.errors import FrameError, PayloadError
from firmware_bridge.mcu import decoder, encoder
from firmware_bridge.mcu import frame as fr
from firmware_bridge.mcu.messages import (
    SUPPORTED_VERSIONS,
    Hello,
    MsgType,
    Nack,
    NackReason,
    Role,
    TimeReq,
    TimeResp,
)
from firmware_bridge.mcu.reliable import DuplicateFilter, ReliableSender, ack_frame, nack_frame
from firmware_bridge.mcu.timesync import ClockSync, TickUnwrapper
from firmware_bridge.records import McuHello, Record

log = logging.getLogger(__name__)

HOST_FIRMWARE = (0, 1, 0)
_CORRUPT = {"cobs_error", "truncated", "length_error", "crc_error", "oversize"}
_NACK_FOR = {
    "version_mismatch": NackReason.VERSION,
    "unknown_type": NackReason.UNKNOWN_TYPE,
    "malformed": NackReason.MALFORMED,
}


def negotiate(a: tuple[int, int], b: tuple[int, int]) -> int | None:
    """Highest version both ranges hold, or None."""
    v = min(a[1], b[1])
    return v if v >= max(a[0], b[0]) else None


class McuLink:
    """Host side of the link. `port` is any pyserial URL or device path."""

    def __init__(
        self,
        port: str,
        baudrate: int = 115_200,
        *,
        ack_timeout_s: float = 0.05,
        max_tries: int = 5,
        sync_interval_s: float = 1.0,
        reconnect_s: float = 0.5,
        read_timeout_s: float = 0.01,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        opener: Callable[..., Any] = serial.serial_for_url,
    ) -> None:
        self.port_name = port
        self.baudrate = baudrate
        self.sync_interval_s = sync_interval_s
        self.reconnect_s = reconnect_s
        self.read_timeout_s = read_timeout_s
        self._clock = clock
        self._mono = monotonic
        self._opener = opener
        self._port: Any = None
        self._next_open = 0.0
        self._next_sync = 0.0
        self.framer = fr.Framer()
        self.sender = ReliableSender(timeout_s=ack_timeout_s, max_tries=max_tries)
        self.dups = DuplicateFilter()
        self.unwrap = TickUnwrapper()
        self.sync: ClockSync | None = None
        self.version: int | None = None  # negotiated; None until a HELLO
        self.mcu: McuHello | None = None
        self.boot_id = random.getrandbits(32)
        self.counts: Counter[str] = Counter()
        self._last_good_seq = 0

    # -- port handling -------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._port is not None

    def open(self) -> bool:
        """Try to open the port now; False (counted) if it is not there."""
        try:
            self._port = self._opener(
                self.port_name, baudrate=self.baudrate, timeout=self.read_timeout_s
            )
        except (serial.SerialException, OSError) as err:
            self.counts["open_failed"] += 1
            log.debug("open %s failed: %s", self.port_name, err)
            self._next_open = self._mono() + self.reconnect_s
            return False
        self.counts["opened"] += 1
        self.framer.reset()
        self._say_hello()
        return True

    def close(self) -> None:
        if self._port is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                self._port.close()
            self._port = None

    def _lost(self, err: Exception) -> None:
        log.warning("port %s lost: %s", self.port_name, err)
        self.counts["port_lost"] += 1
        self.close()
        self._next_open = self._mono() + self.reconnect_s

    def _write(self, data: bytes) -> None:
        if self._port is None:
            return
        try:
            self._port.write(data)
        except (serial.SerialException, OSError) as err:
            self._lost(err)

    def _say_hello(self) -> None:
        lo, hi = SUPPORTED_VERSIONS
        hello = Hello(lo, hi, *HOST_FIRMWARE, 0, self.boot_id, 0, Role.HOST)
        self.sender.version = hi
        self.sender.submit(*encoder.encode_payload(hello))

    # -- main loop ------------------------------------------------------------------------
    def poll(self, timeout_s: float = 0.05) -> list[Record]:
        """Run the link for up to `timeout_s`; return the records decoded meanwhile."""
        out: list[Record] = []
        deadline = self._mono() + timeout_s
        while True:
            now = self._mono()
            if self._port is None:
                if now >= self._next_open:
                    self.open()
                if self._port is None:
                    time.sleep(max(0.0, min(deadline - now, self.read_timeout_s)))
                    if self._mono() >= deadline:
                        return out
                    continue
            self._housekeeping(now)
            data = self._read()
            if data:
                for item in self.framer.feed(data):
                    out.extend(self._handle(item))
            if self._mono() >= deadline:
                return out

    def records(self, stop: threading.Event) -> Iterator[Record]:
        """Yield records until `stop` is set."""
        while not stop.is_set():
            yield from self.poll(0.1)

    def _read(self) -> bytes:
        try:
            waiting = self._port.in_waiting
            data: bytes = self._port.read(waiting or 1)
        except (serial.SerialException, OSError, TypeError) as err:
            self._lost(err)
            return b""
        return data

    def _housekeeping(self, now: float) -> None:
        if self.sync is not None and now >= self._next_sync:
            self._next_sync = now + self.sync_interval_s
            t1_us = int(self._clock() * 1e6)
            self.sender.submit(*encoder.encode_payload(TimeReq(t1_us)), reliable=False)
        for wire in self.sender.poll(now):
            self._write(wire)

    # -- frame handling -------------------------------------------------------------------
    def _count_bad(self, reason: str, detail: str, seq: int, ack_req: bool) -> None:
        self.counts[reason] += 1
        log.debug("dropped frame: %s %s", reason, detail)
        if reason in _CORRUPT:
            self._write(nack_frame(self.sender.version, self._last_good_seq, NackReason.CORRUPT))
        elif ack_req and reason in _NACK_FOR:
            self._write(nack_frame(self.sender.version, seq, _NACK_FOR[reason]))

    def _handle(self, item: fr.Frame | FrameError) -> list[Record]:
        if isinstance(item, FrameError):
            self._count_bad(item.reason, item.detail, 0, False)
            return []
        f = item
        self._last_good_seq = f.seq
        if f.type == MsgType.HELLO:
            return self._on_hello(f)
        want = self.version
        ok = f.version == want if want is not None else SUPPORTED_VERSIONS[0] <= f.version
        if not ok or f.version > SUPPORTED_VERSIONS[1]:
            self._count_bad("version_mismatch", f"v{f.version}", f.seq, f.ack_req)
            return []
        try:
            msg = decoder.decode_payload(f.type, f.payload)
        except FrameError as err:
            self._count_bad(err.reason, err.detail, f.seq, f.ack_req)
            return []
        if f.type == MsgType.ACK:
            self.sender.on_ack(f.seq)
            return []
        if isinstance(msg, Nack):
            self.counts["nack_received"] += 1
            self.sender.on_nack(f.seq, msg.reason, self._mono())
            return []
        if f.ack_req:
            # Only ACK_REQ frames are ever retransmitted, so only they can be duplicates.
            self._write(ack_frame(self.sender.version, f.seq))
            if not self.dups.is_new(f.seq):
                self.counts["duplicate"] += 1
                return []
        if isinstance(msg, TimeResp):
            self._on_time(msg)
            return []
        self.counts[f"rx_{MsgType(f.type).name.lower()}"] += 1
        to_utc = self.sync.to_utc if self.sync is not None else _no_time
        return decoder.to_records(msg, self.unwrap, to_utc)

    def _on_hello(self, f: fr.Frame) -> list[Record]:
        try:
            msg = decoder.decode_payload(f.type, f.payload)
        except PayloadError as err:
            self._count_bad("malformed", err.detail, f.seq, f.ack_req)
            return []
        if not isinstance(msg, Hello) or msg.role != Role.MCU:
            self._count_bad("malformed", "HELLO from a host", f.seq, f.ack_req)
            return []
        version = negotiate(SUPPORTED_VERSIONS, (msg.proto_min, msg.proto_max))
        if version is None:
            detail = f"MCU speaks {msg.proto_min}..{msg.proto_max}"
            self._count_bad("version_mismatch", detail, f.seq, False)
            self._write(nack_frame(SUPPORTED_VERSIONS[1], f.seq, NackReason.VERSION))
            return []
        fresh = self.mcu is None or msg.boot_id != self.mcu.boot_id
        if fresh:
            if self.mcu is not None:
                self.counts["mcu_reset"] += 1
            self.dups.reset()
            self.unwrap.reset()
            self.sync = ClockSync(msg.tick_hz) if msg.tick_hz > 0 else None
            self._next_sync = 0.0
        self.version = version
        self.sender.version = version
        is_new = self.dups.is_new(f.seq)
        if f.ack_req:
            self._write(ack_frame(version, f.seq))
        if not is_new:
            self.counts["duplicate"] += 1
            return []
        self.counts["rx_hello"] += 1
        self.mcu = McuHello(
            protocol_min=msg.proto_min,
            protocol_max=msg.proto_max,
            firmware=msg.firmware,
            device_id=msg.device_id,
            boot_id=msg.boot_id,
            tick_hz=msg.tick_hz,
        )
        return [self.mcu]

    def _on_time(self, msg: TimeResp) -> None:
        if self.sync is None:
            return
        t4 = self._clock()
        self.counts["time_sync"] += 1
        self.sync.add(msg.host_t1_us / 1e6, self.unwrap(msg.rx_tick), self.unwrap(msg.tx_tick), t4)


def _no_time(_tick: int) -> float | None:
    return None
