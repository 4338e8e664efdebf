"""Trips and stops: by sustained motion, or by ignition when the vehicle reports it."""

from __future__ import annotations

import pytest
from geo_traces import Run, Trace, ignition, s

from cloud.ingest.geo.config import GeoRules


def test_motion_trip_starts_after_sustained_motion_and_ends_after_a_long_stop() -> None:
    trace = Trace().stand(60).drive(300, 10.0).stand(400)
    run = Run().feed(trace)
    assert run.kinds() == ["trip.start", "stop.start", "trip.end"]
    start, stop, end = run.events
    assert start.time_us == s(60)
    assert start.event_key == f"trip:{s(60)}"
    assert start.detail["started_by"] == "motion"
    assert stop.time_us == s(360)  # the stop began at the first standing fix
    assert end.time_us == s(360)
    assert end.event_key == start.event_key
    assert end.detail["ended_by"] == "stop"
    assert end.detail["duration_s"] == pytest.approx(300.0)
    assert end.detail["distance_m"] == pytest.approx(3000.0, rel=1e-3)
    assert end.detail["start_lat"] == pytest.approx(start.detail["lat"])
    assert end.detail["end_lat"] > end.detail["start_lat"]


def test_short_motion_is_not_a_trip_and_short_stand_is_not_a_stop() -> None:
    run = Run().feed(Trace().stand(10).drive(20, 5.0).stand(100).drive(20, 5.0).stand(10))
    assert run.kinds() == []


def test_stop_end_carries_the_dwell() -> None:
    run = Run().feed(Trace().drive(60, 10.0).stand(200).drive(60, 10.0))
    assert run.kinds() == ["trip.start", "stop.start", "stop.end"]
    stop_start, stop_end = run.of("stop.start")[0], run.of("stop.end")[0]
    assert stop_start.event_key == stop_end.event_key == f"stop:{s(60)}"
    assert stop_end.time_us == s(260)
    assert stop_end.detail["duration_s"] == pytest.approx(200.0)


def test_ignition_trip_spans_long_stops_and_ends_at_ignition_off() -> None:
    run = Run().feed(ignition(1, 0, True), Trace(t=1).stand(30).drive(100, 10.0).stand(400))
    run.feed(ignition(2, 600, False))
    # The 30 s stand before driving is too short to be idling; the last one is.
    assert run.kinds() == ["trip.start", "stop.start", "idling", "trip.end"]
    assert run.of("idling")[0].detail["duration_s"] == pytest.approx(469.0)
    end = run.of("trip.end")[0]
    assert run.of("trip.start")[0].detail["started_by"] == "ignition"
    assert end.time_us == s(600)
    assert end.detail["ended_by"] == "ignition"
    assert end.detail["distance_m"] == pytest.approx(1000.0, rel=1e-2)
    # The vehicle's own ignition events are republished too, keyed by their seq.
    vehicle = [e for e in run.events if e.source == "vehicle"]
    assert [(e.kind, e.event_key, e.seq) for e in vehicle] == [
        ("ignition_on", "1", 1),
        ("ignition_off", "2", 2),
    ]


def test_motion_with_ignition_off_is_not_a_trip() -> None:
    run = Run().feed(ignition(1, 0, False), Trace(t=1).drive(120, 10.0))
    assert run.kinds() == []


def test_thresholds_come_from_the_rules() -> None:
    rules = GeoRules(trip_start_motion_s=5, trip_end_stop_s=20, stop_min_s=10)
    run = Run(rules).feed(Trace().drive(10, 10.0).stand(30))
    assert run.kinds() == ["trip.start", "stop.start", "trip.end"]


def test_invalid_rules_are_refused() -> None:
    with pytest.raises(ValueError, match="still_speed"):
        GeoRules(still_speed_mps=3.0, moving_speed_mps=2.0)
    with pytest.raises(ValueError, match="negative"):
        GeoRules(idle_min_s=-1)
    assert GeoRules().with_overrides({"speed_limit_mps": 20.0, "x": 1}).speed_limit_mps == 20.0


def test_ignition_before_any_fix_locates_the_trip_at_the_next_fix() -> None:
    run = Run().feed(ignition(1, 0, True))
    [start] = run.of("trip.start")
    assert start.detail["lat"] is None  # never (0, 0)
    run.feed(Trace(t=1).drive(60, 10.0), ignition(2, 61, False))
    [end] = run.of("trip.end")
    assert end.detail["start_lat"] == pytest.approx(60.17)
    assert end.time_us == s(61)
