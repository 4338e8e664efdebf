"""The gpsd source against a scripted TCP peer on 127.0.0.1 speaking gpsd's JSON protocol,
replaying the TPV reports gpsd itself produced for a real capture."""

from __future__ import annotations

import json
import queue
import socket
import threading
import time

from gps_helpers import DATA

from edge_agent.gps.backoff import Backoff
from edge_agent.gps.counters import Counters
from edge_agent.gps.fix import GpsFix
from edge_agent.gps.gpsd_source import WATCH, GpsdReports, GpsdSource, tpv_to_fix
from flota.commands.nmea import gpsd_expected

WAIT_S = 30.0
VERSION = b'{"class":"VERSION","release":"3.25","rev":"3.25","proto_major":3,"proto_minor":15}\n'


class GpsdPeer:
    """Accepts `sessions` connections in turn; each must send WATCH, then gets `lines`."""

    def __init__(self, sessions: list[list[bytes]]) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(1)
        self.port = self.server.getsockname()[1]
        self.sessions = sessions
        self.commands: list[bytes] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.server.settimeout(WAIT_S)
        for lines in self.sessions:
            conn, _ = self.server.accept()
            with conn:
                conn.sendall(VERSION)
                conn.settimeout(WAIT_S)
                self.commands.append(conn.recv(1024))
                for line in lines:
                    conn.sendall(line)
        self.server.close()


def chk_lines(name: str) -> list[bytes]:
    text = (DATA / "gpsd" / f"{name}.chk").read_text()
    sky = '{"class":"SKY","hdop":0.9,"pdop":1.6,"uSat":10}'
    return [f"{line}\n{sky}\n".encode() for line in text.splitlines()]


def test_fixes_from_gpsd_and_reconnect() -> None:
    lines = chk_lines("nmea-rtk.log")
    half = len(lines) // 2
    peer = GpsdPeer([lines[:half], [b"not json\n", b"[1,2]\n", *lines[half:]]])
    source = GpsdSource("127.0.0.1", peer.port, backoff=Backoff(0.01, 0.05))
    out: queue.Queue[GpsFix] = queue.Queue()

    def run() -> None:
        for fix in source.fixes():
            out.put(fix)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    expected = gpsd_expected(DATA / "gpsd" / "nmea-rtk.log.chk")
    got: dict[str, GpsFix] = {}
    untimed = 0
    deadline = time.monotonic() + WAIT_S
    while len(got) < len(expected) and time.monotonic() < deadline:
        try:
            fix = out.get(timeout=0.1)
        except queue.Empty:
            continue
        stamp = fix.iso_time()
        if stamp is None:  # gpsd reports a position before it knows the time
            untimed += 1
            continue
        assert stamp not in got  # one fix per epoch, however many TPVs gpsd sent
        got[stamp] = fix
    source.stop()
    thread.join(WAIT_S)
    peer.thread.join(WAIT_S)
    assert peer.commands == [WATCH, WATCH]
    assert untimed == 1
    assert set(got) == set(expected)
    for stamp, (lat, lon) in expected.items():
        assert (got[stamp].lat, got[stamp].lon) == (lat, lon)
    some = next(iter(got.values()))
    assert (some.hdop, some.sats) == (0.9, 10)
    assert source.counters["gpsd_bad_json"] == 2
    assert source.counters["gpsd_closed"] >= 2


def test_unreachable_gpsd_is_retried() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    source = GpsdSource("127.0.0.1", port, backoff=Backoff(0.01, 0.02))
    thread = threading.Thread(target=lambda: list(source.fixes()), daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_S
    while source.counters["gpsd_connect_failed"] < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    source.stop()
    thread.join(WAIT_S)
    assert source.counters["gpsd_connect_failed"] >= 3


def test_tpv_conversion() -> None:
    tpv = json.loads(
        '{"class":"TPV","status":2,"mode":3,"time":"2005-03-16T09:38:02.000Z",'
        '"lat":52.219065,"lon":21.010851667,"altHAE":173.4,"altMSL":137.2,"alt":137.2,'
        '"track":226.0,"speed":0.5,"geoidSep":36.2,"epx":2.5,"epy":2.4,"epv":4.9}'
    )
    fix = tpv_to_fix(tpv, {"hdop": 0.9, "uSat": 10})
    assert fix is not None
    assert fix.iso_time() == "2005-03-16T09:38:02.000Z"
    assert (fix.alt_m, fix.speed_mps, fix.track_deg, fix.mode) == (137.2, 0.5, 226.0, 3)
    assert (fix.err_lon_m, fix.err_lat_m, fix.err_alt_m) == (2.5, 2.4, 4.9)
    assert tpv_to_fix({"class": "TPV", "mode": 1}, {}) is None
    assert tpv_to_fix({"class": "TPV", "mode": 2, "lat": "x", "lon": 1.0}, {}) is None


def test_reports_emit_last_tpv_per_time() -> None:
    reports = GpsdReports(Counters())
    a = b'{"class":"TPV","mode":2,"time":"2020-01-01T00:00:00.000Z","lat":1.0,"lon":2.0}'
    b = b'{"class":"TPV","mode":3,"time":"2020-01-01T00:00:00.000Z","lat":1.5,"lon":2.5}'
    c = b'{"class":"TPV","mode":3,"time":"2020-01-01T00:00:01.000Z","lat":1.6,"lon":2.6}'
    assert reports.line(a) == []
    assert reports.line(b) == []
    (first,) = reports.line(c)
    assert (first.lat, first.mode) == (1.5, 3)
    (last,) = reports.flush()
    assert last.lat == 1.6
