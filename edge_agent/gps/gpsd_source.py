"""Fixes from a running gpsd over its JSON socket, for devices that already run gpsd.

Sends `?WATCH={"enable":true,"json":true}` and turns TPV reports into GpsFix. gpsd may report
several TPVs for one epoch as sentences arrive; the last one for a time is the complete one,
so a fix is emitted when the time moves on (or the connection ends). hdop and satellites used
come from the latest SKY report. Reconnects with backoff; never raises on I/O or bad JSON.
"""

from __future__ import annotations

import json
import logging
import math
import socket
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from edge_agent.gps.backoff import Backoff
from edge_agent.gps.counters import Counters
from edge_agent.gps.errors import GpsConfigError
from edge_agent.gps.fix import GpsFix

log = logging.getLogger(__name__)

WATCH = b'?WATCH={"enable":true,"json":true}\n'
MAX_LINE = 1 << 20  # gpsd SKY reports with many satellites are long, but not this long


def tpv_to_fix(tpv: dict[str, Any], sky: dict[str, Any]) -> GpsFix | None:
    """A gpsd TPV report (mode >= 2 with lat/lon) -> GpsFix; None otherwise."""
    mode = tpv.get("mode")
    lat, lon = _opt(tpv.get("lat")), _opt(tpv.get("lon"))
    if not isinstance(mode, int) or mode < 2 or lat is None or lon is None:
        return None
    time_s = None
    stamp = tpv.get("time")
    if isinstance(stamp, str):
        try:
            time_s = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        except ValueError:
            time_s = None
    alt = _opt(tpv.get("altMSL", tpv.get("alt")))
    status = tpv.get("status")
    return GpsFix(
        time_s=time_s,
        time_of_day_s=(time_s % 86400.0) if time_s is not None else 0.0,
        lat=lat,
        lon=lon,
        mode=min(mode, 3),
        alt_m=alt if mode == 3 else None,
        geoid_sep_m=_opt(tpv.get("geoidSep")),
        speed_mps=_opt(tpv.get("speed")),
        track_deg=_opt(tpv.get("track")),
        quality=status if isinstance(status, int) else None,
        hdop=_opt(sky.get("hdop")),
        pdop=_opt(sky.get("pdop")),
        vdop=_opt(sky.get("vdop")),
        sats=sky.get("uSat") if isinstance(sky.get("uSat"), int) else None,
        err_lat_m=_opt(tpv.get("epy")),
        err_lon_m=_opt(tpv.get("epx")),
        err_alt_m=_opt(tpv.get("epv")),
    )


def _opt(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


class GpsdReports:
    """Turns gpsd JSON lines into fixes: last TPV per time wins, emitted when time moves on."""

    def __init__(self, counters: Counters) -> None:
        self.counters = counters
        self._sky: dict[str, Any] = {}
        self._pending: GpsFix | None = None

    def line(self, text: bytes) -> list[GpsFix]:
        try:
            report = json.loads(text)
        except ValueError:
            self.counters.add("gpsd_bad_json", text[:100].decode("ascii", "replace"))
            return []
        if not isinstance(report, dict):
            self.counters.add("gpsd_bad_json", str(report)[:100])
            return []
        cls = report.get("class")
        if cls == "SKY":
            self._sky = report
            return []
        if cls != "TPV":
            self.counters.add("gpsd_other_report")
            return []
        self.counters.add("gpsd_tpv")
        fix = tpv_to_fix(report, self._sky)
        if fix is None:
            self.counters.add("gpsd_tpv_without_fix")
            return []
        out: list[GpsFix] = []
        if self._pending is not None and self._pending.time_s != fix.time_s:
            out.append(self._pending)
        self._pending = fix
        return out

    def flush(self) -> list[GpsFix]:
        pending, self._pending = self._pending, None
        return [] if pending is None else [pending]


class GpsdSource:
    """Iterate over fixes from gpsd at host:port until `stop()`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 2947,
        *,
        counters: Counters | None = None,
        backoff: Backoff | None = None,
        timeout_s: float = 0.5,
    ) -> None:
        if not host or not 0 < port < 65536:
            raise GpsConfigError(f"bad gpsd address {host}:{port}")
        self.host, self.port = host, port
        self.counters = counters if counters is not None else Counters()
        self.backoff = backoff if backoff is not None else Backoff()
        self.timeout_s = timeout_s
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def fixes(self) -> Iterator[GpsFix]:
        while not self._stop.is_set():
            try:
                sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
            except OSError as err:
                self.counters.add("gpsd_connect_failed", str(err), warn=True)
                self._stop.wait(self.backoff.next_delay())
                continue
            reports = GpsdReports(self.counters)
            try:
                yield from self._session(sock, reports)
            finally:
                sock.close()
            yield from reports.flush()
            if not self._stop.is_set():
                self._stop.wait(self.backoff.next_delay())

    def _session(self, sock: socket.socket, reports: GpsdReports) -> Iterator[GpsFix]:
        try:
            sock.sendall(WATCH)
        except OSError as err:
            self.counters.add("gpsd_lost", str(err), warn=True)
            return
        buffer = b""
        while not self._stop.is_set():
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError as err:
                self.counters.add("gpsd_lost", str(err), warn=True)
                return
            if not data:
                self.counters.add("gpsd_closed", f"{self.host}:{self.port}", warn=True)
                return
            self.backoff.reset()
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            if len(buffer) > MAX_LINE:
                self.counters.add("gpsd_line_too_long")
                buffer = b""
            for line in lines:
                if line.strip():
                    yield from reports.line(line)
