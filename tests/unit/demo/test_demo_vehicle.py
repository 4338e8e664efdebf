"""The demo's vehicle hardware speaks what the agent's real readers decode: OBD values through
the ELM327 peer and client, GPS epochs through the NMEA reader, and the audit log parsing that
the demo's accounting rests on."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from firmware_bridge.elm327.client import Elm327Client
from firmware_bridge.elm327.peer import Elm327Peer
from flota.demo.player import TripPlayer, obd_pids
from flota.demo.vehicle import AuditLog


def test_obd_values_reach_the_agent_client_with_pid_resolution() -> None:
    peer = Elm327Peer().start()
    try:
        peer.vehicle.pids.update(obd_pids(63.4, 2113.3, 91.0, 55.0, 31.0, 47.0))
        client = Elm327Client(peer.path, 38_400)
        client.open()
        try:
            client.initialise()
            got = {r.name: r.value for r in client.poll()}
        finally:
            client.close()
    finally:
        peer.stop()
    assert got["speed"] == pytest.approx(63 / 3.6)  # m/s, from integer km/h
    assert got["rpm"] == pytest.approx(2113.25)
    assert got["coolant_temp"] == 91
    assert got["fuel_level"] == pytest.approx(55.0, abs=100 / 255)
    assert got["throttle"] == pytest.approx(31.0, abs=100 / 255)
    assert got["engine_load"] == pytest.approx(47.0, abs=100 / 255)


def test_trip_player_starts_at_its_origin_and_gives_imu_with_gravity() -> None:
    player = TripPlayer(seed=3, origin=(60.17, 24.94), trip_length_m=1500)
    d = player.data
    assert abs(d.lat[0] - 60.17) < 1e-3
    assert abs(d.lon[0] - 24.94) < 2e-3
    acc, gyro = player.imu(0)
    assert 7.0 < sum(a * a for a in acc) ** 0.5 < 12.5  # specific force near 1 g
    assert len(gyro) == 3


def test_accepted_reads_every_committed_range_and_ignores_a_torn_line(tmp_path: Path) -> None:
    log = tmp_path / "accepted.log"
    log.write_text("10 12\n13 13\n20 21\n22")
    assert AuditLog(log).seqs() == {10, 11, 12, 13, 20, 21}


def test_chained_trips_continue_where_the_last_one_stopped() -> None:
    player = TripPlayer(seed=5, origin=(60.17, 24.94), trip_length_m=1500)
    first = player.data
    heading = math.radians(90.0 - float(first.gps_track[-1]))
    player._next_trip((float(first.lat[-1]), float(first.lon[-1])), heading=heading)
    second = player.data
    assert player.trips == 2
    gap_m = math.hypot(
        (second.lat[0] - first.lat[-1]) * 111_195,
        (second.lon[0] - first.lon[-1]) * 111_195 * math.cos(math.radians(60.17)),
    )
    assert gap_m < 20  # GPS noise, not a jump the cloud would quarantine
    moving = second.gps_speed > 3
    turn = (float(second.gps_track[moving][0]) - float(first.gps_track[-1]) + 540) % 360 - 180
    assert abs(turn) < 45  # it drives on in the direction it was going


def test_the_audit_log_is_read_on_from_where_it_stopped(tmp_path: Path) -> None:
    log = tmp_path / "accepted.log"
    log.write_text("10 12\n22")
    audit = AuditLog(log)
    assert audit.seqs() == {10, 11, 12}
    with log.open("a") as f:
        f.write(" 23\n30 30\n")  # the torn line completed, then one more commit
    assert audit.seqs() == {10, 11, 12, 22, 23, 30}
