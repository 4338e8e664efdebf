"""`flota bench wire --json` prints one JSON line with the figures the docs quote."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from flota.cli import app


def test_bench_wire_json_line() -> None:
    result = CliRunner().invoke(
        app, ["bench", "wire", "--json", "--seconds", "120", "--budget", "0.01"]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    figures = json.loads(lines[0])
    mqtt = figures["bytes_per_fix_mqtt"]
    assert figures["bench"] == "wire"
    assert figures["topic"] == "flota/v1/acme/van-0042/up/telemetry"
    assert 0 < figures["bytes_per_fix"] < mqtt["mqtt5_topic_alias"] < mqtt["mqtt311"]
    assert mqtt["mqtt311"] < mqtt["mqtt5"]
    assert figures["position_only_bytes_per_fix"] < figures["bytes_per_fix"]
    assert figures["decode_fixes_per_s"] > 0
    assert figures["encode_fixes_per_s"] > 0
    assert figures["hz10"]["fixes_per_batch"] > 90
