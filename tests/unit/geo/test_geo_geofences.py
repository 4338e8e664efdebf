"""Geofence rules: enter, exit and dwell with hysteresis; late fixes never fire."""

from __future__ import annotations

import pytest
from geo_traces import LON0, M_PER_DEG_LAT, Run, Trace, box_fence, s

from cloud.ingest.geo.config import GeoRules
from cloud.ingest.geo.fences import FenceIndex
from cloud.ingest.geo.machine import FixIn, Outcome


def geo_kinds(run: Run) -> list[str]:
    return [k for k in run.kinds() if k.startswith("geofence.")]


def test_enter_dwell_exit_in_order_with_times() -> None:
    depot = box_fence("depot", 500, 1500)
    # Drive 10 m/s from 0 m: at 500 m (t=50) inside, stop inside for 700 s, drive out at 1500 m.
    trace = Trace().drive(100, 10.0).stand(700).drive(100, 10.0)
    run = Run(fences=[depot]).feed(trace)
    geo = [e for e in run.events if e.kind.startswith("geofence.")]
    assert [e.kind for e in geo] == ["geofence.enter", "geofence.dwell", "geofence.exit"]
    enter, dwell, exit_ = geo
    first_inside = next(f for f in trace.fixes if depot.contains(f.lat, f.lon))
    assert enter.time_us == first_inside.time_us  # the first fix inside, confirmed by the next
    assert enter.event_key == dwell.event_key == exit_.event_key == f"depot:{enter.time_us}"
    assert enter.detail["name"] == "Depot"
    assert dwell.detail["dwell_s"] == pytest.approx(600.0)
    assert exit_.detail["dwell_s"] == pytest.approx(800.0)
    assert run.state.fences == {}  # outside again: nothing remembered


def test_one_fix_across_the_border_does_not_flap() -> None:
    depot = box_fence("depot", 500, 1500)
    trace = Trace().drive(45, 10.0)  # up to 440 m: outside
    inside = FixIn(s(45), trace.fixes[0].lat + 510 / M_PER_DEG_LAT, LON0, 0.0)  # 510 m: inside
    run = Run(fences=[depot]).feed(trace, inside, *Trace(t=46, north_m=450).stand(20).fixes)
    assert run.outcomes[45] == Outcome.USED
    assert geo_kinds(run) == []


def test_confirm_count_is_a_rule() -> None:
    depot = box_fence("depot", 500, 1500)
    run = Run(GeoRules(geofence_confirm_fixes=1), fences=[depot])
    trace = Trace().drive(45, 10.0)
    run.feed(trace, FixIn(s(45), trace.fixes[0].lat + 510 / M_PER_DEG_LAT, LON0, 0.0))
    assert geo_kinds(run) == ["geofence.enter"]


def test_late_fix_inside_a_fence_fires_nothing() -> None:
    depot = box_fence("depot", 500, 1500)
    trace = Trace().drive(40, 10.0)  # up to 390 m: outside
    run = Run(fences=[depot]).feed(trace)
    lat_inside = trace.fixes[0].lat + 510 / M_PER_DEG_LAT
    run.feed(FixIn(s(10), lat_inside, LON0, 0.0), FixIn(s(11), lat_inside, LON0, 0.0))
    assert geo_kinds(run) == []
    assert run.state.late_fixes == 2
    assert run.state.fences == {}


def test_per_fence_dwell_and_other_tenants_fences() -> None:
    quick = box_fence("quick", 500, 1500, dwell_s=30)
    foreign = box_fence("theirs", 500, 1500, tenant="other")
    run = Run(fences=[quick, foreign]).feed(Trace().drive(60, 10.0).stand(40))
    assert [e.kind for e in run.events] == ["trip.start", "geofence.enter", "geofence.dwell"]
    assert {e.detail.get("geofence") for e in run.events[1:]} == {"quick"}


def test_a_deleted_fence_is_forgotten_silently() -> None:
    depot = box_fence("depot", 500, 1500)
    run = Run(fences=[depot]).feed(Trace().drive(60, 10.0))
    assert "depot" in run.state.fences
    run.index = FenceIndex([])
    run.feed(Trace(t=60, north_m=600).stand(5))
    assert run.state.fences == {}
    assert "geofence.exit" not in run.kinds()
