"""The dispatcher times its plans with the tenant's learned speeds, at the plan's hour."""

from __future__ import annotations

import pytest

from cloud.optimizer.dispatch.planner import PlannerConfig
from cloud.optimizer.matrix import ConstantSpeed, SpeedProvider
from cloud.optimizer.model import Location
from cloud.optimizer.speeds import LearnedSpeeds

MONDAY_9 = 1_795_392_000.0 + 9 * 3600


def test_without_learned_speeds_the_configured_speed_is_used() -> None:
    cfg = PlannerConfig(speed_mps=10.0, circuity=1.0)
    m = cfg.matrix("acme", MONDAY_9)
    dist, dur = m.matrices([Location(24.94, 60.17), Location(24.94, 60.18)])
    assert dur[0, 1] == pytest.approx(dist[0, 1] / 10.0)


def test_learned_speeds_are_looked_up_per_tenant_at_the_plan_hour() -> None:
    asked: list[str] = []
    fast = LearnedSpeeds(8, 20.0, {}, {9: 4.0})  # the fleet at Monday 09: 4 m/s

    def speeds(tenant: str) -> SpeedProvider:
        asked.append(tenant)
        return fast if tenant == "acme" else ConstantSpeed(10.0)

    cfg = PlannerConfig(circuity=1.0, speeds=speeds)
    pts = [Location(24.94, 60.17), Location(24.94, 60.18)]
    dist, dur = cfg.matrix("acme", MONDAY_9).matrices(pts)
    assert dur[0, 1] == pytest.approx(dist[0, 1] / 4.0)
    _, later = cfg.matrix("acme", MONDAY_9 + 3600).matrices(pts)  # 10:00: the default, 20 m/s
    assert later[0, 1] == pytest.approx(dist[0, 1] / 20.0)
    _, other = cfg.matrix("globex", MONDAY_9).matrices(pts)
    assert other[0, 1] == pytest.approx(dist[0, 1] / 10.0)
    assert asked == ["acme", "acme", "globex"]
