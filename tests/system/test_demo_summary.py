"""`flota demo` end to end on the embedded default (embedded PostgreSQL, Tansu, an MQTT
broker), as a user runs it: five real edge agents read NMEA, MCU frames and an ELM327 from
pseudo-terminals; the summary must show every accepted fix stored once and plans applied."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_demo_stores_every_fix_once_and_plans_are_applied() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "flota", "demo", "--vehicles", "5", "--duration", "60"],
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["vehicles"] == 5
    # Adaptive reporting keeps at least one fix per 3 s of driving (the demo's setting).
    assert summary["fixes_sent"] >= 5 * 60 // 3 // 2
    assert summary["fixes_stored"] == summary["fixes_sent"]
    assert summary["lost"] == 0
    assert summary["duplicates"] == 0
    assert summary["unknown_rows"] == 0
    assert summary["plans_acked"] >= 1
    assert summary["plans_refused"] == 0
    assert summary["plans_acked"] <= summary["plans_pushed"]
    assert summary["ready_s"] is not None
    assert summary["eta_answers"] >= 1  # the live view asked the model service
    # CAN frames over the MCU link and OBD-II through the ELM327 reached the database.
    assert summary["sensor_samples"].get("can0", 0) >= 5
    assert summary["sensor_samples"].get("obd", 0) >= 5
