"""Stopping rules, one protocol (PyVRP's): called with the best cost so far, True = stop.

Instances are plain picklable objects, so they can be handed to PyVRP as they are and shipped
to worker processes. `runtime_limit` tells the portfolio how much wall time a rule allows.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from cloud.optimizer.errors import ParamsError


@runtime_checkable
class StoppingCriterion(Protocol):
    def __call__(self, best_cost: float) -> bool: ...


@dataclass
class MaxRuntime:
    """Stop after `seconds` of wall time, counted from the first call."""

    seconds: float
    _start: float | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.seconds >= 0:
            raise ParamsError("max runtime must be >= 0 s")

    def __call__(self, best_cost: float) -> bool:
        if self._start is None:
            self._start = time.perf_counter()
        return time.perf_counter() - self._start >= self.seconds


@dataclass
class MaxIterations:
    """Stop after `iterations` calls (one engine step each)."""

    iterations: int
    _count: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        if self.iterations < 0:
            raise ParamsError("max iterations must be >= 0")

    def __call__(self, best_cost: float) -> bool:
        self._count += 1
        return self._count > self.iterations


@dataclass
class NoImprovement:
    """Stop after `iterations` consecutive calls without a better best cost."""

    iterations: int
    _best: float = field(default=math.inf, repr=False)
    _since: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        if self.iterations < 0:
            raise ParamsError("no-improvement iterations must be >= 0")

    def __call__(self, best_cost: float) -> bool:
        if best_cost < self._best:
            self._best, self._since = best_cost, 0
        else:
            self._since += 1
        return self._since >= self.iterations


@dataclass
class FirstFeasible:
    """Stop as soon as the best solution is feasible (engines report infeasible as inf)."""

    def __call__(self, best_cost: float) -> bool:
        return best_cost < math.inf


@dataclass
class MultipleCriteria:
    """Stop when any of the rules says so."""

    criteria: tuple[StoppingCriterion, ...]

    def __post_init__(self) -> None:
        if not self.criteria:
            raise ParamsError("MultipleCriteria needs at least one rule")

    def __call__(self, best_cost: float) -> bool:
        # Call every rule so that each keeps its own count.
        verdicts = [crit(best_cost) for crit in self.criteria]
        return any(verdicts)


def runtime_limit(stop: StoppingCriterion) -> float | None:
    """The wall-time limit a rule implies (seconds), or None if it sets none."""
    if isinstance(stop, MaxRuntime):
        return stop.seconds
    if isinstance(stop, MultipleCriteria):
        limits = [x for x in (runtime_limit(c) for c in stop.criteria) if x is not None]
        return min(limits) if limits else None
    return None


@dataclass
class Deadline:
    """Stop at an absolute wall-clock time (time.time()); shared by cooperating processes."""

    at: float

    def __call__(self, best_cost: float) -> bool:
        return time.time() >= self.at
