"""`flota demo` against the real local stack (Mosquitto with per-device credentials and access
rules, Apache Kafka, TimescaleDB): the same command and code paths as on the embedded default,
chosen by environment variables only."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from stack_support import StackEnv

NEEDED = ("FLOTA_DATABASE_URL", "FLOTA_KAFKA_BOOTSTRAP", "FLOTA_MQTT_HOST", "FLOTA_MQTT_PORT",
          "FLOTA_MQTT_USERNAME", "FLOTA_MQTT_PASSWORD", "FLOTA_MQTT_DEVICES_FILE")  # fmt: skip


@pytest.mark.slow
def test_demo_runs_on_the_real_services_named_by_the_environment(stack_env: StackEnv) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOTA_")}
    env.update({k: stack_env.require(k) for k in NEEDED})
    env["FLOTA_DEMO_INFRA"] = "external"
    proc = subprocess.run(
        [sys.executable, "-m", "flota", "demo", "--vehicles", "3", "--duration", "40"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "external: PostgreSQL" in proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["vehicles"] == 3
    assert summary["fixes_sent"] >= 3 * 40 // 3 // 2
    assert summary["fixes_stored"] == summary["fixes_sent"]
    assert summary["lost"] == 0
    assert summary["duplicates"] == 0
    assert summary["unknown_rows"] is None  # shared services: only our own keys are judged
    assert summary["plans_refused"] == 0
    assert summary["plans_acked"] >= 1, (summary, proc.stderr[-3000:])
