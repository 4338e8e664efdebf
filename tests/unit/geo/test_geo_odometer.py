"""Odometer: distance between usable fixes; GPS jumps and late fixes never add any."""

from __future__ import annotations

import pytest
from geo_traces import LON0, M_PER_DEG_LAT, Run, Trace, s

from cloud.ingest.geo.machine import FixIn, Outcome


def test_straight_drive_adds_its_length() -> None:
    run = Run().feed(Trace().drive(100, 10.0))
    assert run.state.odometer_m == pytest.approx(990.0, rel=1e-3)  # 99 intervals of 10 m


def test_a_gps_jump_adds_no_distance() -> None:
    clean = Run().feed(Trace().drive(60, 10.0))
    trace = Trace().drive(60, 10.0)
    bad = trace.fixes[30]
    # One fix 5 km east of the road, then back: 5 km in 1 s is impossible.
    trace.fixes[30] = FixIn(bad.time_us, bad.lat, LON0 + 5000 / (M_PER_DEG_LAT * 0.4975), 10.0)
    jumpy = Run().feed(trace)
    assert jumpy.outcomes.count(Outcome.JUMP) == 1
    assert jumpy.state.jumps == 1
    # Only the real 10 m steps count, measured from the last good fix across the gap.
    assert jumpy.state.odometer_m == pytest.approx(clean.state.odometer_m, abs=0.01)


def test_consistent_jumps_re_anchor_without_distance() -> None:
    """After a ferry or a long tunnel the vehicle really is elsewhere: re-anchor there."""
    run = Run().feed(Trace().drive(10, 10.0))
    before = run.state.odometer_m
    far = Trace(t=10, north_m=50_000).drive(10, 10.0)
    run.feed(far)
    assert run.outcomes.count(Outcome.JUMP) == 2  # the third consistent fix re-anchors
    # 50 km never counted; after re-anchoring the ordinary 10 m steps do (8 intervals).
    assert run.state.odometer_m == pytest.approx(before + 70.0, abs=0.5)


def test_late_fix_is_ignored_and_counted() -> None:
    trace = Trace().drive(20, 10.0)
    run = Run().feed(trace)
    odo = run.state.odometer_m
    late = FixIn(s(5.5), trace.fixes[5].lat + 0.01, LON0, 10.0)  # 1 km away, 14.5 s old
    run.feed(late, trace.fixes[-1])  # a late fix and an exact duplicate
    assert run.outcomes[-2:] == [Outcome.LATE, Outcome.LATE]
    assert run.state.late_fixes == 2
    assert run.state.odometer_m == odo
    assert run.state.watermark_us == trace.fixes[-1].time_us


def test_missing_speed_is_derived_from_positions() -> None:
    trace = Trace().drive(40, 30.0)
    fixes = [FixIn(f.time_us, f.lat, f.lon, None) for f in trace.fixes]
    run = Run().feed(*fixes, *Trace(t=40, north_m=1200).stand(20).fixes)
    [ev] = run.of("speeding")
    assert ev.detail["max_speed_mps"] == pytest.approx(30.0, rel=1e-3)
