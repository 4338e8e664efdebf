"""`flota nmea decode`: one JSON object per epoch with a fix, counters on stderr."""

from __future__ import annotations

import json
from pathlib import Path

from gps_helpers import DATA
from typer.testing import CliRunner

from flota.cli import app

KEYS = ["time", "lat", "lon", "alt", "speed", "track", "mode", "quality", "hdop", "sats"]


def test_decode_prints_json_lines() -> None:
    result = CliRunner().invoke(app, ["nmea", "decode", str(DATA / "gpsd" / "garmin17n.log")])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["time"] for line in lines] == [
        "2005-03-16T09:38:02.000Z",
        "2005-03-16T09:38:03.000Z",
    ]
    first = lines[0]
    assert list(first) == KEYS
    assert abs(first["lat"] - 52.219065) < 1e-9
    assert abs(first["lon"] - 21.010851667) < 1e-6
    assert (first["alt"], first["speed"], first["track"]) == (137.2, 0.0, 226.0)
    assert (first["mode"], first["quality"], first["hdop"], first["sats"]) == (3, 2, 0.9, 10)
    assert "comment_line=9" in result.stderr


def test_decode_several_files_with_stats(tmp_path: Path) -> None:
    gga_only = tmp_path / "gga.log"
    gga_only.write_bytes(
        b"# no date in this stream\r\n"
        b"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n"
    )
    files = [str(DATA / "gpsd" / "nmea-rtk.log"), str(gga_only)]
    result = CliRunner().invoke(app, ["nmea", "decode", *files, "--stats"])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 122  # as many as gpsd reports
    stats = json.loads(result.stderr.strip().splitlines()[-1])
    assert stats["skipped_without_date"] == 1
    assert stats["used_GGA"] > 100


def test_compare_prints_the_table() -> None:
    logs = [str(DATA / "gpsd" / n) for n in ("garmin17n.log", "rst39.log")]
    result = CliRunner().invoke(app, ["nmea", "compare", *logs])
    assert result.exit_code == 0, result.output
    assert "| garmin17n.log | 2 | 2 | 100.0% | 0 | 0 | 0 | 0 |" in result.stdout
    assert "| rst39.log | 40 | 0 | 0.0% | 40 | 40 | 0 | 1 |" in result.stdout
