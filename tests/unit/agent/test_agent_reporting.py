"""The adaptive reporting policy: time, distance and heading thresholds, and its path error."""

from __future__ import annotations

import pytest

from edge_agent.reporting import (
    ReportingConfig,
    ReportingPolicy,
    Sample,
    distance_m,
    evaluate,
    heading_diff_deg,
    path_error,
)
from flota_wire.tracesim import simulate_city

M_PER_DEG = 111_195.0


def _straight(seconds: int, speed: float, track: float = 0.0) -> list[Sample]:
    return [
        Sample(float(t), 60.0 + speed * t / M_PER_DEG, 25.0, speed, track) for t in range(seconds)
    ]


def test_straight_road_costs_distance_or_time_fixes() -> None:
    cfg = ReportingConfig(max_interval_s=30, min_distance_m=200, heading_deg=10)
    p = ReportingPolicy(cfg)
    reported = [s.t for s in _straight(300, 10.0) if p.offer(s)]
    assert reported == [float(t) for t in range(0, 300, 20)]  # every 200 m at 10 m/s
    assert p.reasons["distance"] == len(reported) - 1
    p = ReportingPolicy(cfg)
    slow = [s.t for s in _straight(300, 2.5) if p.offer(s)]  # 75 m per 30 s: time rules
    assert slow == [float(t) for t in range(0, 300, 30)]


def test_standing_still_uses_the_stopped_interval() -> None:
    cfg = ReportingConfig(max_interval_s=30, stopped_interval_s=120)
    p = ReportingPolicy(cfg)
    noisy = [Sample(float(t), 60.0, 25.0, 0.1, (t * 37) % 360) for t in range(600)]
    assert [s.t for s in noisy if p.offer(s)] == [0.0, 120.0, 240.0, 360.0, 480.0]


def test_turn_keeps_its_shape() -> None:
    cfg = ReportingConfig(max_interval_s=60, min_distance_m=1000, heading_deg=10)
    p = ReportingPolicy(cfg)
    trace = [Sample(float(t), 60.0, 25.0 + t * 1e-5, 5.0, min(90.0, 3.0 * t)) for t in range(40)]
    kept = [s for s in trace if p.offer(s)]
    assert [s.track_deg for s in kept] == [0.0, 12.0, 24.0, 36.0, 48.0, 60.0, 72.0, 84.0]
    assert p.reasons["heading"] == 7


def test_min_interval_and_clock_steps() -> None:
    p = ReportingPolicy(ReportingConfig(max_interval_s=1, min_interval_s=1))
    samples = [Sample(t / 10, 60.0, 25.0, 10.0, 0.0) for t in range(30)]  # 10 Hz
    assert sum(p.offer(s) for s in samples) == 3
    assert not p.offer(Sample(0.5, 60.0, 25.0, 10.0, 0.0))  # older than the last report


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="min_interval_s <= max_interval_s"):
        ReportingConfig(min_interval_s=10, max_interval_s=5)
    with pytest.raises(ValueError, match="heading_deg"):
        ReportingConfig(heading_deg=0)


def test_geometry_helpers() -> None:
    assert heading_diff_deg(350, 10) == pytest.approx(20)
    assert heading_diff_deg(10, 190) == pytest.approx(180)
    assert distance_m(60, 25, 60.001, 25) == pytest.approx(111.2, abs=0.2)


def test_path_error_of_a_known_detour() -> None:
    # a 100 m detour sideways in the middle of a straight line, only its ends reported
    trace = [
        Sample(0, 60.0, 25.0),
        Sample(1, 60.0, 25.0 + 100 / (M_PER_DEG * 0.5)),
        Sample(2, 60.0 + 100 / M_PER_DEG, 25.0),
    ]
    err = path_error(trace, [0, 2])
    # the middle point is 100 m east of the start; the segment runs north from there
    assert err.max_m == pytest.approx(100, rel=0.01)
    assert err.mean_m == pytest.approx(100 / 3, rel=0.01)
    assert err.reduction == pytest.approx(1.5)


def test_city_trace_reduction_and_error() -> None:
    fixes = simulate_city(1800, seed=3)
    trace = [Sample(f.time_s, f.lat, f.lon, f.speed_mps, f.track_deg) for f in fixes]
    err = evaluate(trace, ReportingConfig())
    assert err.reduction > 8  # a tenth of the fixes or fewer
    assert err.max_m < 15  # no corner is cut by more than a lane or two
    assert err.mean_m < 2
    tighter = evaluate(trace, ReportingConfig(heading_deg=5, min_distance_m=100))
    assert tighter.max_m <= err.max_m
    assert tighter.reported > err.reported
