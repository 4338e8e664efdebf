"""DBC decoding with real vendor files, candump parsing, and CAN over the MCU link."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import cantools
import pytest

from firmware_bridge.canbus import candump
from firmware_bridge.canbus.dbc import DbcDecoder
from firmware_bridge.mcu.link import McuLink
from firmware_bridge.mcu.simulator import CanSource, McuSimulator
from firmware_bridge.records import CanFrame, CanSignals

DATA = Path(__file__).resolve().parents[2] / "data" / "can"


def test_abs_wheel_speeds_in_dbc_units() -> None:
    dec = DbcDecoder(DATA / "abs.dbc")
    msg = dec.db.get_message_by_name("BREMSE_33")
    data = msg.encode(
        {"whlspeed_FL": 12.5, "whlspeed_FR": 12.0, "whlspeed_RL": 0, "whlspeed_RR": 99}
    )
    out = dec.decode_raw(0x343, data)
    assert out is not None
    assert out.message == "BREMSE_33"
    assert out.signals["whlspeed_FL"].value == pytest.approx(12.5)
    assert out.signals["whlspeed_RR"].unit == "m/s"


def test_vehicle_dbc_extended_ids() -> None:
    dec = DbcDecoder(DATA / "vehicle.dbc")
    msg = dec.db.get_message_by_name("RT_DL1MK3_Speed")
    assert msg.is_extended_frame
    data = msg.encode({"Validity_Speed": 1, "Accuracy_Speed": 3, "Speed": 27.77})
    out = dec.decode(CanFrame(msg.frame_id, data, extended=True))
    assert out is not None
    assert out.signals["Speed"].value == pytest.approx(27.77, abs=1e-5)
    assert out.signals["Speed"].unit == "m/s"
    assert len(dec.db.messages) == 217


def test_choices_become_names() -> None:
    dec = DbcDecoder(DATA / "motohawk.dbc")
    msg = dec.db.get_message_by_name("ExampleMessage")
    data = msg.encode({"Enable": "Enabled", "AverageRadius": 1.2, "Temperature": 250.1})
    out = dec.decode_raw(msg.frame_id, data)
    assert out is not None
    assert out.signals["Enable"].value == "Enabled"
    assert out.signals["Temperature"].unit == "degK"


def test_unknown_ids_and_short_data_are_counted_not_raised() -> None:
    dec = DbcDecoder(DATA / "abs.dbc")
    assert dec.decode_raw(0x7DF, bytes(8)) is None
    assert dec.decode_raw(0x343, b"\x01\x02") is None
    assert dec.decode(CanFrame(0x343, b"", remote=True)) is None
    assert dec.counts == Counter({"unknown_id": 1, "malformed": 1, "not_data": 1})


def test_candump_samples_all_parse() -> None:
    counts: Counter[str] = Counter()
    lines = (DATA / "candump_format_samples.txt").read_text().splitlines()
    frames = list(candump.read(lines, counts))
    assert counts == Counter()
    assert len(frames) == 43
    assert sum(f.error for f in frames) == 4
    assert sum(f.remote for f in frames) == 4  # three "remote request", one #R
    assert sum(f.fd for f in frames) >= 2
    log = next(f for f in frames if f.time_utc == pytest.approx(1579857014.345944))
    assert (log.arbitration_id, log.data.hex(), log.channel) == (0x486, "82967a6b006b07f8", "can2")
    abs_ts = next(f for f in frames if f.time_utc and 1608379485 < f.time_utc < 1608379486)
    assert abs_ts.time_utc == pytest.approx(1608379485.485261)  # 2020-12-19 12:04:45 UTC
    ascii_line = next(f for f in frames if f.data == b"100.5 FM")
    assert ascii_line.arbitration_id == 0x123


def test_candump_bad_lines_counted() -> None:
    counts: Counter[str] = Counter()
    lines = ["vcan0  123  [3]  01 02", "garbage", "# comment", "vcan0 1F4 [1] 01"]
    frames = list(candump.read(lines, counts))
    assert counts["bad_line"] == 2
    assert [f.arbitration_id for f in frames] == [0x1F4]


def test_wheel_speeds_from_the_mcu_link_decode_with_the_dbc(tmp_path: Path) -> None:
    db = cantools.database.load_file(str(DATA / "abs.dbc"))
    msg = db.get_message_by_name("BREMSE_33")

    def speeds(i: int) -> bytes:
        v = 10.0 + i * 0.5
        return bytes(
            msg.encode({"whlspeed_FL": v, "whlspeed_FR": v, "whlspeed_RL": v, "whlspeed_RR": v})
        )

    path = str(tmp_path / "ttyMCU1")
    with McuSimulator(path, can=(CanSource(0x343, 0.05, speeds),)):
        link = McuLink(path)
        frames: list[CanFrame] = []
        end = time.monotonic() + 5
        while len(frames) < 10 and time.monotonic() < end:
            frames += [r for r in link.poll(0.05) if isinstance(r, CanFrame)]
        link.close()
    dec = DbcDecoder(DATA / "abs.dbc")
    decoded = [dec.decode(f) for f in frames[:10]]
    assert all(isinstance(d, CanSignals) for d in decoded)
    values = [d.signals["whlspeed_FL"].value for d in decoded if d is not None]
    assert values == pytest.approx([10.0 + 0.5 * i for i in range(10)])
