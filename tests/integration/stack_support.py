"""Types and helpers shared by the integration tests and their conftest (importable by name,
unlike conftest.py itself)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STACK_ENV_FILE = REPO / ".stack" / "env"


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for line in path.read_text(encoding="utf-8").splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() and not name.lstrip().startswith("#"):
            values[name.strip()] = value.strip()
    return values


@dataclass(frozen=True)
class StackEnv:
    """The stack's environment: ``FLOTA_*`` variables from the process, else from .stack/env."""

    values: Mapping[str, str]

    def require(self, name: str) -> str:
        """The variable's value; fails the test with how to start the stack when it is unset."""
        value = self.values.get(name, "")
        if not value:
            pytest.fail(
                f"{name} is not set: the real local stack is not running. Start it with "
                f"deploy/local/start.sh (it writes {STACK_ENV_FILE}) or run the tests through "
                f"deploy/local/with-stack.sh / make test.",
                pytrace=False,
            )
        return value


@dataclass(frozen=True)
class MqttUser:
    username: str
    password: str


@dataclass(frozen=True)
class MqttDevice(MqttUser):
    tenant: str
    vehicle: str


@dataclass(frozen=True)
class MqttBroker:
    """Where Mosquitto listens, the cloud bridge's user and the registered test devices."""

    host: str
    port: int
    bridge: MqttUser
    devices: tuple[MqttDevice, ...]
