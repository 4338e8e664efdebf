"""CAN frames from the MCU -> selected DBC signals -> sensor samples: selection, SI units, rate
limit, counted skips; and the agent's bounded sensor buffer with exact drop counts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cantools
import pytest

from edge_agent.agent import Agent
from edge_agent.can_signals import CanConfigError, CanSignalSampler, to_si
from edge_agent.settings import load_settings
from firmware_bridge.records import CanFrame
from flota_wire import SensorKind, SensorSample

REPO = Path(__file__).resolve().parents[3]
DBC = REPO / "tests" / "data" / "can" / "motohawk.dbc"  # ExampleMessage, id 496


def _frame(temp_k: float, radius_m: float, t: float) -> CanFrame:
    db = cantools.database.load_file(str(DBC))
    msg = db.get_message_by_name("ExampleMessage")
    data = msg.encode({"Temperature": temp_k, "AverageRadius": radius_m, "Enable": 1})
    return CanFrame(496, bytes(data), time_utc=t)


def test_sampler_selects_converts_and_rate_limits() -> None:
    sampler = CanSignalSampler(DBC, ("ExampleMessage.Temperature", "AverageRadius"), 1.0)
    assert sampler.signals == ("ExampleMessage.AverageRadius", "ExampleMessage.Temperature")
    got = sampler.offer(_frame(250.5, 3.2, 100.0), now_s=0.0)
    by_name = {s.name: s for s in got}
    assert by_name["ExampleMessage.Temperature"].value == pytest.approx(250.5)
    assert by_name["ExampleMessage.Temperature"].unit == "K"  # DBC "degK"
    assert by_name["ExampleMessage.AverageRadius"].value == pytest.approx(3.2)
    assert by_name["ExampleMessage.AverageRadius"].time_s == 100.0  # the frame's time
    assert sampler.offer(_frame(251.0, 3.2, 100.5), now_s=0.0) == []  # within 1 s
    assert len(sampler.offer(_frame(251.0, 3.2, 101.0), now_s=0.0)) == 2
    assert sampler.offer(CanFrame(0x123, b"\x00" * 8, time_utc=102.0), now_s=0.0) == []
    assert sampler.offer(CanFrame(496, b"\x00\x01", time_utc=103.0), now_s=0.0) == []
    c = sampler.counts
    assert (c["samples"], c["frames_rate_limited"], c["frames_not_selected"]) == (4, 1, 1)
    assert c["frames_undecodable"] == 1
    assert sampler.decoder.counts["malformed"] == 1


def test_sampler_refuses_unknown_signals_and_bad_files(tmp_path: Path) -> None:
    with pytest.raises(CanConfigError, match="NoSuchSignal"):
        CanSignalSampler(DBC, ("Temperature", "NoSuchSignal"))
    bad = tmp_path / "bad.dbc"
    bad.write_text("BO_ this is not a dbc\n")
    with pytest.raises(CanConfigError, match="not readable"):
        CanSignalSampler(bad)
    assert len(CanSignalSampler(DBC).signals) == 3  # no selection: every signal of the DBC


def test_si_units() -> None:
    assert to_si(36.0, "km/h") == pytest.approx((10.0, "m/s"))
    assert to_si(20.0, "degC") == pytest.approx((293.15, "K"))
    assert to_si(50.0, "%") == pytest.approx((0.5, ""))
    assert to_si(3.0, "furlong") == (3.0, "furlong")  # unknown units pass through


def test_agent_buffers_can_samples_bounded_then_sends(tmp_path: Path) -> None:
    settings = load_settings(
        environ={},
        tenant="acme", vehicle="van-1", mqtt_username="u", mqtt_password="k8#Lq-unit",
        state_dir=tmp_path, can_dbc=DBC, can_signals="Temperature", can_min_interval_s=0,
        sensor_queue_max=5, sensor_interval_s=3600,
    )  # fmt: skip
    agent = Agent(settings, sources=False)
    try:
        frames = [_frame(240.0 + i, 1.0, 1_795_000_000.0 + i) for i in range(8)]
        agent.inbox.put(("mcu", frames))
        agent.step(0.0)
        assert agent.counters["can_frames"] == 8
        assert agent.counters["sensor_samples_queued"] == 8
        assert agent.counters["sensor_samples_dropped"] == 3  # the cap is 5: oldest went
        sent: list[list[SensorSample]] = []

        def publish(samples: list[SensorSample]) -> bool:
            sent.append(samples)
            return True

        up: Any = agent.uplink
        up.publish_sensors = publish
        agent._send_sensors()  # offline: nothing leaves, nothing is lost
        assert sent == []
        up._connected = True
        agent._send_sensors()
        (batch,) = sent
        assert [round(s.value, 2) for s in batch] == [243.0, 244.0, 245.0, 246.0, 247.0]
        assert {s.kind for s in batch} == {SensorKind.CAN}
        assert [s.seq for s in batch] == list(range(batch[0].seq, batch[0].seq + 5))
        assert batch[0].time_us == 1_795_000_003_000_000
        assert agent.stats()["agent"]["sensor_samples_buffered"] == 0
        up._connected = False
    finally:
        agent.close()
