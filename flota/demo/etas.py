"""The live view's "next stop" column: what a fleet-ops dashboard asks the model service.

For each vehicle, the first stop of the plan its agent holds (the route plan the dispatcher
sent, as the agent stored it) that the agent has not reported completed, and the vehicle's
latest position in the cloud, go to the ETA model (``flota models serve``, through its
client); answers are cached for a few seconds.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NextStop:
    stop_id: str
    stops_left: int
    eta_s: float | None  # the model's travel + nothing else: arrival in seconds from now
    planned_eta_s: float | None  # the dispatcher's own estimate, from the plan


@dataclass
class NextStopEtas:
    base_url: str
    every_s: float = 5.0
    answered: int = 0
    failed: int = 0
    _cache: dict[str, tuple[float, NextStop | None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from cloud.models_service.client import ModelServiceClient

        self.client = ModelServiceClient(self.base_url, timeout_s=2.0)

    def next_stop(
        self, vehicle: str, plan_path: Path, position: tuple[float, float] | None
    ) -> NextStop | None:
        now = time.monotonic()
        cached = self._cache.get(vehicle)
        if cached is not None and now - cached[0] < self.every_s:
            return cached[1]
        found = self._ask(plan_path, position)
        self._cache[vehicle] = (now, found)
        return found

    def _ask(self, plan_path: Path, position: tuple[float, float] | None) -> NextStop | None:
        from cloud.models_service.errors import ClientError

        try:
            plan = json.loads(plan_path.read_text())
        except (OSError, ValueError):
            return None  # no plan yet
        done = _done(plan_path.parent / "stops.json")
        stops = [s for s in plan.get("stops") or [] if s.get("id") not in done]
        if not stops or position is None:
            return None
        first = stops[0]
        eta_us = first.get("eta_us")
        planned = None if eta_us is None else eta_us / 1e6 - time.time()
        try:
            answer = self.client.eta(time.time(), [(first["lat"], first["lon"])], position)
        except (ClientError, ValueError) as err:
            self.failed += 1
            log.debug("ETA for %s: %s", first.get("id"), err)
            return NextStop(str(first.get("id")), len(stops), None, planned)
        self.answered += 1
        return NextStop(str(first.get("id")), len(stops), answer.stops[0].travel_s, planned)


def _done(path: Path) -> set[str]:
    """Stops the agent itself reported completed (its stop tracker's state), as a driver app
    would strike them off the list."""
    try:
        return {str(s) for s in json.loads(path.read_text()).get("done", [])}
    except (OSError, ValueError, AttributeError, TypeError):
        return set()
