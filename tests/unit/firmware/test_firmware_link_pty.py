"""The MCU link over a pseudo-terminal against the simulator, with every injected fault.

Each test pauses generation at the end, drains until the simulator has nothing
unacknowledged, then compares what was generated with what was delivered.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from firmware_bridge.mcu.link import McuLink
from firmware_bridge.mcu.simulator import Fault, McuSimulator
from firmware_bridge.records import CanFrame, DigitalInputs, Heartbeat, ImuSample, McuHello, Record

REASONS = (
    "cobs_error",
    "truncated",
    "length_error",
    "crc_error",
    "oversize",
    "version_mismatch",
    "unknown_type",
    "malformed",
    "duplicate",
)


class Rig:
    def __init__(self, tmp: Path, **sim_kw: object) -> None:
        path = str(tmp / "ttyMCU0")
        self.sim = McuSimulator(path, ack_timeout_s=0.3, **sim_kw)  # type: ignore[arg-type]
        self.sim.start()
        self.link = McuLink(path, ack_timeout_s=0.3, sync_interval_s=0.2, reconnect_s=0.05)
        self.records: list[Record] = []

    def run(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.records += self.link.poll(0.05)

    def until(self, cond: Callable[[], bool], limit: float = 5.0) -> None:
        end = time.monotonic() + limit
        while not cond():
            assert time.monotonic() < end, f"condition not met; link {dict(self.link.counts)}"
            self.records += self.link.poll(0.05)

    def drain(self) -> None:
        self.sim.streaming = False
        self.until(lambda: self.sim.idle)
        self.run(0.1)

    def errors(self) -> dict[str, int]:
        return {r: self.link.counts[r] for r in REASONS if self.link.counts[r]}

    def of(self, kind: type) -> list[Record]:
        return [r for r in self.records if isinstance(r, kind)]

    def close(self) -> None:
        self.link.close()
        self.sim.stop()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path)
    yield r
    r.close()


def test_clean_stream_delivers_everything_once_in_si(rig: Rig) -> None:
    rig.run(1.2)
    rig.sim.set_inputs(0b1)  # ignition on
    rig.run(0.2)
    rig.drain()
    assert rig.errors() == {}
    imu = rig.of(ImuSample)
    assert len(imu) == rig.sim.counts["gen_imu_samples"] >= 100
    assert len(rig.of(CanFrame)) == rig.sim.counts["gen_can"]
    hello = rig.of(McuHello)[0]
    assert isinstance(hello, McuHello)
    assert (hello.firmware, hello.tick_hz) == ("1.4.2", 10_000)
    ticks = [s.tick for s in imu if isinstance(s, ImuSample)]
    assert ticks == sorted(ticks)
    assert {b - a for a, b in itertools.pairwise(ticks)} == {100}  # 100 Hz
    last = imu[-1]
    assert isinstance(last, ImuSample)
    assert last.accel[2] == pytest.approx(9.81, abs=0.005)  # gravity within one LSB
    assert last.time_utc is not None
    assert abs(last.time_utc - time.time()) < 1.0
    inputs = [r for r in rig.of(DigitalInputs) if isinstance(r, DigitalInputs)]
    assert [i.ignition for i in inputs] == [False, True]
    assert rig.of(Heartbeat)
    assert rig.link.sync is not None
    assert rig.link.sync.estimate is not None
    assert rig.link.sync.estimate.rtt_s < 0.1


@pytest.mark.parametrize(
    ("fault", "expected", "dups", "nack_resends"),
    [
        (Fault.BIT_FLIP, {"crc_error": 2}, 0, 2),
        (Fault.BAD_CRC, {"crc_error": 2}, 0, 2),
        (Fault.DUPLICATE, {}, 2, 0),
        (Fault.DROP_ACK, {}, 0, 0),
        (Fault.BAD_VERSION, {"version_mismatch": 2}, 0, 0),
        (Fault.UNKNOWN_TYPE, {"unknown_type": 2}, 0, 0),
    ],
)
def test_each_fault_counted_exactly_and_nothing_lost(
    rig: Rig, fault: Fault, expected: dict[str, int], dups: int, nack_resends: int
) -> None:
    rig.run(0.4)
    # pyserial flushes input on open: a HELLO sent before that is retransmitted, not duplicated.
    resent_before = rig.sim.sender.counts["retransmitted"]
    dups_before = rig.link.counts["duplicate"]
    rig.sim.inject(fault, times=2)
    rig.run(1.0)
    rig.drain()
    errors = rig.errors()
    duplicates = errors.pop("duplicate", 0) - dups_before
    assert errors == expected
    # Every retransmission on timeout (dropped ACKs, or an ACK late on a loaded machine)
    # reaches the host a second time: exactly one duplicate each, delivered once.
    timeouts = rig.sim.sender.counts["retransmitted"] - resent_before - nack_resends
    assert duplicates == dups + timeouts
    assert len(rig.of(ImuSample)) == rig.sim.counts["gen_imu_samples"]
    assert len(rig.of(CanFrame)) == rig.sim.counts["gen_can"]
    assert rig.sim.counts[f"fault_{fault.value}"] == 2
    if fault == Fault.DROP_ACK:
        assert rig.sim.counts["acks_dropped"] == 2
        assert timeouts >= 2
    if fault in (Fault.BAD_VERSION, Fault.UNKNOWN_TYPE):
        reason = "version" if fault == Fault.BAD_VERSION else "unknown_type"
        assert rig.sim.counts[f"nack_{reason}"] == 2


def test_reset_mid_frame(rig: Rig) -> None:
    rig.run(0.5)
    resent_before = rig.sim.sender.counts["retransmitted"]
    rig.sim.inject(Fault.RESET)
    rig.until(lambda: rig.link.counts["mcu_reset"] == 1)
    rig.run(0.5)
    rig.drain()
    errors = rig.errors()
    assert errors.get("cobs_error", 0) + errors.get("truncated", 0) == 1
    assert set(errors) <= {"cobs_error", "truncated", "duplicate"}
    # The NACK for the cut frame may reach the rebooted MCU and make it resend its HELLO:
    # every retransmission shows up as exactly one duplicate, delivered once.
    assert errors.get("duplicate", 0) == rig.sim.sender.counts["retransmitted"] - resent_before
    boots = {h.boot_id for h in rig.of(McuHello) if isinstance(h, McuHello)}
    assert len(boots) == 2
    after = [s for s in rig.of(ImuSample) if isinstance(s, ImuSample)]
    restart = next(i for i, (a, b) in enumerate(itertools.pairwise(after)) if b.tick < a.tick)
    post = after[restart + 1 :]
    assert post[0].tick == 0  # the new boot's ticks start again
    assert len(post) >= 10


def test_line_noise_never_crashes_and_loses_nothing(rig: Rig) -> None:
    rig.run(0.3)
    for _ in range(8):  # one at a time: piled up, they would exhaust one frame's retries
        rig.sim.inject(Fault.LINE_NOISE)
        rig.run(0.15)
    rig.drain()
    assert rig.sim.sender.counts["gave_up"] == 0
    assert sum(rig.errors().values()) >= 8
    assert rig.link.counts["duplicate"] <= rig.sim.sender.counts["retransmitted"]
    assert len(rig.of(ImuSample)) == rig.sim.counts["gen_imu_samples"]


def test_port_disappears_and_comes_back(rig: Rig) -> None:
    rig.run(0.5)
    rig.sim.unplug()
    rig.until(lambda: rig.link.counts["port_lost"] == 1)
    rig.run(0.3)
    assert not rig.link.connected
    assert rig.link.counts["open_failed"] >= 1
    rig.sim.replug()
    rig.until(lambda: rig.link.counts["opened"] == 2)
    rig.run(0.5)
    rig.drain()
    assert len(rig.of(ImuSample)) == rig.sim.counts["gen_imu_samples"]
    assert rig.link.counts["mcu_reset"] == 0


def test_ticks_unwrap_across_32_bits(tmp_path: Path) -> None:
    r = Rig(tmp_path, tick_start=(1 << 32) - 3_000)  # wraps 0.3 s after boot
    try:
        r.run(0.8)
        r.drain()
    finally:
        r.close()
    ticks = [s.tick for s in r.of(ImuSample) if isinstance(s, ImuSample)]
    assert {b - a for a, b in itertools.pairwise(ticks)} == {100}  # no jump at the wrap
    assert ticks[-1] - ticks[0] > 3_000
    times = [s.time_utc for s in r.of(ImuSample) if isinstance(s, ImuSample) and s.time_utc]
    assert times == sorted(times)
