"""The pydantic-free settings loader: types from strings, every problem at once, files (.env and
TOML) with unknown keys refused, the cloud id and its "any" spellings, secrets never printed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.settings import AgentSettings, Secret, SettingsError, load_settings

ENV = {
    "FLOTA_AGENT_TENANT": "acme",
    "FLOTA_AGENT_VEHICLE": "van-1",
    "FLOTA_AGENT_MQTT_USERNAME": "acme.van-1",
    "FLOTA_AGENT_MQTT_PASSWORD": "k8#Lq-long",
}


def test_strings_become_typed_values(tmp_path: Path) -> None:
    s = load_settings(
        environ={
            **ENV,
            "FLOTA_AGENT_MQTT_PORT": "1883",
            "flota_agent_mqtt_topic_alias": "off",  # names are case-insensitive
            "FLOTA_AGENT_BATCH_INTERVAL_S": "2.5",
            "FLOTA_AGENT_STATE_DIR": str(tmp_path),
            "FLOTA_AGENT_GPS_BAUD": "",  # empty optional: unset (detect)
            "FLOTA_AGENT_CAN_SIGNALS": "EngineSpeed, VehicleSpeed ,",
        }
    )
    assert (s.mqtt_port, s.mqtt_topic_alias, s.batch_interval_s) == (1883, False, 2.5)
    assert s.gps_baud is None
    assert s.state_dir == tmp_path
    assert s.can_signal_names == ("EngineSpeed", "VehicleSpeed")
    assert s.mqtt_password.get_secret_value() == "k8#Lq-long"
    assert "k8#Lq" not in repr(s)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(
            environ={
                **ENV,
                "FLOTA_AGENT_MQTT_PORT": "70000",
                "FLOTA_AGENT_MQTT_PROTOCOL": "4",
                "FLOTA_AGENT_MQTT_TOPIC_ALIAS": "maybe",
                "FLOTA_AGENT_BATCH_MAX_FIXES": "1.5",
                "FLOTA_AGENT_RESEND_AFTER_S": "nan",
            }
        )
    text = str(info.value)
    assert len(info.value.problems) == 5
    for name in ("mqtt_port", "mqtt_protocol", "mqtt_topic_alias", "batch_max_fixes", "resend"):
        assert name in text


def test_missing_fields_and_bad_values_together() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(environ={"FLOTA_AGENT_MQTT_PASSWORD": "changeme"})
    text = str(info.value)
    assert "tenant: required" in text
    assert "default or empty" in text


def test_files_env_and_toml(tmp_path: Path) -> None:
    env_file = tmp_path / "agent.env"
    env_file.write_text(
        "# comment\nexport FLOTA_AGENT_TENANT=acme\nFLOTA_AGENT_VEHICLE='van-1'\n"
        'FLOTA_AGENT_MQTT_USERNAME="u"\nFLOTA_AGENT_MQTT_PASSWORD=k8#Lq-long\n'
        "FLOTA_AGENT_MQTT_PORT=1883\n"
    )
    s = load_settings(env_file, environ={"FLOTA_AGENT_MQTT_PORT": "1884"})
    assert (s.vehicle, s.mqtt_username, s.mqtt_port) == ("van-1", "u", 1884)  # env wins
    env_file.write_text(env_file.read_text() + "FLOTA_AGENT_MQTT_PROT=5\n")
    with pytest.raises(SettingsError, match="unknown variables FLOTA_AGENT_MQTT_PROT"):
        load_settings(env_file, environ={})
    toml = tmp_path / "agent.toml"
    toml.write_text(
        '[agent]\ntenant = "acme"\nvehicle = "van-2"\nmqtt_username = "u"\n'
        'mqtt_password = "k8#Lq-long"\nreport_heading_deg = 15\nmqtt_topic_alias = false\n'
    )
    s = load_settings(toml, environ={})
    assert (s.vehicle, s.report_heading_deg, s.mqtt_topic_alias) == ("van-2", 15.0, False)
    toml.write_text('[agent]\ntenant = "acme"\nvehical = "x"\n')
    with pytest.raises(SettingsError, match="unknown keys vehical"):
        load_settings(toml, environ={})


def test_cloud_id_default_any_and_fallback_variable() -> None:
    assert load_settings(environ=ENV).cloud_id == "flota"
    assert load_settings(environ={**ENV, "FLOTA_CLOUD_ID": "eu-1"}).cloud_id == "eu-1"
    both = {**ENV, "FLOTA_CLOUD_ID": "eu-1", "FLOTA_AGENT_CLOUD_ID": "eu-2"}
    assert load_settings(environ=both).cloud_id == "eu-2"  # the agent's own variable wins
    for anything in ("", "*", "any"):
        assert load_settings(environ={**ENV, "FLOTA_AGENT_CLOUD_ID": anything}).cloud_id is None
    with pytest.raises(SettingsError, match="cloud_id"):
        load_settings(environ={**ENV, "FLOTA_AGENT_CLOUD_ID": "a/b"})


def test_constructed_directly_with_typed_values(tmp_path: Path) -> None:
    s = AgentSettings(
        tenant="acme", vehicle="van-1", mqtt_username="u", mqtt_password=Secret("k8#Lq-long"),
        state_dir=tmp_path, mqtt_port=1883,
    )  # fmt: skip
    assert s.outbox_path == tmp_path / "outbox.sqlite"
    with pytest.raises(SettingsError, match="not a readable file"):
        AgentSettings(
            tenant="acme", vehicle="van-1", mqtt_username="u", mqtt_password=Secret("k8#Lq-long"),
            can_dbc=tmp_path / "missing.dbc",
        )  # fmt: skip


def test_the_agent_imports_no_pydantic() -> None:
    code = (
        "import sys, edge_agent.agent, edge_agent.__main__; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('pydantic', 'pydantic_settings', 'pandas', 'urllib.request')]; print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
