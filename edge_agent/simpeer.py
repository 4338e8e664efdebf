"""A scripted GNSS receiver on a pseudo-terminal, for tests, the benchmark and the demo.

Writes GGA + RMC per epoch (6 decimals of minutes: finer than the wire's 1e-6 degree), so the
agent reads it exactly as it reads a USB receiver. Not used by the agent itself.
"""

from __future__ import annotations

import functools
import os
import threading
import time
import tty
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime

from flota_wire import Fix


def sentence(body: str) -> bytes:
    cs = functools.reduce(lambda a, c: a ^ ord(c), body, 0)
    return f"${body}*{cs:02X}\r\n".encode()


def _dm(value: float, deg_digits: int) -> str:
    a = abs(value)
    d = int(a)
    return f"{d:0{deg_digits}d}{(a - d) * 60:09.6f}"


def nmea_epoch(fix: Fix) -> bytes:
    """GGA + RMC of one epoch."""
    t = datetime.fromtimestamp(fix.time_us / 1e6, UTC)
    hms = t.strftime("%H%M%S") + f".{t.microsecond // 10000:02d}"
    lat = _dm(fix.lat, 2) + "," + ("N" if fix.lat >= 0 else "S")
    lon = _dm(fix.lon, 3) + "," + ("E" if fix.lon >= 0 else "W")
    knots = (fix.speed_mps or 0.0) / 0.514444
    sats, hdop, alt = fix.sats or 8, fix.hdop or 1.0, fix.alt_m or 0.0
    gga = f"GPGGA,{hms},{lat},{lon},1,{sats:02d},{hdop:.1f},{alt:.1f},M,18.0,M,,"
    rmc = f"GPRMC,{hms},A,{lat},{lon},{knots:.3f},{fix.track_deg or 0:.2f},{t:%d%m%y},,,A"
    return sentence(gga) + sentence(rmc)


class GpsPeer:
    """The receiver end of a pty; the agent opens ``path`` with pyserial."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self._stop = threading.Event()
        self.epochs = 0

    def send(self, fixes: Iterable[Fix], pause_s: float = 0.01) -> None:
        for f in fixes:
            os.write(self.master, nmea_epoch(f))
            self.epochs += 1
            if pause_s:
                time.sleep(pause_s)

    def stream(self, fixes: Iterable[Fix], rate_hz: float) -> threading.Thread:
        """Send in real time at ``rate_hz`` from a thread, each epoch stamped with the clock."""

        def run() -> None:
            period = 1 / rate_hz
            nxt = time.monotonic()
            for f in fixes:
                if self._stop.is_set():
                    return
                now_us = time.time_ns() // 1000
                stamped = replace(f, time_us=now_us - now_us % round(period * 1e6))
                try:
                    os.write(self.master, nmea_epoch(stamped))
                except OSError:  # closed under us: the drive is over
                    return
                self.epochs += 1
                nxt += period
                self._stop.wait(max(0.0, nxt - time.monotonic()))

        t = threading.Thread(target=run, name="gps-peer", daemon=True)
        t.start()
        return t

    def close(self) -> None:
        self._stop.set()
        os.close(self.master)
        os.close(self.slave)
