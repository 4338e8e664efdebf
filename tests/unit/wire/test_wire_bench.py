"""`flota bench wire --json` prints one JSON line with the figures the docs quote."""

from __future__ import annotations

import json
from pathlib import Path

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


def _nmea(body: str) -> str:
    checksum = 0
    for ch in body:
        checksum ^= ord(ch)
    return f"${body}*{checksum:02X}\r\n"


def test_bench_wire_measures_real_nmea_captures(tmp_path: Path) -> None:
    lines = []
    for i in range(12):
        hhmmss = f"0800{i:02d}.00"
        lat = f"6010.{1940 + i:04d}"
        lines.append(_nmea(f"GPGGA,{hhmmss},{lat},N,02456.3040,E,1,09,0.9,25.3,M,17.0,M,,"))
        lines.append(_nmea(f"GPRMC,{hhmmss},A,{lat},N,02456.3040,E,0.5,12.3,281126,,,A"))
    capture = tmp_path / "drive.log"
    capture.write_text("".join(lines))
    result = CliRunner().invoke(
        app,
        ["bench", "wire", "--json", "--seconds", "60", "--budget", "0.01", "--nmea", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    real = json.loads(result.output)["nmea"]
    assert real["captures"] == 1
    assert real["fixes"] == 12
    assert 0 < real["bytes_per_fix"] < real["bytes_per_fix_mqtt5_topic_alias"]
