"""NMEA from a serial port with pyserial: any URL that `serial.serial_for_url` takes (a device
path, socket://host:port, rfc2217://host:port), at a configured baud rate or one detected by
trying the common rates. The port is reopened with backoff whenever it fails or disappears
(a USB receiver unplugged, a pty peer gone); the source never raises on I/O.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import serial

from edge_agent.gps.backoff import Backoff
from edge_agent.gps.counters import Counters
from edge_agent.gps.decoder import NmeaDecoder
from edge_agent.gps.errors import GpsConfigError
from edge_agent.gps.fix import GpsFix
from edge_agent.gps.framer import NmeaFramer

log = logging.getLogger(__name__)

COMMON_BAUD_RATES = (4800, 9600, 38400, 115200)


class SerialLike(Protocol):
    def read(self, size: int = 1) -> bytes: ...
    def close(self) -> None: ...


Opener = Callable[[str, int, float], SerialLike]


def open_serial(url: str, baudrate: int, timeout_s: float) -> SerialLike:
    """Open a pyserial URL; failures surface as OSError (SerialException is one)."""
    port: Any = serial.serial_for_url(url, baudrate=baudrate, timeout=timeout_s)
    return port  # type: ignore[no-any-return]


def detect_baudrate(
    url: str,
    rates: tuple[int, ...] = COMMON_BAUD_RATES,
    *,
    window_s: float = 2.5,
    min_sentences: int = 2,
    opener: Opener = open_serial,
    read_timeout_s: float = 0.2,
    clock: Callable[[], float] | None = None,
) -> int | None:
    """The first rate at which the port yields `min_sentences` checksum-valid sentences within
    `window_s`, or None. At a wrong rate a UART delivers garbage that never checksums."""
    now = clock or time.monotonic
    for rate in rates:
        try:
            port = opener(url, rate, read_timeout_s)
        except OSError as err:
            log.debug("baud detection: cannot open %s at %d: %s", url, rate, err)
            continue
        framer = NmeaFramer(Counters())
        found = 0
        deadline = now() + window_s
        try:
            while now() < deadline and found < min_sentences:
                found += len(framer.feed(port.read(256)))
        except OSError as err:
            log.debug("baud detection: read failed at %d: %s", rate, err)
        finally:
            port.close()
        if found >= min_sentences:
            log.info("gps: %s speaks NMEA at %d baud", url, rate)
            return rate
    return None


class SerialGpsSource:
    """Iterate over fixes from a serial receiver until `stop()`; reopens on every failure."""

    def __init__(
        self,
        url: str,
        baudrate: int | None = None,
        *,
        decoder: NmeaDecoder | None = None,
        backoff: Backoff | None = None,
        read_timeout_s: float = 0.25,
        detect_rates: tuple[int, ...] = COMMON_BAUD_RATES,
        detect_window_s: float = 2.5,
        opener: Opener = open_serial,
    ) -> None:
        if not url:
            raise GpsConfigError("serial source needs a port URL or device path")
        if baudrate is not None and baudrate <= 0:
            raise GpsConfigError(f"bad baud rate {baudrate}")
        self.url = url
        self.baudrate = baudrate
        self.decoder = decoder if decoder is not None else NmeaDecoder()
        self.counters = self.decoder.counters
        self.backoff = backoff if backoff is not None else Backoff()
        self.read_timeout_s = read_timeout_s
        self.detect_rates = detect_rates
        self.detect_window_s = detect_window_s
        self._opener = opener
        self._stop = threading.Event()
        self._detected: int | None = None

    def stop(self) -> None:
        self._stop.set()

    def fixes(self) -> Iterator[GpsFix]:
        while not self._stop.is_set():
            port = self._open()
            if port is None:
                self._stop.wait(self.backoff.next_delay())
                continue
            try:
                yield from self._read(port)
            finally:
                _close_quietly(port)
            self.decoder.framer.reset()
            yield from self.decoder.assembler.flush()

    def _rate(self) -> int | None:
        if self.baudrate is not None:
            return self.baudrate
        if self._detected is None:
            self._detected = detect_baudrate(
                self.url,
                self.detect_rates,
                window_s=self.detect_window_s,
                opener=self._opener,
            )
            if self._detected is None:
                self.counters.add("baud_not_detected", self.url, warn=True)
        return self._detected

    def _open(self) -> SerialLike | None:
        rate = self._rate()
        if rate is None:
            return None
        try:
            port = self._opener(self.url, rate, self.read_timeout_s)
        except (OSError, ValueError) as err:
            self.counters.add("port_open_failed", f"{self.url}: {err}", warn=True)
            return None
        self.counters.add("port_opened", self.url)
        return port

    def _read(self, port: SerialLike) -> Iterator[GpsFix]:
        started = time.monotonic()
        first_sentences = self.counters["sentences"]
        while not self._stop.is_set():
            try:
                data = port.read(1024)
            except (OSError, ValueError, TypeError) as err:
                # pyserial raises SerialException (an OSError) when a device vanishes; a
                # closed or broken handle can surface as ValueError/TypeError.
                self.counters.add("port_lost", f"{self.url}: {err}", warn=True)
                return
            if data:
                self.backoff.reset()
                yield from self.decoder.feed(data)
            if (
                self.baudrate is None
                and self._detected is not None
                and self.counters["sentences"] == first_sentences
                and time.monotonic() - started > 2 * self.detect_window_s
            ):
                # Auto mode and nothing valid since (re)opening: the receiver may have
                # changed rate. Detect again.
                self.counters.add("baud_redetect", self.url, warn=True)
                self._detected = None
                return


def _close_quietly(port: SerialLike) -> None:
    try:
        port.close()
    except (OSError, ValueError) as err:
        log.debug("gps: closing port: %s", err)
