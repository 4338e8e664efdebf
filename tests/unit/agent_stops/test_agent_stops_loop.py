"""Stop tracking through the agent's own loop: a route_plan command, GPS epochs on the inbox,
``step()``; the events land in the outbox with their details, the counters in the stats, and a
restarted agent neither repeats nor loses them. Also the four thresholds as settings and as
live configuration."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent.agent import Agent
from edge_agent.gps.fix import GpsFix
from edge_agent.settings import SettingsError, load_settings
from flota_wire import AckStatus, Command, CommandKind, Event
from flota_wire.jsoncodec import decode_event

T0 = 1_800_000_000.0
DEPOT = (60.1700, 24.9400)
STOP_1 = (60.1800, 24.9400)  # about 1.1 km north
STOP_2 = (60.1900, 24.9400)


def _settings(state_dir: Path, **kw: Any) -> Any:
    return load_settings(
        environ={},
        tenant="acme", vehicle="van-9", mqtt_username="acme.van-9",
        mqtt_password="k8#Lq-unit", state_dir=state_dir, **kw,
    )  # fmt: skip


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    a = Agent(_settings(tmp_path), sources=False)
    yield a
    a.close()


def _plan_command(version: int, *stops: tuple[str, tuple[float, float]]) -> Command:
    payload = {
        "plan_id": f"HEL-van-9-v{version}",
        "version": version,
        "stops": [{"id": sid, "order": sid.split(":")[0], "lat": p[0], "lon": p[1],
                   "eta_us": None, "service_s": 60.0} for sid, p in stops],
    }  # fmt: skip
    return Command(version, "route-plan", version, CommandKind.ROUTE_PLAN, payload,
                   time.time_ns() // 1000)  # fmt: skip


class Clock:
    now = T0


def _drive(agent: Agent, at: tuple[float, float], seconds: int, speed: float = 0.0) -> None:
    """One epoch a second on the inbox, one loop turn per epoch."""
    for _ in range(seconds):
        Clock.now += 1.0
        agent.inbox.put(("gps", GpsFix(Clock.now, 0.0, at[0], at[1], 3, speed_mps=speed)))
        agent.step(0.0)


def _stop_events(agent: Agent) -> list[Event]:
    events = [decode_event(m.payload) for m in agent.outbox.messages_after("events", 0, 100)]
    return [e for e in events if e.kind.startswith("stop_")]


def test_plan_then_arrive_then_complete_through_the_loop(agent: Agent) -> None:
    Clock.now = T0
    cmd = _plan_command(1, ("o-1:delivery", STOP_1), ("o-2:pickup", STOP_2))
    assert agent.processor.handle(cmd) is AckStatus.APPLIED
    assert [s.id for s in agent.stops.stops] == ["o-1:delivery", "o-2:pickup"]
    _drive(agent, DEPOT, 3, speed=12.0)
    _drive(agent, STOP_1, 15)
    _drive(agent, DEPOT, 1, speed=12.0)
    events = _stop_events(agent)
    assert [(e.kind, e.details_dict["stop_id"]) for e in events] == [
        ("stop_arrived", "o-1:delivery"),
        ("stop_completed", "o-1:delivery"),
    ]
    done = events[1].details_dict
    assert done["order"] == "o-1"
    assert done["task"] == "delivery"
    assert done["plan_id"] == "HEL-van-9-v1"
    assert done["dwell_s"] == 14.0
    assert events[0].time_us == round((T0 + 3 + 11) * 1e6)  # the fix after a 10 s dwell
    assert (events[0].lat_e6, events[0].lon_e6) == (60_180_000, 24_940_000)
    stats = agent.stats()
    assert stats["agent"]["stops_arrived"] == 1
    assert stats["agent"]["stops_completed"] == 1
    assert stats["stops"]["pending"] == 1
    # the plan file the driver's display (and the demo) reads is unchanged in shape
    stored = json.loads((agent.settings.state_dir / "route_plan.json").read_text())
    assert stored["plan_id"] == "HEL-van-9-v1"
    assert [s["id"] for s in stored["stops"]] == ["o-1:delivery", "o-2:pickup"]


def test_restarted_agent_keeps_the_arrival_and_the_plan(tmp_path: Path) -> None:
    Clock.now = T0
    a = Agent(_settings(tmp_path), sources=False)
    try:
        a.processor.handle(_plan_command(1, ("o-1:delivery", STOP_1)))
        _drive(a, STOP_1, 12)
        assert [e.kind for e in _stop_events(a)] == ["stop_arrived"]
    finally:
        a.close()
    b = Agent(_settings(tmp_path), sources=False)
    try:
        assert set(b.stops.arrived) == {"o-1:delivery"}
        _drive(b, STOP_1, 3)
        _drive(b, DEPOT, 1, speed=12.0)
        kinds = [e.kind for e in _stop_events(b)]  # the outbox holds both runs' events
        assert kinds == ["stop_arrived", "stop_completed"]
        assert b.counters["stops_completed"] == 1
        assert b.counters["stops_arrived"] == 0  # not repeated by the new run
        # a new version listing the done stop again: it is not reported again
        b.processor.handle(_plan_command(2, ("o-1:delivery", STOP_1), ("o-2:pickup", STOP_2)))
        _drive(b, STOP_1, 20)
        assert len(_stop_events(b)) == 2
    finally:
        b.close()


def test_thresholds_are_settings_and_live_config(agent: Agent, tmp_path: Path) -> None:
    s = _settings(tmp_path / "x", stop_arrive_radius_m="40", stop_arrive_dwell_s="0")
    assert s.stops().arrive_radius_m == 40.0
    assert s.stops().arrive_dwell_s == 0.0
    with pytest.raises(SettingsError, match="stop_depart_radius_m"):
        _settings(tmp_path / "y", stop_depart_radius_m=60)
    env = {"FLOTA_AGENT_STOP_ARRIVE_SPEED_MPS": "1.5"}
    assert load_settings(
        environ=env, tenant="a", vehicle="b", mqtt_username="u", mqtt_password="k8#Lq-unit"
    ).stop_arrive_speed_mps == 1.5  # fmt: skip

    def config(version: int, payload: dict[str, Any]) -> AckStatus:
        cmd = Command(100 + version, "cfg", version, CommandKind.CONFIG, payload,
                      time.time_ns() // 1000)  # fmt: skip
        return agent.processor.handle(cmd)

    assert config(1, {"stop_arrive_radius_m": 30, "stop_arrive_dwell_s": 0}) is AckStatus.APPLIED
    assert agent.stops.config.arrive_radius_m == 30.0
    assert agent.stops.config.arrive_dwell_s == 0.0
    # the departure radius must stay beyond the arrival radius: refused, nothing changed
    assert config(2, {"stop_depart_radius_m": 20}) is AckStatus.REJECTED
    assert config(3, {"stop_arrive_speed_mps": 0}) is AckStatus.REJECTED
    assert agent.stops.config.depart_radius_m == 150.0


def test_a_receivers_buffer_replayed_after_a_restart_completes_nothing(tmp_path: Path) -> None:
    """At the stop, restart: the receiver sends again epochs from before the arrival, 1 km
    away. They are replays for the pipeline and must not take the van away from its stop."""
    Clock.now = T0
    a = Agent(_settings(tmp_path), sources=False)
    try:
        a.processor.handle(_plan_command(1, ("o-1:delivery", STOP_1)))
        _drive(a, DEPOT, 30, speed=12.0)  # 30 s at 12 m/s: the policy keeps some of these
        _drive(a, STOP_1, 12)
    finally:
        a.close()
    b = Agent(_settings(tmp_path), sources=False)
    try:
        for k in range(5):
            fix = GpsFix(T0 + 20 + k, 0.0, DEPOT[0], DEPOT[1], 3, speed_mps=12.0)
            b.inbox.put(("gps", fix))
            b.step(0.0)
        assert b.pipeline.counters["epoch_not_after_last_accepted"] == 5
        assert set(b.stops.arrived) == {"o-1:delivery"}
        assert _stop_events(b)[-1].kind == "stop_arrived"
    finally:
        b.close()
