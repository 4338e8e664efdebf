"""The serial source against a pseudo-terminal fed by a scripted peer writing real captures.

The port is opened through a symlink (as udev names a receiver /dev/gps0); the peer closes
its pty and comes back on a new one, re-pointing the link, as an unplugged receiver would.
"""

from __future__ import annotations

import os
import queue
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path

import pytest
from gps_helpers import DATA

from edge_agent.gps.backoff import Backoff
from edge_agent.gps.decoder import NmeaDecoder
from edge_agent.gps.fix import GpsFix
from edge_agent.gps.serial_source import SerialGpsSource, detect_baudrate
from flota.commands.nmea import decode_file

WAIT_S = 30.0  # generous: only bounds a hung test, never asserts speed


class PtyPeer:
    """A receiver on the master side of a pty, reachable through `link`."""

    def __init__(self, link: Path) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        tmp = link.with_suffix(".new")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(os.ttyname(self.slave))
        os.replace(tmp, link)

    def write(self, data: bytes, chunk: int = 300) -> None:
        for start in range(0, len(data), chunk):
            os.write(self.master, data[start : start + chunk])

    def close(self) -> None:
        os.close(self.master)
        os.close(self.slave)


def consume(source: SerialGpsSource) -> tuple[queue.Queue[GpsFix], threading.Thread]:
    out: queue.Queue[GpsFix] = queue.Queue()

    def run() -> None:
        for fix in source.fixes():
            out.put(fix)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return out, thread


def take(fixes: queue.Queue[GpsFix], count: int) -> list[GpsFix]:
    got: list[GpsFix] = []
    deadline = time.monotonic() + WAIT_S
    while len(got) < count and time.monotonic() < deadline:
        try:
            got.append(fixes.get(timeout=0.2))
        except queue.Empty:
            continue
    return got


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def expected_times(name: str) -> list[str | None]:
    return [f.iso_time() for f in decode_file(DATA / "gpsd" / name)]


@pytest.fixture
def link(tmp_path: Path) -> Path:
    return tmp_path / "gps0"


def test_reads_a_capture_and_survives_the_peer_going_away(link: Path) -> None:
    first, second = "ublox-neo-m9n-nmea.log", "nmea-rtk.log"
    want_first, want_second = expected_times(first), expected_times(second)
    peer = PtyPeer(link)
    source = SerialGpsSource(
        str(link),
        baudrate=9600,
        decoder=NmeaDecoder(skip_comments=True),
        backoff=Backoff(initial_s=0.05, maximum_s=0.2),
    )
    fixes, thread = consume(source)
    try:
        wait_until(lambda: source.counters["port_opened"] >= 1)
        peer.write((DATA / "gpsd" / first).read_bytes())
        got_first = take(fixes, len(want_first) - 1)  # the last epoch closes on port loss
        peer.close()
        got_first += take(fixes, 1)
        peer = PtyPeer(link)  # the receiver comes back on another pty
        # pyserial flushes the input on open: like a real receiver, the peer's first bytes
        # would be lost, so it starts once the source has reopened.
        wait_until(lambda: source.counters["port_opened"] >= 2)
        peer.write((DATA / "gpsd" / second).read_bytes())
        got_second = take(fixes, len(want_second) - 1)
    finally:
        source.stop()
        peer.close()
        thread.join(WAIT_S)
    assert not thread.is_alive()
    assert [f.iso_time() for f in got_first] == want_first
    assert [f.iso_time() for f in got_second] == want_second[:-1]
    assert source.counters["port_lost"] >= 1
    assert source.counters["port_opened"] >= 2


def test_missing_device_is_retried_not_raised(tmp_path: Path) -> None:
    source = SerialGpsSource(str(tmp_path / "absent"), baudrate=4800, backoff=Backoff(0.01, 0.02))
    fixes, thread = consume(source)
    wait_until(lambda: source.counters["port_open_failed"] >= 3)
    source.stop()
    thread.join(WAIT_S)
    assert source.counters["port_open_failed"] >= 3
    assert fixes.empty()
    assert not thread.is_alive()


def test_detects_a_rate_on_a_pty(link: Path) -> None:
    peer = PtyPeer(link)
    data = (DATA / "gpsd" / "garmin48.log").read_bytes()
    stop = threading.Event()

    def stream() -> None:  # a receiver talks continuously, whether anyone listens or not
        position = 0
        while not stop.is_set():
            peer.write(data[position : position + 200])
            position = (position + 200) % len(data)
            stop.wait(0.005)

    writer = threading.Thread(target=stream, daemon=True)
    writer.start()
    try:
        assert detect_baudrate(str(link), (9600, 4800), window_s=WAIT_S) == 9600
    finally:
        stop.set()
        writer.join(WAIT_S)
        peer.close()


class UartAtRate:
    """A UART whose receiver talks at `true_rate`: at any other rate the bytes are garbled,
    as a real UART garbles them. (A pty ignores baud rates, so this part is scripted.)"""

    def __init__(self, data: bytes, true_rate: int, rate: int) -> None:
        self.data = data if rate == true_rate else bytes((b * 7 + 1) & 0xFF for b in data)
        self.pos = 0

    def read(self, size: int = 1) -> bytes:
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def close(self) -> None:
        pass


def test_detects_the_rate_that_yields_checksummed_sentences() -> None:
    data = (DATA / "gpsd" / "garmin17n.log").read_bytes()
    tried: list[int] = []

    def opener(url: str, rate: int, timeout_s: float) -> UartAtRate:
        tried.append(rate)
        return UartAtRate(data, 38400, rate)

    ticks = iter(range(1_000_000))
    rate = detect_baudrate("uart", opener=opener, clock=lambda: next(ticks) * 0.01)
    assert rate == 38400
    assert tried == [4800, 9600, 38400]


def test_no_rate_found_returns_none() -> None:
    def opener(url: str, rate: int, timeout_s: float) -> UartAtRate:
        return UartAtRate(b"\x00\xff" * 1000, -1, rate)

    ticks = iter(range(1_000_000))
    assert detect_baudrate("uart", opener=opener, clock=lambda: next(ticks) * 0.01) is None
