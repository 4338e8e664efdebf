"""The agent's wiring of the bus to events, without a network: IMU blocks through the real
harsh-driving model become one event per manoeuvre; ignition changes become events."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from edge_agent.agent import Agent
from edge_agent.gps.fix import GpsFix
from edge_agent.settings import load_settings
from firmware_bridge.records import DigitalInputs, ImuSample
from flota_wire import Event
from flota_wire.jsoncodec import decode_event

REPO = Path(__file__).resolve().parents[3]
# device axes = vehicle axes, as learnt on an earlier trip
ALIGNED = {"gravity": [0, 0, 9.81], "gyro_bias": [0, 0, 0], "fwd_evidence": [1, 0, 0],
           "left_evidence": [0, 1, 0], "blocks": 1000}  # fmt: skip


@pytest.fixture
def agent(tmp_path: Path) -> Agent:
    (tmp_path / "aligner.json").write_text(json.dumps(ALIGNED))
    settings = load_settings(
        environ={},
        tenant="acme", vehicle="van-1", mqtt_username="acme.van-1",
        mqtt_password="k8#Lq-unit", state_dir=tmp_path,
        models_dir=REPO / "models" / "onnx",
    )  # fmt: skip
    return Agent(settings, sources=False)


def _drive(agent: Agent, decel_blocks: range, seconds: int = 12) -> None:
    rng = np.random.default_rng(1)
    t0 = time.time()
    speed = 15.0
    for k in range(seconds):
        ax = -5.5 if k in decel_blocks else 0.0  # -0.56 g: a harsh brake
        speed = max(0.0, speed + ax)
        agent.pipeline.last = GpsFix(t0 + k, 0.0, 60.17, 24.94, 3, speed_mps=speed)
        agent._on_mcu(
            [
                ImuSample(
                    k * 100 + i,
                    t0 + k + i / 100,
                    (ax + rng.normal(0, 0.2), rng.normal(0, 0.2), 9.81 + rng.normal(0, 0.3)),
                    (rng.normal(0, 0.01), rng.normal(0, 0.01), rng.normal(0, 0.01)),
                )
                for i in range(100)
            ]
        )


def _events(agent: Agent) -> list[Event]:
    return [decode_event(m.payload) for m in agent.outbox.messages_after("events", 0, 100)]


def test_harsh_brake_becomes_one_event_with_position(agent: Agent) -> None:
    assert sorted(agent.slots) == ["engine_anomaly", "harsh_driving"]
    _drive(agent, range(6, 8))
    events = _events(agent)
    assert [e.kind for e in events] == ["harsh_brake"]
    details = events[0].details_dict
    assert details["model"] == "harsh_driving"
    assert (events[0].lat_e6, events[0].lon_e6) == (60_170_000, 24_940_000)
    assert agent.counters["imu_windows"] == 12


def test_calm_drive_and_ignition(agent: Agent) -> None:
    _drive(agent, range(0))
    assert _events(agent) == []
    for mask in (1, 1, 0, 1):
        agent._on_mcu([DigitalInputs(mask, 0, None)])
    assert [e.kind for e in _events(agent)] == ["ignition_off", "ignition_on"]


def test_config_command_reaches_the_live_policy_and_acks_are_queued(agent: Agent) -> None:
    from flota_wire import AckStatus, Command, CommandKind
    from flota_wire.jsoncodec import decode_command_ack

    payload = {"report_heading_deg": 15, "batch_interval_s": 5}
    cmd = Command(1, "cfg", 1, CommandKind.CONFIG, payload, time.time_ns() // 1000)
    assert agent.processor.handle(cmd) is AckStatus.APPLIED
    assert agent.pipeline.policy.config.heading_deg == 15.0
    assert agent.uplink.config.batch_interval_s == 5.0
    acks = [decode_command_ack(m.payload) for m in agent.outbox.messages_after("acks", 0, 10)]
    assert [a.status for a in acks] == [AckStatus.ACCEPTED, AckStatus.APPLIED]
