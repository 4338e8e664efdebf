"""Progress along the route plan: which stop the vehicle reached (``stop_arrived``) and which it
has served and left (``stop_completed``), seen from its own GPS.

Arrival: within ``arrive_radius_m`` of a pending stop (not done, not already arrived), at a low
speed (<= ``arrive_speed_mps``), on every fix for at least ``arrive_dwell_s``. Any pending stop
may be the one (drivers reorder); the nearest within the radius is tried first. Completion:
after arrival, a fix farther than ``depart_radius_m`` from the stop, or an arrival at another
stop while this one is farther than ``arrive_radius_m``. ``dwell_s`` is the time from the
arrival (the start of the dwell) to the last fix within ``arrive_radius_m``.

Stop ids are the plan's; the dispatcher writes ``order:task``, so order and task are the parts
around the last ``:``. A new plan keeps what was done by stop id: a stop completed under an
earlier plan is never reported again.

Exactly once across restarts: before the events go to the outbox, the new state and the events
are written (atomic file replace) together with the outbox's next event seq; after a crash, the
events whose seqs the outbox has not handed out since are emitted again, the others not.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_agent.commands import write_atomic
from edge_agent.reporting import EARTH_RADIUS_M, distance_m
from flota_wire import EventKind

log = logging.getLogger(__name__)

STOP_ARRIVED = EventKind.STOP_ARRIVED.value
STOP_COMPLETED = EventKind.STOP_COMPLETED.value
M_PER_DEG_LAT = math.radians(1.0) * EARTH_RADIUS_M
DONE_KEEP = 1000  # completed stop ids remembered, oldest forgotten first (days of stops)
STATE_VERSION = 1

Details = dict[str, str | int | float | bool | None]


@dataclass(frozen=True)
class StopConfig:
    """Thresholds in metres, m/s and seconds."""

    arrive_radius_m: float = 75.0
    arrive_speed_mps: float = 2.5
    arrive_dwell_s: float = 10.0
    depart_radius_m: float = 150.0

    def __post_init__(self) -> None:
        values = (self.arrive_radius_m, self.arrive_speed_mps, self.arrive_dwell_s,
                  self.depart_radius_m)  # fmt: skip
        if not all(math.isfinite(v) for v in values):
            raise ValueError("stop thresholds must be finite numbers")
        if self.arrive_radius_m <= 0 or self.arrive_speed_mps <= 0 or self.arrive_dwell_s < 0:
            raise ValueError("stop_arrive_radius_m, stop_arrive_speed_mps > 0, dwell >= 0")
        if self.depart_radius_m <= self.arrive_radius_m:
            raise ValueError("stop_depart_radius_m must be greater than stop_arrive_radius_m")


@dataclass(frozen=True)
class StopEvent:
    """One event for the outbox: kind, when (the fix's time) and its details."""

    kind: str
    time_us: int
    details: Details


@dataclass(frozen=True)
class PlanStop:
    id: str
    lat: float
    lon: float
    index: int  # position in the plan


@dataclass
class Arrival:
    """A stop the vehicle arrived at and has not left yet."""

    arrived_s: float
    last_near_s: float

    def to_json(self) -> dict[str, float]:
        return {"arrived_s": self.arrived_s, "last_near_s": self.last_near_s}


@dataclass
class _Approach:
    stop_id: str
    since_s: float


@dataclass
class _State:
    plan_id: str | None = None
    done: dict[str, None] = field(default_factory=dict)  # an ordered set
    arrived: dict[str, Arrival] = field(default_factory=dict)


def split_stop_id(stop_id: str) -> Details:
    """``order:task`` -> {"order", "task"} (split at the last ``:``; empty parts left out)."""
    order, sep, task = stop_id.rpartition(":")
    if not sep:
        return {}
    out: Details = {}
    if order:
        out["order"] = order
    if task:
        out["task"] = task
    return out


def _finite(raw: Any) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        return None
    return float(raw)


class StopTracker:
    """Fed with the current plan (``set_plan``) and every GPS epoch (``offer``); emits through
    ``emit`` and persists to ``state_path``. ``next_event_seq`` is the outbox's next seq of the
    events stream (the crash-recovery mark)."""

    def __init__(
        self,
        state_path: Path,
        config: StopConfig,
        emit: Callable[[StopEvent], None],
        next_event_seq: Callable[[], int],
    ) -> None:
        self.state_path = state_path
        self.config = config
        self.emit = emit
        self.next_event_seq = next_event_seq
        self.counters: Counter[str] = Counter()
        self.stops: list[PlanStop] = []
        self._state = _State()
        self._approach: _Approach | None = None
        self._last: tuple[float, float, float] | None = None  # time_s, lat, lon
        self._by_id: dict[str, PlanStop] = {}
        self._journal: list[StopEvent] = []
        self._mark = 0
        self._load()

    # -- state ----------------------------------------------------------------------------
    @property
    def plan_id(self) -> str | None:
        return self._state.plan_id

    @property
    def done(self) -> set[str]:
        return set(self._state.done)

    @property
    def arrived(self) -> dict[str, Arrival]:
        return dict(self._state.arrived)

    def pending(self) -> list[PlanStop]:
        """The plan's stops not yet done, in plan order (arrived ones included)."""
        return [s for s in self.stops if s.id not in self._state.done]

    def _load(self) -> None:
        try:
            raw = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as err:
            self.counters["state_unreadable"] += 1
            log.error("stop state %s unreadable (%s): starting without it", self.state_path, err)
            return
        try:
            plan_id = raw.get("plan_id")
            self._state = _State(
                plan_id=plan_id if isinstance(plan_id, str) else None,
                done={str(s): None for s in raw.get("done", [])},
                arrived={
                    str(k): Arrival(float(v["arrived_s"]), float(v["last_near_s"]))
                    for k, v in raw.get("arrived", {}).items()
                },
            )
            journal = raw.get("journal") or {}
            self._mark = int(journal.get("mark", 0))
            self._journal = [
                StopEvent(str(e["kind"]), int(e["time_us"]), dict(e["details"]))
                for e in journal.get("events", [])
            ]
        except (AttributeError, KeyError, TypeError, ValueError) as err:
            self.counters["state_unreadable"] += 1
            log.error("stop state %s malformed (%s): starting without it", self.state_path, err)
            self._state, self._journal = _State(), []

    def _save(self) -> None:
        st = self._state
        doc = {
            "v": STATE_VERSION,
            "plan_id": st.plan_id,
            "done": list(st.done),
            "arrived": {k: a.to_json() for k, a in st.arrived.items()},
            "journal": {
                "mark": self._mark,
                "events": [
                    {"kind": e.kind, "time_us": e.time_us, "details": e.details}
                    for e in self._journal
                ],
            },
        }
        write_atomic(self.state_path, json.dumps(doc, separators=(",", ":")).encode())

    def recover(self) -> int:
        """After a restart: emit the journalled events the outbox did not take; return how
        many. Call once, before the first ``offer``."""
        if not self._journal:
            return 0
        taken = max(0, min(len(self._journal), self.next_event_seq() - self._mark))
        self._journal = self._journal[taken:]
        n = len(self._journal)
        if n:
            log.warning("stops: %d event(s) journalled but not in the outbox: emitting them", n)
            self.counters["events_recovered"] += n
        self._flush()
        return n

    def _flush(self) -> None:
        """Journal, emit one by one (each into the outbox), then clear the journal."""
        if self._journal:
            self._mark = self.next_event_seq()
            self._save()
            while self._journal:
                self.emit(self._journal[0])
                self._journal.pop(0)
                self._mark += 1
        self._save()

    # -- plan -----------------------------------------------------------------------------
    def set_plan(self, plan: Mapping[str, Any] | None) -> None:
        """The current plan (the route_plan payload as stored), or None for none."""
        stops: list[PlanStop] = []
        seen: set[str] = set()
        raw_stops = plan.get("stops") if isinstance(plan, Mapping) else None
        plan_id = plan.get("plan_id") if isinstance(plan, Mapping) else None
        for i, s in enumerate(raw_stops if isinstance(raw_stops, list) else []):
            sid = s.get("id") if isinstance(s, Mapping) else None
            lat = _finite(s.get("lat")) if isinstance(s, Mapping) else None
            lon = _finite(s.get("lon")) if isinstance(s, Mapping) else None
            if not isinstance(sid, str) or not sid or lat is None or lon is None:
                self.counters["plan_stops_invalid"] += 1
                log.warning("stops: plan %s stop %d invalid, not tracked: %r", plan_id, i, s)
                continue
            if sid in seen:
                self.counters["plan_stops_duplicate"] += 1
                log.warning("stops: plan %s repeats stop id %r; the first is tracked", plan_id,
                            sid)  # fmt: skip
                continue
            seen.add(sid)
            stops.append(PlanStop(sid, lat, lon, i))
        self.stops = stops
        st = self._state
        new_id = plan_id if isinstance(plan_id, str) else None
        changed = new_id != st.plan_id
        st.plan_id = new_id
        for sid in [k for k in st.arrived if k not in seen]:
            del st.arrived[sid]  # cancelled or moved to another vehicle while we were there
            self.counters["arrivals_dropped_by_plan"] += 1
            log.info("stops: arrived stop %s is not in plan %s any more: not reported", sid,
                     new_id)  # fmt: skip
            changed = True
        self._by_id = {s.id: s for s in stops}
        if self._approach is not None and self._approach.stop_id not in seen:
            self._approach = None
        if changed:
            self._save()

    # -- fixes ----------------------------------------------------------------------------
    def offer(
        self, time_s: float, lat: float, lon: float, speed_mps: float | None
    ) -> list[StopEvent]:
        """One GPS epoch (seconds since the epoch, degrees, m/s or None: derived from the
        previous epoch). Returns the events emitted."""
        if not (math.isfinite(time_s) and math.isfinite(lat) and math.isfinite(lon)):
            self.counters["fixes_invalid"] += 1
            return []
        last = self._last
        if last is not None and time_s <= last[0]:
            self.counters["fixes_not_newer"] += 1
            return []
        if self._journal:  # an emit that failed earlier: retry before anything new
            self._flush()
        if speed_mps is None or not math.isfinite(speed_mps):
            speed_mps = None
            if last is not None:
                speed_mps = distance_m(last[1], last[2], lat, lon) / (time_s - last[0])
        self._last = (time_s, lat, lon)
        if not self.stops and not self._state.arrived:
            return []
        cfg = self.config
        st = self._state
        by_id = self._by_id
        events: list[StopEvent] = []
        # leaving: arrived stops now beyond the departure radius are completed
        for sid, arr in list(st.arrived.items()):
            stop = by_id.get(sid)
            if stop is None:  # no plan given yet (set_plan drops arrivals of other plans)
                continue
            d = distance_m(lat, lon, stop.lat, stop.lon)
            if d <= cfg.arrive_radius_m:
                arr.last_near_s = time_s
            elif d > cfg.depart_radius_m:
                events.append(self._complete(stop, arr, time_s, lat, lon))
        # arriving: the nearest pending stop within the radius, at low speed, for the dwell
        slow = speed_mps is None or speed_mps <= cfg.arrive_speed_mps
        target = self._nearest(lat, lon) if slow else None
        if target is None:
            self._approach = None
        else:
            d, _, stop = target
            if self._approach is None or self._approach.stop_id != stop.id:
                self._approach = _Approach(stop.id, time_s)
            if time_s - self._approach.since_s >= cfg.arrive_dwell_s:
                since = self._approach.since_s
                self._approach = None
                for sid, arr in list(st.arrived.items()):  # moved on from an earlier stop
                    other = by_id.get(sid)
                    if other is not None and (
                        distance_m(lat, lon, other.lat, other.lon) > cfg.arrive_radius_m
                    ):
                        events.append(self._complete(other, arr, time_s, lat, lon))
                events.append(self._arrive(stop, since, time_s, d, lat, lon))
        if events:
            self._journal.extend(events)
            self._flush()
        return events

    def _nearest(self, lat: float, lon: float) -> tuple[float, int, PlanStop] | None:
        """The nearest pending, not arrived stop within the arrival radius (plan order on a
        tie). A box in degrees first: a plan may hold 1000 stops and this runs every epoch."""
        st, radius = self._state, self.config.arrive_radius_m
        dlat = radius / M_PER_DEG_LAT * 1.01
        dlon = dlat / max(math.cos(math.radians(lat)), 1e-3)
        best: tuple[float, int, PlanStop] | None = None
        for s in self.stops:
            if abs(s.lat - lat) > dlat or abs((s.lon - lon + 180.0) % 360.0 - 180.0) > dlon:
                continue
            if s.id in st.done or s.id in st.arrived:
                continue
            d = distance_m(lat, lon, s.lat, s.lon)
            if d <= radius and (best is None or (d, s.index) < best[:2]):
                best = (d, s.index, s)
        return best

    def _base(self, stop: PlanStop, lat: float, lon: float) -> Details:
        return {
            "plan_id": self._state.plan_id,
            "stop_id": stop.id,
            **split_stop_id(stop.id),
            "lat": round(lat, 6),
            "lon": round(lon, 6),
        }

    def _arrive(
        self, stop: PlanStop, since_s: float, time_s: float, d: float, lat: float, lon: float
    ) -> StopEvent:
        st = self._state
        first = next((s for s in self.stops if s.id not in st.done), None)
        in_order = first is not None and first.id == stop.id
        st.arrived[stop.id] = Arrival(since_s, time_s)
        self.counters["arrived"] += 1
        if not in_order:
            self.counters["arrived_out_of_order"] += 1
        details = {**self._base(stop, lat, lon), "distance_m": round(d, 1), "in_order": in_order}
        return StopEvent(STOP_ARRIVED, round(time_s * 1e6), details)

    def _complete(
        self, stop: PlanStop, arr: Arrival, time_s: float, lat: float, lon: float
    ) -> StopEvent:
        st = self._state
        del st.arrived[stop.id]
        st.done[stop.id] = None
        while len(st.done) > DONE_KEEP:
            del st.done[next(iter(st.done))]
        self.counters["completed"] += 1
        dwell = round(max(0.0, arr.last_near_s - arr.arrived_s), 1)
        details = {**self._base(stop, lat, lon), "dwell_s": dwell,
                   "arrived_us": round(arr.arrived_s * 1e6)}  # fmt: skip
        return StopEvent(STOP_COMPLETED, round(time_s * 1e6), details)
