"""The uplink's downlink handling without a broker: stored acks delete exact rows, bad payloads
are counted and never raise; and the settings refuse what a vehicle must not start with."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from edge_agent.outbox import Outbox
from edge_agent.settings import SettingsError, load_settings
from edge_agent.uplink import Uplink, UplinkConfig
from flota_wire import Channel, Command, CommandKind, Fix, encode, topic
from flota_wire.acks import encode_stored_ack


def _uplink(tmp_path: Path) -> tuple[Uplink, Outbox, list[Command]]:
    box = Outbox(tmp_path / "o.sqlite")
    got: list[Command] = []
    cfg = UplinkConfig("acme", "van-1", "127.0.0.1", 1, "acme.van-1", "s3cret-x", "acme.van-1")
    return Uplink(cfg, box, got.append), box, got


def _msg(channel: Channel, payload: bytes, vehicle: str = "van-1") -> Any:
    return SimpleNamespace(topic=topic("acme", vehicle, channel), payload=payload)


def test_stored_ack_deletes_exact_rows(tmp_path: Path) -> None:
    up, box, _ = _uplink(tmp_path)
    box.add_fixes([Fix(0, 1_795_780_800_000_000 + i, 1, 1) for i in range(10)])
    up._on_message(None, None, _msg(Channel.STORED, encode_stored_ack([(2, 4), (9, 9)], time_us=5)))
    assert box.queued_seqs() == [1, 5, 6, 7, 8, 10]
    assert up.counters["stored_deleted_telemetry"] == 4


def test_bad_downlinks_are_counted_never_raised(tmp_path: Path) -> None:
    up, _box, got = _uplink(tmp_path)
    for payload in (b"", b"\x00", b"\x16{not json", b"\x14" + b"\xff" * 50):
        up._on_message(None, None, _msg(Channel.COMMANDS, payload))
    up._on_message(None, None, SimpleNamespace(topic="not/a/topic", payload=b"x"))
    assert up.counters["bad_downlink"] == 5
    other = encode_stored_ack([(1, 1)], time_us=5)
    up._on_message(None, None, _msg(Channel.STORED, other, vehicle="van-2"))
    assert up.counters["foreign_downlink"] == 1
    cmd = Command(1, "c", 1, CommandKind.CONFIG, {"batch_interval_s": 5}, 1)
    up._on_message(None, None, _msg(Channel.COMMANDS, encode(cmd)))
    assert got == [cmd]


def test_pump_does_nothing_while_offline(tmp_path: Path) -> None:
    up, box, _ = _uplink(tmp_path)
    box.add_fixes([Fix(0, 1_795_780_800_000_000, 1, 1)])
    assert up.pump() == 0
    assert not up.publish_sensors([])


BASE: dict[str, Any] = {"tenant": "acme", "vehicle": "van-1", "mqtt_username": "acme.van-1"}


def test_settings_refuse_default_secrets_and_half_tls(tmp_path: Path) -> None:
    for bad in ("", "changeme", "password", "public"):
        with pytest.raises(SettingsError, match="default or empty"):
            load_settings(environ={}, **BASE, mqtt_password=bad)
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    with pytest.raises(SettingsError, match="both tls_cert and tls_key"):
        load_settings(environ={}, **BASE, mqtt_password="k8#Lq", tls_ca=cert, tls_cert=cert)
    with pytest.raises(SettingsError, match="not a readable file"):
        load_settings(environ={}, **BASE, mqtt_password="k8#Lq", tls_ca=tmp_path / "missing.pem")
    with pytest.raises(SettingsError):
        load_settings(environ={}, **BASE, mqtt_password="k8#Lq", report_min_interval_s=100)
    with pytest.raises(SettingsError):
        load_settings(environ={}, **{**BASE, "vehicle": "van/1"}, mqtt_password="k8#Lq")


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FLOTA_AGENT_TENANT", "acme")
    monkeypatch.setenv("FLOTA_AGENT_VEHICLE", "van-1")
    monkeypatch.setenv("FLOTA_AGENT_MQTT_USERNAME", "acme.van-1")
    monkeypatch.setenv("FLOTA_AGENT_MQTT_PASSWORD", "k8#Lq-long")
    monkeypatch.setenv("FLOTA_AGENT_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("FLOTA_AGENT_REPORT_HEADING_DEG", "15")
    s = load_settings()
    assert s.client_id == "acme.van-1"
    assert s.outbox_path == tmp_path / "outbox.sqlite"
    assert s.reporting().heading_deg == 15.0


def test_lean_entry_point_refuses_bad_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge_agent.__main__ import main

    for name in list(os.environ):
        if name.startswith("FLOTA_AGENT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("FLOTA_AGENT_MQTT_PASSWORD", "changeme")
    assert main(["--log-level", "ERROR"]) == 2
    err = capsys.readouterr().err
    assert "bad settings" in err
    assert "tenant" in err


def test_stored_ack_of_a_batch_with_gaps_frees_its_flight(tmp_path: Path) -> None:
    from edge_agent.uplink import _InFlight

    up, box, _ = _uplink(tmp_path)
    box.add_fixes([Fix(0, 1_795_780_800_000_000 + i, 1, 1) for i in range(10)])
    box.ack("telemetry", [(4, 6)])  # acknowledged earlier: the next batch has a gap
    up._inflight["telemetry"] = [_InFlight(1, 10, 0.0)]
    up._on_message(None, None, _msg(Channel.STORED, encode_stored_ack([(1, 3), (7, 9)], time_us=5)))
    assert up._inflight["telemetry"]  # seq 10 still queued
    up._on_message(None, None, _msg(Channel.STORED, encode_stored_ack([(10, 10)], time_us=6)))
    assert up._inflight["telemetry"] == []


def test_stored_acks_of_another_cloud_are_ignored(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    cfg = UplinkConfig(
        "acme", "van-1", "127.0.0.1", 1, "acme.van-1", "s3cret-x", "acme.van-1", cloud_id="eu-1"
    )
    up = Uplink(cfg, box, lambda _c: None)
    box.add_fixes([Fix(0, 1_795_780_800_000_000 + i, 1, 1) for i in range(6)])
    for cloud in ("us-2", None):  # another cloud, and an ack naming none
        payload = encode_stored_ack([(1, 2)], time_us=5, cloud=cloud)
        up._on_message(None, None, _msg(Channel.STORED, payload))
    assert box.queued_seqs() == [1, 2, 3, 4, 5, 6]
    assert up.counters["stored_acks_foreign_cloud"] == 2
    up._on_message(
        None, None, _msg(Channel.STORED, encode_stored_ack([(1, 2)], time_us=6, cloud="eu-1"))
    )
    assert box.queued_seqs() == [3, 4, 5, 6]
    # a device configured for any cloud (cloud_id None) takes all of them
    up.config = UplinkConfig(
        "acme", "van-1", "127.0.0.1", 1, "acme.van-1", "s3cret-x", "acme.van-1", cloud_id=None
    )
    up._on_message(None, None, _msg(Channel.STORED, encode_stored_ack([(3, 3)], time_us=7)))
    assert box.queued_seqs() == [4, 5, 6]


def test_replays_for_lack_of_acks_back_off_until_an_ack_arrives(tmp_path: Path) -> None:
    from edge_agent.uplink import _InFlight

    box = Outbox(tmp_path / "o.sqlite")
    now = [0.0]
    cfg = UplinkConfig("acme", "van-1", "127.0.0.1", 1, "acme.van-1", "s3cret-x", "acme.van-1")
    up = Uplink(cfg, box, lambda _c: None, monotonic=lambda: now[0])
    box.add_fixes([Fix(0, 1_795_780_800_000_000 + i, 1, 1) for i in range(10)])
    replays = []
    for wait in (60.0, 120.0, 240.0, 240.0):  # 60 s doubled per fruitless replay, at most 4x
        up._inflight["telemetry"] = [_InFlight(1, 10, now[0])]
        now[0] += wait - 0.5
        up._check_timeouts("telemetry")
        assert up.counters["replay_timeout"] == len(replays)
        now[0] += 0.5
        up._check_timeouts("telemetry")
        replays.append(now[0])
        assert up.counters["replay_timeout"] == len(replays)
    up._on_message(None, None, _msg(Channel.STORED, encode_stored_ack([(1, 3)], time_us=5)))
    assert up.resend_after() == 60.0  # acks flow again: back to the configured delay


def test_sensor_acks_are_counted_not_deleted(tmp_path: Path) -> None:
    up, box, _ = _uplink(tmp_path)
    box.add_fixes([Fix(0, 1_795_780_800_000_000 + i, 1, 1) for i in range(3)])
    ack = encode_stored_ack([(1, 5), (9, 9)], time_us=5, stream="sensors")
    up._on_message(None, None, _msg(Channel.STORED, ack))
    assert up.counters["sensor_samples_stored"] == 6
    assert box.queued_seqs() == [1, 2, 3]  # telemetry seqs 1..3 untouched
