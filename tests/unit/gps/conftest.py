"""Fixtures for the GPS tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from gps_helpers import DATA


@pytest.fixture(scope="session")
def gpsd_logs() -> list[Path]:
    logs = sorted((DATA / "gpsd").glob("*.log"))
    assert len(logs) == 30
    return logs
