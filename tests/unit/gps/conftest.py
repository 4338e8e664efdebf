"""Shared fixtures for the GPS tests: paths to the copied captures."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "data" / "nmea"


def with_checksum(body: str) -> str:
    """`GPGGA,...` -> `$GPGGA,...*hh`."""
    value = 0
    for char in body.encode("ascii"):
        value ^= char
    return f"${body}*{value:02X}"


@pytest.fixture(scope="session")
def gpsd_logs() -> list[Path]:
    logs = sorted((DATA / "gpsd").glob("*.log"))
    assert len(logs) == 30
    return logs
