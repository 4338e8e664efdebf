"""Exponential backoff for reopening a lost source: quick first retry, capped, reset on data."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Backoff:
    initial_s: float = 0.2
    maximum_s: float = 30.0
    factor: float = 2.0
    _next_s: float = 0.0

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.maximum_s or self.factor < 1:
            raise ValueError("backoff needs 0 < initial_s <= maximum_s and factor >= 1")
        self._next_s = self.initial_s

    def next_delay(self) -> float:
        delay = self._next_s
        self._next_s = min(self._next_s * self.factor, self.maximum_s)
        return delay

    def reset(self) -> None:
        self._next_s = self.initial_s
