"""Helpers shared by the GPS tests (a uniquely named module: every test area has a conftest)."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "data" / "nmea"


def with_checksum(body: str) -> str:
    """`GPGGA,...` -> `$GPGGA,...*hh`."""
    value = 0
    for char in body.encode("ascii"):
        value ^= char
    return f"${body}*{value:02X}"
