"""ELM327 client against the scripted peer on a pseudo-terminal, and the answer parser."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from firmware_bridge.elm327.client import Elm327Client
from firmware_bridge.elm327.dtc import decode_dtc
from firmware_bridge.elm327.peer import Elm327Peer, Vehicle
from firmware_bridge.elm327.response import BusProtocol, clean_lines, messages, parse_dpn
from firmware_bridge.errors import (
    BusError,
    Elm327Error,
    Elm327TimeoutError,
    NoDataError,
    ResponseError,
    UnknownCommandError,
)

CAN11 = BusProtocol(6, "CAN 11/500")


def connect(vehicle: Vehicle) -> tuple[Elm327Peer, Elm327Client]:
    peer = Elm327Peer(vehicle).start()
    client = Elm327Client(peer.path, timeout_s=1.0)
    client.open()
    return peer, client


@pytest.fixture
def can_car() -> Iterator[tuple[Elm327Peer, Elm327Client]]:
    peer, client = connect(Vehicle(protocol=6, second_ecu=True))
    yield peer, client
    client.close()
    peer.stop()


def test_initialise_sends_the_datasheet_sequence(can_car: tuple[Elm327Peer, Elm327Client]) -> None:
    peer, client = can_car
    proto = client.initialise()
    assert peer.received[:8] == ["ATZ", "ATE0", "ATL0", "ATS0", "ATH1", "ATSP0", "0100", "ATDPN"]
    assert (proto.number, proto.auto, proto.is_can, proto.header_chars) == (6, True, True, 3)
    assert client.version == "ELM327 v1.5"
    assert {0x04, 0x05, 0x0C, 0x0D, 0x11, 0x2F} <= client.supported
    assert 0x01 in client.supported  # only the second ECU (7E9) flags PID 01


@pytest.mark.parametrize(
    ("pid", "name", "value", "unit"),
    [
        (0x0D, "speed", 20.0, "m/s"),  # 72 km/h
        (0x0C, "rpm", 1726.0, "rpm"),  # (0x1A * 256 + 0xF8) / 4
        (0x05, "coolant_temp", 50.0, "degC"),  # 0x5A - 40
        (0x2F, "fuel_level", 74.902, "%"),  # 0xBF * 100 / 255
        (0x11, "throttle", 20.0, "%"),
        (0x04, "engine_load", 50.196, "%"),
    ],
)
@pytest.mark.parametrize("protocol", [6, 7, 3])
def test_each_pid_decodes_on_each_bus(
    protocol: int, pid: int, name: str, value: float, unit: str
) -> None:
    peer, client = connect(Vehicle(protocol=protocol))
    try:
        client.initialise()
        (reading,) = client.read_pid(pid)
    finally:
        client.close()
        peer.stop()
    assert (reading.pid, reading.name, reading.unit) == (pid, name, unit)
    assert reading.value == pytest.approx(value, abs=1e-3)
    assert reading.ecu == {6: "7E8", 7: "18DAF110", 3: "486B10"}[protocol]
    assert reading.time_utc is not None


def test_dtcs_multi_frame_and_vin(can_car: tuple[Elm327Peer, Elm327Client]) -> None:
    _, client = can_car
    client.initialise()
    assert [d.code for d in client.read_dtcs()] == ["P0133", "P0300", "U0123", "C0217"]
    assert client.read_vin() == "1D4GP00R55B123456"


def test_no_dtcs_and_unsupported_pid(can_car: tuple[Elm327Peer, Elm327Client]) -> None:
    peer, client = can_car
    peer.vehicle.dtcs = []
    client.initialise()
    assert client.read_dtcs() == []
    with pytest.raises(NoDataError):
        client.read_pid(0x4D)  # not in the car
    del peer.vehicle.pids[0x0D]
    readings = client.poll()
    assert {r.name for r in readings} == {
        "engine_load",
        "coolant_temp",
        "rpm",
        "throttle",
        "fuel_level",
    }
    assert client.counts["pid_0D_failed"] == 1


def test_ignition_off_is_a_retriable_bus_error() -> None:
    for protocol, text in ((6, "UNABLE TO CONNECT"), (3, "BUS INIT: ...ERROR")):
        peer, client = connect(Vehicle(protocol=protocol, ignition=False))
        try:
            with pytest.raises(BusError, match=text.split(":")[0]) as err:
                client.initialise()
            assert err.value.retriable
        finally:
            client.close()
            peer.stop()


def test_question_mark_and_timeout(can_car: tuple[Elm327Peer, Elm327Client]) -> None:
    peer, client = can_car
    client.initialise()
    with pytest.raises(UnknownCommandError):
        clean_lines(client.command("ATXYZ"), "ATXYZ")
    peer.silent.add("0105")
    client.timeout_s = 0.2
    with pytest.raises(Elm327TimeoutError) as err:
        client.read_pid(0x05)
    assert err.value.retriable
    peer.silent.clear()
    assert client.read_pid(0x0C)[0].value == 1726.0  # the next command still works


def test_scripted_raw_answers_with_spaces_lf_and_nul(
    can_car: tuple[Elm327Peer, Elm327Client],
) -> None:
    peer, client = can_car
    client.initialise()
    peer.script["010D"] = "\x00SEARCHING...\r\n7E8 03 41 0D 32\r\n\r\n"
    assert client.read_pid(0x0D)[0].value == pytest.approx(50 / 3.6)
    peer.script["010C"] = "CAN ERROR\r\r"
    with pytest.raises(BusError):
        client.read_pid(0x0C)


def test_headerless_multi_frame_answer() -> None:
    text = "014\r0: 49 02 01 31 44 34\r1: 47 50 30 30 52 35 35\r2: 42 31 32 33 34 35 36\r\r"
    (payload,) = messages(clean_lines(text, "0902"), CAN11, headers=False)[""]
    assert payload[3:].decode() == "1D4GP00R55B123456"


def test_isotp_errors_are_response_errors() -> None:
    lines = ["7E81014490201314434", "7E8234750303052353500"]  # sequence 3 where 1 is due
    with pytest.raises(ResponseError, match="expected 1"):
        messages(lines, CAN11, headers=True)
    with pytest.raises(ResponseError, match="of 20"):
        messages(["7E81014490201314434"], CAN11, headers=True)
    with pytest.raises(ResponseError):
        messages(["7E8GG"], CAN11, headers=True)


@pytest.mark.parametrize(
    ("raw", "code"),
    [(0x0133, "P0133"), (0x4217, "C0217"), (0x9A01, "B1A01"), (0xC123, "U0123"), (0xFFFF, "U3FFF")],
)
def test_dtc_letters_and_digits(raw: int, code: str) -> None:
    assert decode_dtc(raw >> 8, raw & 0xFF) == code


def test_dpn_parsing() -> None:
    assert parse_dpn("A7").header_chars == 8
    assert not parse_dpn("3").is_can
    with pytest.raises(BusError):
        parse_dpn("0")
    with pytest.raises(Elm327Error):
        parse_dpn("ZZ")
