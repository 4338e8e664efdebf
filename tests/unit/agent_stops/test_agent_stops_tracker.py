"""StopTracker: arrival needs a dwell at low speed near a stop, completion needs a departure;
reordering, new plan versions, restarts (exactly once through the journal), odd plans."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from edge_agent.stops import (
    STOP_ARRIVED,
    STOP_COMPLETED,
    StopConfig,
    StopEvent,
    StopTracker,
    split_stop_id,
)

LAT0, LON0 = 60.17, 24.94
M_PER_DEG_LAT = 111_195.0  # at the reporting module's Earth radius
T0 = 1_800_000_000.0


def north(m: float, east: float = 0.0) -> tuple[float, float]:
    """A point ``m`` metres north (and ``east`` metres east) of (LAT0, LON0)."""
    return (
        LAT0 + m / M_PER_DEG_LAT,
        LON0 + east / (M_PER_DEG_LAT * math.cos(math.radians(LAT0))),
    )


STOP_A = north(0)
STOP_B = north(1000)
STOP_C = north(2000)


def plan(plan_id: str, *stops: tuple[str, tuple[float, float]]) -> dict[str, Any]:
    return {
        "plan_id": plan_id,
        "stops": [{"id": sid, "lat": p[0], "lon": p[1], "eta_us": None, "service_s": None}
                  for sid, p in stops],
    }  # fmt: skip


class FakeOutbox:
    """The events stream of an outbox: one seq per event; can fail like a crash."""

    def __init__(self, next_seq: int = 100) -> None:
        self.seq = next_seq
        self.events: list[StopEvent] = []
        self.crash_after: int | None = None

    def emit(self, ev: StopEvent) -> None:
        if self.crash_after is not None and len(self.events) >= self.crash_after:
            raise KeyboardInterrupt("power cut")
        self.events.append(ev)
        self.seq += 1

    def next_seq(self) -> int:
        return self.seq


def tracker(path: Path, box: FakeOutbox, config: StopConfig | None = None) -> StopTracker:
    return StopTracker(path, config or StopConfig(), box.emit, box.next_seq)


@pytest.fixture
def box() -> FakeOutbox:
    return FakeOutbox()


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "stops.json"


class Drive:
    """Feeds a tracker one fix per second."""

    def __init__(self, t: StopTracker) -> None:
        self.t = t
        self.now = T0
        self.events: list[StopEvent] = []

    def at(self, pos: tuple[float, float], seconds: int, speed: float | None = 0.0) -> None:
        for _ in range(seconds):
            self.now += 1.0
            self.events += self.t.offer(self.now, pos[0], pos[1], speed)

    def kinds(self) -> list[tuple[str, Any]]:
        return [(e.kind, e.details["stop_id"]) for e in self.events]


def test_arrival_needs_the_dwell_and_completion_a_departure(state: Path, box: FakeOutbox) -> None:
    t = tracker(state, box)
    t.set_plan(plan("p1", ("o-1:delivery", STOP_A), ("o-2:pickup", STOP_B)))
    d = Drive(t)
    d.at(north(30), 10, speed=0.5)  # 9 s since the first slow fix near it: not yet
    assert d.events == []
    d.at(north(30), 1, speed=0.5)
    assert d.kinds() == [(STOP_ARRIVED, "o-1:delivery")]
    arrived = d.events[0]
    assert arrived.details["order"] == "o-1"
    assert arrived.details["task"] == "delivery"
    assert arrived.details["plan_id"] == "p1"
    assert arrived.details["in_order"] is True
    assert arrived.time_us == round(d.now * 1e6)
    d.at(north(10), 50)  # served for a while
    d.at(north(120), 5, speed=8.0)  # between the radii: still there
    assert len(d.events) == 1
    d.at(north(200), 1, speed=10.0)  # gone
    assert d.kinds()[-1] == (STOP_COMPLETED, "o-1:delivery")
    done = d.events[-1].details
    assert done["dwell_s"] == 60.0  # from the first slow fix to the last one within 75 m
    assert (done["lat"], done["lon"]) == (round(north(200)[0], 6), round(north(200)[1], 6))
    assert t.done == {"o-1:delivery"}
    assert [s.id for s in t.pending()] == ["o-2:pickup"]
    assert box.events == d.events  # every event went to the outbox


def test_drive_by_at_speed_does_not_arrive(state: Path, box: FakeOutbox) -> None:
    t = tracker(state, box)
    t.set_plan(plan("p1", ("o-1:delivery", STOP_A)))
    d = Drive(t)
    for m in range(-200, 200, 10):  # 10 m/s straight past the stop
        d.at(north(m), 1, speed=10.0)
    d.at(north(40), 30, speed=3.0)  # crawling in a queue just above the speed threshold
    assert d.events == []
    d.at(north(80), 30, speed=0.0)  # parked, but 80 m away: outside the radius
    assert d.events == []


def test_slow_fix_interrupted_restarts_the_dwell(state: Path, box: FakeOutbox) -> None:
    t = tracker(state, box)
    t.set_plan(plan("p1", ("s1", STOP_A)))
    d = Drive(t)
    d.at(north(20), 8, speed=0.0)
    d.at(north(20), 1, speed=6.0)
    d.at(north(20), 8, speed=0.0)
    assert d.events == []
    d.at(north(20), 3, speed=0.0)
    assert [e.kind for e in d.events] == [STOP_ARRIVED]


def test_speed_derived_when_the_receiver_gives_none(state: Path, box: FakeOutbox) -> None:
    t = tracker(state, box)
    t.set_plan(plan("p1", ("s1", STOP_A)))
    d = Drive(t)
    for m in range(-70, 71, 10):  # 10 m/s, no speed field (GGA-only)
        d.at(north(m), 1, speed=None)
    assert d.events == []
    d.at(north(5), 12, speed=None)
    assert [e.kind for e in d.events] == [STOP_ARRIVED]


def test_reorder_nearest_first(state: Path, box: FakeOutbox) -> None:
    t = tracker(state, box)
    near_c = north(2060)
    t.set_plan(
        plan("p1", ("o-1:delivery", STOP_A), ("o-2:delivery", STOP_B),
             ("o-3:delivery", STOP_C), ("o-4:delivery", near_c))
    )  # fmt: skip
    d = Drive(t)
    d.at(north(2050), 12)  # C at 50 m, its neighbour at 10 m: the nearest wins
    assert d.kinds() == [(STOP_ARRIVED, "o-4:delivery")]
    assert d.events[0].details["in_order"] is False
    d.at(north(2045), 12)  # still parked: C (45 m) arrives too, after its own dwell
    assert d.kinds()[-1] == (STOP_ARRIVED, "o-3:delivery")
    d.at(STOP_A, 12, speed=0.0)  # far from both: both completed, then A arrives
    assert d.kinds()[2:] == [
        (STOP_COMPLETED, "o-4:delivery"),
        (STOP_COMPLETED, "o-3:delivery"),
        (STOP_ARRIVED, "o-1:delivery"),
    ]
    assert t.counters["arrived_out_of_order"] == 2
    d.at(STOP_B, 12)  # B is 1 km from A: A completes on the way
    assert d.kinds()[5:] == [(STOP_COMPLETED, "o-1:delivery"), (STOP_ARRIVED, "o-2:delivery")]


def test_moving_on_to_a_nearby_stop_completes_the_first(state: Path, box: FakeOutbox) -> None:
    """Two stops 100 m apart: the vehicle never goes 150 m from the first before arriving at
    the second, which completes the first."""
    t = tracker(state, box)
    t.set_plan(plan("p1", ("a", STOP_A), ("b", north(100))))
    d = Drive(t)
    d.at(STOP_A, 20)
    d.at(north(100), 11)
    assert d.kinds() == [(STOP_ARRIVED, "a"), (STOP_COMPLETED, "a"), (STOP_ARRIVED, "b")]
    assert d.events[1].details["dwell_s"] == 19.0


def test_new_plan_version_keeps_what_was_done(state: Path, box: FakeOutbox) -> None:
    t = tracker(state, box)
    t.set_plan(plan("HEL-van-1-v1", ("o-1:delivery", STOP_A), ("o-2:delivery", STOP_B)))
    d = Drive(t)
    d.at(STOP_A, 12)
    d.at(north(500), 1, speed=12.0)
    assert t.done == {"o-1:delivery"}
    # v2 still lists the done stop (sent before the completion reached the cloud), B and C
    t.set_plan(
        plan("HEL-van-1-v2", ("o-1:delivery", STOP_A), ("o-2:delivery", STOP_B),
             ("o-5:pickup", STOP_C))
    )  # fmt: skip
    d.at(STOP_A, 30)  # back at A: done under v1, not reported again
    assert d.kinds() == [(STOP_ARRIVED, "o-1:delivery"), (STOP_COMPLETED, "o-1:delivery")]
    d.at(STOP_B, 12)
    assert d.kinds()[-1] == (STOP_ARRIVED, "o-2:delivery")
    assert d.events[-1].details["plan_id"] == "HEL-van-1-v2"
    assert d.events[-1].details["in_order"] is True  # A is done: B is the next pending


def test_arrival_kept_across_plan_versions_and_dropped_when_moved(
    state: Path, box: FakeOutbox
) -> None:
    t = tracker(state, box)
    t.set_plan(plan("v1", ("x:delivery", STOP_A), ("y:delivery", STOP_B)))
    d = Drive(t)
    d.at(STOP_A, 12)
    t.set_plan(plan("v2", ("x:delivery", STOP_A), ("y:delivery", STOP_B)))
    assert set(t.arrived) == {"x:delivery"}
    d.at(north(300), 1, speed=10.0)
    assert d.kinds()[-1] == (STOP_COMPLETED, "x:delivery")
    assert d.events[-1].details["plan_id"] == "v2"  # the plan the stop is in now
    d.at(STOP_B, 12)
    t.set_plan(plan("v3", ("z:pickup", STOP_C)))  # y moved to another vehicle meanwhile
    assert t.arrived == {}
    assert t.counters["arrivals_dropped_by_plan"] == 1
    d.at(north(3000), 1, speed=10.0)
    assert d.kinds()[-1] == (STOP_ARRIVED, "y:delivery")  # no completion for y


def test_zero_stops_and_no_plan(state: Path, box: FakeOutbox) -> None:
    t = tracker(state, box)
    d = Drive(t)
    d.at(STOP_A, 20)  # no plan at all
    t.set_plan(plan("p0"))
    d.at(STOP_A, 20)
    t.set_plan(None)
    d.at(STOP_A, 20)
    assert d.events == []
    assert t.pending() == []


def test_restart_neither_repeats_nor_loses(state: Path, box: FakeOutbox) -> None:
    p = plan("p1", ("o-1:delivery", STOP_A), ("o-2:delivery", STOP_B))
    t = tracker(state, box)
    t.set_plan(p)
    d = Drive(t)
    d.at(STOP_A, 12)
    assert len(box.events) == 1
    # restart while at the stop: the arrival is kept, not repeated; leaving completes it
    t2 = tracker(state, box)
    t2.set_plan(p)
    assert t2.recover() == 0
    assert set(t2.arrived) == {"o-1:delivery"}
    d2 = Drive(t2)
    d2.now = d.now
    d2.at(STOP_A, 5)
    d2.at(north(400), 1, speed=10.0)
    assert d2.kinds() == [(STOP_COMPLETED, "o-1:delivery")]
    assert d2.events[0].details["dwell_s"] == 16.0
    # restart after the completion: not repeated when passing by again
    t3 = tracker(state, box)
    t3.set_plan(p)
    d3 = Drive(t3)
    d3.now = d2.now
    d3.at(STOP_A, 30)
    assert d3.events == []
    assert [e.kind for e in box.events] == [STOP_ARRIVED, STOP_COMPLETED]


def test_crash_between_journal_and_outbox_is_recovered_once(state: Path, box: FakeOutbox) -> None:
    """Two events journalled (moving on completes a, then b arrives); the power goes after the
    first reached the outbox: the restart emits the second only."""
    p = plan("p1", ("a", STOP_A), ("b", north(100)))
    t = tracker(state, box)
    t.set_plan(p)
    d = Drive(t)
    d.at(STOP_A, 12)
    box.crash_after = 2
    with pytest.raises(KeyboardInterrupt):
        d.at(north(100), 11)
    assert [e.kind for e in box.events] == [STOP_ARRIVED, STOP_COMPLETED]
    box.crash_after = None
    t2 = tracker(state, box)
    t2.set_plan(p)
    assert t2.recover() == 1
    assert [(e.kind, e.details["stop_id"]) for e in box.events] == [
        (STOP_ARRIVED, "a"), (STOP_COMPLETED, "a"), (STOP_ARRIVED, "b"),
    ]  # fmt: skip
    assert t2.done == {"a"}
    assert set(t2.arrived) == {"b"}
    t3 = tracker(state, box)  # and once only
    assert t3.recover() == 0
    assert len(box.events) == 3


def test_crash_before_the_outbox_took_anything(state: Path, box: FakeOutbox) -> None:
    t = tracker(state, box)
    t.set_plan(plan("p1", ("a", STOP_A)))
    box.crash_after = 0
    with pytest.raises(KeyboardInterrupt):
        Drive(t).at(STOP_A, 12)
    box.crash_after = None
    t2 = tracker(state, box)
    assert t2.recover() == 1
    assert [e.kind for e in box.events] == [STOP_ARRIVED]


@pytest.mark.parametrize(
    ("stop_id", "expected"),
    [
        ("o-1:delivery", {"order": "o-1", "task": "delivery"}),
        ("ns:o-1:pickup", {"order": "ns:o-1", "task": "pickup"}),  # the LAST colon
        ("plain", {}),
        (":delivery", {"task": "delivery"}),
        ("o-1:", {"order": "o-1"}),
        (":", {}),
        ("ü:🚚", {"order": "ü", "task": "🚚"}),
    ],
)
def test_split_stop_id(stop_id: str, expected: dict[str, str]) -> None:
    assert split_stop_id(stop_id) == expected


def test_odd_stop_ids_and_bad_stops(state: Path, box: FakeOutbox) -> None:
    t = tracker(state, box)
    t.set_plan(
        {
            "plan_id": "p1",
            "stops": [
                {"id": "plain", "lat": STOP_A[0], "lon": STOP_A[1]},
                {"id": "plain", "lat": STOP_B[0], "lon": STOP_B[1]},  # repeated id
                {"id": 7, "lat": STOP_B[0], "lon": STOP_B[1]},
                {"id": "nan", "lat": float("nan"), "lon": 1.0},
                "not a stop",
                {"id": "a:b:c", "lat": STOP_C[0], "lon": STOP_C[1]},
            ],
        }
    )
    assert [s.id for s in t.stops] == ["plain", "a:b:c"]
    assert t.counters["plan_stops_invalid"] == 3
    assert t.counters["plan_stops_duplicate"] == 1
    d = Drive(t)
    d.at(STOP_A, 12)
    assert "order" not in d.events[0].details
    assert "task" not in d.events[0].details
    d.at(STOP_C, 12)
    assert d.events[-1].details["order"] == "a:b"
    assert d.events[-1].details["task"] == "c"
    t.set_plan({"plan_id": 5, "stops": "nope"})  # a hand-edited file: nothing tracked
    assert t.stops == []


def test_bad_fixes_are_counted_and_skipped(state: Path, box: FakeOutbox) -> None:
    t = tracker(state, box)
    t.set_plan(plan("p1", ("a", STOP_A)))
    assert t.offer(T0, float("nan"), 1.0, 0.0) == []
    assert t.offer(T0 + 10, *STOP_A, 0.0) == []
    assert t.offer(T0 + 5, *STOP_A, 0.0) == []  # older than the last: a replay
    assert t.counters["fixes_invalid"] == 1
    assert t.counters["fixes_not_newer"] == 1


def test_unreadable_state_is_counted_and_ignored(state: Path, box: FakeOutbox) -> None:
    state.write_text("{not json")
    assert tracker(state, box).counters["state_unreadable"] == 1
    state.write_text(json.dumps({"arrived": {"a": {"arrived_s": "x"}}}))
    t = tracker(state, box)
    assert t.counters["state_unreadable"] == 1
    assert t.arrived == {}


def test_state_file_is_json_with_the_done_set(state: Path, box: FakeOutbox) -> None:
    t = tracker(state, box)
    t.set_plan(plan("p1", ("a", STOP_A)))
    d = Drive(t)
    d.at(STOP_A, 12)
    d.at(STOP_B, 1, speed=10.0)
    doc = json.loads(state.read_text())
    assert doc["done"] == ["a"]
    assert doc["arrived"] == {}
    assert doc["journal"]["events"] == []
    assert doc["plan_id"] == "p1"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"arrive_radius_m": 0},
        {"arrive_speed_mps": -1},
        {"arrive_dwell_s": -1},
        {"depart_radius_m": 50},
        {"arrive_radius_m": float("inf")},
    ],
)
def test_config_refuses_contradictions(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="stop"):
        StopConfig(**kwargs)


def test_zero_dwell_arrives_on_the_first_slow_fix(state: Path, box: FakeOutbox) -> None:
    t = tracker(state, box, StopConfig(arrive_dwell_s=0))
    t.set_plan(plan("p1", ("a", STOP_A)))
    assert [e.kind for e in t.offer(T0, *STOP_A, 0.0)] == [STOP_ARRIVED]


def test_a_stop_across_the_antimeridian(state: Path, box: FakeOutbox) -> None:
    t = tracker(state, box)
    t.set_plan({"plan_id": "fiji", "stops": [{"id": "s", "lat": -16.5, "lon": 179.9998}]})
    d = Drive(t)
    d.at((-16.5, -179.9998), 12)  # 43 m east, on the other side of 180°
    assert [e.kind for e in d.events] == [STOP_ARRIVED]


def test_the_done_set_keeps_the_newest_ids(
    state: Path, box: FakeOutbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    import edge_agent.stops

    monkeypatch.setattr(edge_agent.stops, "DONE_KEEP", 2)
    t = tracker(state, box)
    t.set_plan(plan("p1", ("a", STOP_A), ("b", STOP_B), ("c", STOP_C)))
    d = Drive(t)
    for pos in (STOP_A, STOP_B, STOP_C, north(5000)):
        d.at(pos, 12)
    assert t.done == {"b", "c"}
    assert json.loads(state.read_text())["done"] == ["b", "c"]
