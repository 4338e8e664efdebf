"""The agent's input threads: GPS, the MCU link and the ELM327 adapter.

Each runs the already-built source (``edge_agent.gps``, ``firmware_bridge``) in a daemon thread
and puts what it reads on one queue as ``(kind, payload)``; the agent's loop is the only
consumer, so the business logic is single-threaded. No source ever raises out of its thread:
failures are counted and the port is retried.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from typing import Any

log = logging.getLogger(__name__)

Inbox = queue.Queue[tuple[str, Any]]


class SourceThread:
    """Base: a named daemon thread with a stop event and counters."""

    name = "source"

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox
        self.stop_event = threading.Event()
        self.counters: Counter[str] = Counter()
        self._thread = threading.Thread(target=self._guarded, name=self.name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stop_event.set()

    def join(self, timeout: float = 5.0) -> None:
        self._thread.join(timeout)

    def _guarded(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.run()
            except Exception:  # a bug in a source must not silently end its thread
                self.counters["crashed"] += 1
                log.exception("%s: source failed; restarting in 1 s", self.name)
                self.stop_event.wait(1.0)

    def run(self) -> None:
        raise NotImplementedError


class GpsThread(SourceThread):
    """``SerialGpsSource`` (any pyserial URL) or ``GpsdSource``; puts ``("gps", GpsFix)``."""

    name = "gps"

    def __init__(self, inbox: Inbox, url: str | None, baud: int | None, gpsd: str | None) -> None:
        super().__init__(inbox)
        self.source: Any
        if gpsd:
            from edge_agent.gps.gpsd_source import GpsdSource

            host, _, port = gpsd.rpartition(":")
            self.source = GpsdSource(host or "127.0.0.1", int(port or 2947))
        elif url:
            from edge_agent.gps.serial_source import SerialGpsSource

            self.source = SerialGpsSource(url, baud)
        else:
            raise ValueError("GPS needs a serial URL or a gpsd address")

    def stop(self) -> None:
        super().stop()
        self.source.stop()

    def run(self) -> None:
        for fix in self.source.fixes():
            self.inbox.put(("gps", fix))
            if self.stop_event.is_set():
                return


class McuThread(SourceThread):
    """``firmware_bridge`` MCU link; puts ``("mcu", [records])`` per poll (IMU in batches)."""

    name = "mcu"

    def __init__(self, inbox: Inbox, url: str, baud: int) -> None:
        super().__init__(inbox)
        from firmware_bridge.mcu.link import McuLink

        # 50 ms reads: the MCU sends IMU in 100 ms batches, and 10 ms wake-ups cost CPU.
        self.link = McuLink(url, baud, read_timeout_s=0.05)

    def run(self) -> None:
        while not self.stop_event.is_set():
            records = self.link.poll(0.2)
            if records:
                self.inbox.put(("mcu", records))
        self.link.close()


class ObdThread(SourceThread):
    """ELM327 adapter: initialise, then poll mode 01 every ``interval_s``; puts
    ``("obd", [ObdReading])``. A lost adapter is reopened after a pause."""

    name = "obd"

    def __init__(self, inbox: Inbox, url: str, baud: int, interval_s: float) -> None:
        super().__init__(inbox)
        self.url, self.baud, self.interval_s = url, baud, interval_s

    def run(self) -> None:
        from firmware_bridge.elm327.client import Elm327Client
        from firmware_bridge.errors import BridgeError

        client = Elm327Client(self.url, self.baud)
        try:
            client.open()
            client.initialise()
            self.counters["initialised"] += 1
            while not self.stop_event.is_set():
                started = time.monotonic()
                readings = client.poll()
                if readings:
                    self.inbox.put(("obd", readings))
                self.stop_event.wait(max(0.0, self.interval_s - (time.monotonic() - started)))
        except BridgeError as err:
            self.counters["adapter_errors"] += 1
            log.warning("obd: %s; retrying in 5 s", err)
            self.stop_event.wait(5.0)
        finally:
            try:
                client.close()
            except OSError as err:
                log.debug("obd: close: %s", err)
