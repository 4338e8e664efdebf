"""Fixtures for tests against the real local stack (Mosquitto, Kafka, TimescaleDB).

The stack is started by ``deploy/local/start.sh`` (``make test`` does it through
``deploy/local/with-stack.sh``), which writes the services' addresses and generated credentials
to ``.stack/env``. Values come from the process environment first, then from that file, so
``deploy/local/start.sh && .venv/bin/pytest tests/integration`` works too. A missing value fails
the test: a real component that is not running is a failure, never a skip.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from stack_support import (
    STACK_ENV_FILE,
    MqttBroker,
    MqttDevice,
    MqttUser,
    StackEnv,
    read_env_file,
)

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder needs the stack: mark it ``integration``."""
    for item in items:
        if _HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def stack_env() -> StackEnv:
    merged = read_env_file(STACK_ENV_FILE)
    merged.update({k: v for k, v in os.environ.items() if k.startswith("FLOTA_")})
    return StackEnv(merged)


@pytest.fixture(scope="session")
def database_url(stack_env: StackEnv) -> str:
    """TimescaleDB's URL (FLOTA_DATABASE_URL, written by deploy/local/timescaledb.sh)."""
    return stack_env.require("FLOTA_DATABASE_URL")


@pytest.fixture(scope="session")
def kafka_bootstrap(stack_env: StackEnv) -> str:
    """Kafka's bootstrap address (FLOTA_KAFKA_BOOTSTRAP, written by deploy/local/kafka.sh)."""
    return stack_env.require("FLOTA_KAFKA_BOOTSTRAP")


@pytest.fixture(scope="session")
def mqtt_broker(stack_env: StackEnv) -> MqttBroker:
    devices_file = Path(stack_env.require("FLOTA_MQTT_DEVICES_FILE"))
    if not devices_file.exists():
        pytest.fail(
            f"FLOTA_MQTT_DEVICES_FILE={devices_file} does not exist: run deploy/local/start.sh",
            pytrace=False,
        )
    devices = tuple(
        MqttDevice(
            username=d["username"], password=d["password"], tenant=d["tenant"], vehicle=d["vehicle"]
        )
        for d in json.loads(devices_file.read_text(encoding="utf-8"))
    )
    return MqttBroker(
        host=stack_env.require("FLOTA_MQTT_HOST"),
        port=int(stack_env.require("FLOTA_MQTT_PORT")),
        bridge=MqttUser(
            stack_env.require("FLOTA_MQTT_USERNAME"), stack_env.require("FLOTA_MQTT_PASSWORD")
        ),
        devices=devices,
    )
