"""`flota agent ...` commands that need no running agent."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from edge_agent.outbox import Outbox
from flota.commands.agent import app
from flota_wire import Fix


def test_outbox_command_prints_counters_and_integrity(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.sqlite")
    box.add_fixes([Fix(0, 1_795_780_800_000_000, 1, 1)] * 3)
    box.ack("telemetry", [(1, 1)])
    box.close()
    result = CliRunner().invoke(app, ["outbox", "--state-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["fix_rows"] == 2
    assert out["acked:telemetry"] == 1
    assert out["integrity_ok"] is True


def test_outbox_and_stats_commands_refuse_missing_files(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["outbox", "--state-dir", str(tmp_path)]).exit_code == 1
    assert not (tmp_path / "outbox.sqlite").exists()
    assert runner.invoke(app, ["stats", "--state-dir", str(tmp_path)]).exit_code == 1


def test_run_refuses_bad_settings(tmp_path: Path) -> None:
    env_file = tmp_path / "agent.env"
    env_file.write_text("FLOTA_AGENT_TENANT=acme\nFLOTA_AGENT_MQTT_PASSWORD=changeme\n")
    result = CliRunner().invoke(app, ["run", "--env-file", str(env_file)])
    assert result.exit_code == 2
    assert "default or empty" in result.output
