"""Speeding (one event per episode, with its maximum) and idling (engine on, standing)."""

from __future__ import annotations

import pytest
from geo_traces import Run, Trace, ignition, s

from cloud.ingest.geo.machine import FixIn


def test_one_event_per_speeding_episode_with_max_speed() -> None:
    trace = Trace().drive(60, 20.0).drive(10, 28.0).drive(10, 31.0).drive(5, 27.0).drive(60, 20.0)
    run = Run().feed(trace)
    [ev] = run.of("speeding")
    assert ev.time_us == s(60)
    assert ev.event_key == f"speeding:{s(60)}"
    assert ev.detail["max_speed_mps"] == pytest.approx(31.0)
    assert ev.detail["duration_s"] == pytest.approx(25.0)
    assert ev.detail["limit_mps"] == 25.0


def test_a_short_excursion_is_not_speeding() -> None:
    run = Run().feed(Trace().drive(60, 20.0).drive(5, 30.0).drive(60, 20.0))
    assert run.of("speeding") == []


def test_a_late_fix_never_ends_an_episode_or_fires() -> None:
    trace = Trace().drive(30, 20.0).drive(30, 30.0)
    run = Run().feed(trace)
    slow_late = FixIn(s(45.5), trace.fixes[45].lat, trace.fixes[45].lon, 10.0)
    run.feed(slow_late)
    assert run.of("speeding") == []
    run.feed(Trace(t=60, north_m=trace.north_m).drive(5, 20.0))
    [ev] = run.of("speeding")  # the episode ran on, unbroken by the late fix
    assert ev.detail["duration_s"] == pytest.approx(30.0)


def test_idling_needs_ignition_on_and_a_long_stand() -> None:
    run = Run().feed(ignition(1, 0, True), Trace(t=0).stand(200).drive(60, 10.0))
    [ev] = run.of("idling")
    assert ev.time_us == s(0)
    assert ev.event_key == f"idling:{s(0)}"
    assert ev.detail["duration_s"] == pytest.approx(200.0)
    assert ev.detail["end_us"] == s(200)


def test_idling_ends_at_ignition_off() -> None:
    run = Run().feed(Trace().drive(60, 10.0), ignition(1, 60, True))
    run.feed(Trace(t=60, north_m=600).stand(150), ignition(2, 210, False))
    [ev] = run.of("idling")
    assert ev.time_us == s(60)
    assert ev.detail["duration_s"] == pytest.approx(150.0)


def test_no_idling_without_ignition_or_when_short() -> None:
    assert Run().feed(Trace().stand(400).drive(60, 10.0)).of("idling") == []
    short = Run().feed(ignition(1, 0, True), Trace().stand(60).drive(60, 10.0))
    assert short.of("idling") == []
