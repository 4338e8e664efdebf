"""Benchmark: wire (not built yet)."""

from __future__ import annotations

from flota.commands._common import not_built


def run() -> None:
    not_built("bench wire", 2)
