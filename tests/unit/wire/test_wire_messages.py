"""Events, commands, acks, state, sensors and the encode/decode entry points."""

from __future__ import annotations

import contextlib
import json
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flota_wire import (
    AckStatus,
    Channel,
    Command,
    CommandAck,
    CommandKind,
    DeviceState,
    Event,
    SensorBatch,
    SensorKind,
    SensorSample,
    Severity,
    StoredAck,
    Stream,
    TelemetryBatch,
    VehicleRef,
    WireError,
    decode,
    encode,
    topic,
)
from flota_wire import jsoncodec as jc
from flota_wire.acks import accepts_stored_ack, encode_stored_ack, merge_ranges
from flota_wire.codec import CHANNEL_OF
from flota_wire.schema import Fix

V = VehicleRef("acme", "van-0042")
u64 = st.integers(0, 2**63 - 1)
text = st.text(max_size=40)
scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    text,
)
json_values = st.recursive(
    scalar, lambda inner: st.one_of(st.lists(inner), st.dictionaries(text, inner)), max_leaves=20
)
ids = st.from_regex(r"\A[A-Za-z0-9_-]{1,64}\Z")

events = st.builds(
    Event,
    seq=u64,
    time_us=u64,
    kind=st.from_regex(r"\A[a-z0-9_]{1,32}\Z"),
    severity=st.sampled_from(Severity),
    lat_e6=st.just(None),
    lon_e6=st.just(None),
    details=st.dictionaries(st.text(min_size=1, max_size=64), scalar, max_size=8).map(
        lambda d: tuple(sorted(d.items()))
    ),
)
events_at = st.builds(
    lambda e, lat, lon: Event(e.seq, e.time_us, e.kind, e.severity, lat, lon, e.details),
    events,
    st.integers(-90_000_000, 90_000_000),
    st.integers(-180_000_000, 180_000_000),
)
commands = st.builds(
    Command,
    seq=u64,
    id=ids,
    version=u64,
    kind=st.sampled_from(CommandKind),
    payload=st.dictionaries(text, json_values, max_size=5),
    issued_at_us=u64,
    expires_at_us=st.one_of(st.none(), u64),
)
acks = st.builds(
    CommandAck,
    seq=u64,
    command_id=ids,
    command_version=u64,
    status=st.sampled_from(AckStatus),
    time_us=u64,
    reason=st.one_of(st.none(), text),
)
stored = st.builds(
    StoredAck,
    seq=u64,
    stream=st.sampled_from(Stream),
    ranges=st.lists(st.tuples(u64, u64).map(sorted).map(tuple), min_size=1, max_size=5).map(tuple),
    time_us=u64,
    cloud=st.none() | ids,
)
states = st.builds(
    DeviceState, seq=u64, online=st.booleans(), time_us=u64, agent_version=st.none() | text
)


@st.composite
def sensor_batches(draw: st.DrawFn) -> SensorBatch:
    n = draw(st.integers(1, 60))
    seq = draw(st.integers(0, 2**40))
    out = []
    for _ in range(n):
        seq += draw(st.integers(1, 1000))
        value = draw(
            st.one_of(
                st.integers(-(2**53), 2**53), st.floats(allow_nan=False, allow_infinity=False)
            )
        )
        out.append(
            SensorSample(
                seq=seq,
                time_us=draw(st.integers(0, 2**62)),
                kind=draw(st.sampled_from(SensorKind)),
                source=draw(st.sampled_from(["imu0", "obd", "can0", "io"])),
                name=draw(st.sampled_from(["x", "y", "z", "0C", "EngineSpeed", "ignition"])),
                value=value,
                unit=draw(st.sampled_from(["m/s2", "rad/s", "1/s", "", "V"])),
            )
        )
    return SensorBatch(V, tuple(out))


@given(st.one_of(events, events_at, commands, acks, stored, states, sensor_batches()))
@settings(max_examples=400)
def test_every_message_roundtrips_through_its_topic(message: object) -> None:
    channel = CHANNEL_OF[type(message)]
    payload = encode(message)  # type: ignore[arg-type]
    received = decode(topic(V.tenant, V.vehicle, channel), payload)
    assert received.vehicle == V
    assert received.channel is channel
    assert received.message == message


def test_realistic_sensor_batch_is_compact() -> None:
    samples = []
    seq = 0
    for i in range(1000):  # 1 s of IMU at 100 Hz: 6 axes, 3 decimals
        for kind, name in ((SensorKind.IMU_ACCEL, a) for a in "xyz"):
            seq += 1
            samples.append(
                SensorSample(seq, 1_795_780_800_000_000 + i * 10_000, kind, "imu0", name,
                             round(0.01 * ((i * 7 + ord(name)) % 50) - 0.25, 3), "m/s2")
            )  # fmt: skip
    batch = SensorBatch(V, tuple(samples))
    payload = encode(batch)
    assert payload[0] == 0x1A  # version 1, deflated, type 2
    assert len(payload) / len(samples) < 3.0
    assert decode(topic("acme", "van-0042", Channel.SENSORS), payload).message == batch


def test_sensor_values_must_be_finite() -> None:
    payload = b"\x12" + b'{"series":[[1,"imu0","x","m/s2",[1],[5],[1e999]]]}'
    with pytest.raises(WireError, match="finite"):
        jc.decode_sensors(payload, V)


def test_channel_and_type_must_agree() -> None:
    payload = encode(DeviceState(seq=1, online=True, time_us=5))
    with pytest.raises(WireError, match="expected message type 3"):
        decode(topic("acme", "van-0042", Channel.EVENTS), payload)
    with pytest.raises(WireError, match="not a telemetry batch"):
        decode(topic("acme", "van-0042", Channel.TELEMETRY), payload)
    with pytest.raises(WireError, match="not a flota/v1 topic"):
        decode("flota/v2/acme/van-0042/state", payload)


def test_state_payloads_are_small_and_the_will_is_stable() -> None:
    will = encode(DeviceState(seq=7, online=False, time_us=1_795_780_800_000_000))
    assert will == b'\x17{"seq":7,"online":false,"time_us":1795780800000000}'


def _raw(kind: int, obj: object) -> bytes:
    return bytes((0x10 | kind,)) + json.dumps(obj).encode()


GOOD_EVENT = {"seq": 1, "time_us": 2, "kind": "crash", "severity": 2, "details": {}}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (_raw(3, {**GOOD_EVENT, "extra": 1}), "unknown field"),
        (_raw(3, {k: v for k, v in GOOD_EVENT.items() if k != "kind"}), "missing field 'kind'"),
        (_raw(3, {**GOOD_EVENT, "seq": True}), "seq must be an integer"),
        (_raw(3, {**GOOD_EVENT, "seq": -1}), "seq must be an integer"),
        (_raw(3, {**GOOD_EVENT, "kind": "Bad Kind"}), "kind must be text"),
        (_raw(3, {**GOOD_EVENT, "severity": 9}), "unknown value"),
        (_raw(3, {**GOOD_EVENT, "lat_e6": 5}), "together"),
        (_raw(3, {**GOOD_EVENT, "details": {"a": [1]}}), "values must be"),
        (_raw(3, [1, 2]), "must be an object"),
        (b"\x13" + b'{"seq": NaN}', "NaN"),
        (b"\x13" + b'{"seq": 1, "seq": 2}', "repeats a key"),
        (b"\x13" + b'{"seq": 1e999}', "seq must be an integer"),
        (b"\x13" + b"\xff\xfe{}", "corrupt JSON"),
        (b"\x13" + b"[" * 100_000 + b"]" * 100_000, "corrupt JSON"),
        (b"\x13" + b'{"seq": ' + b"9" * 5000 + b"}", "corrupt JSON"),
        (b"\x1b" + zlib.compress(b" " * 400_000)[2:-4], "oversized"),
        (b"\x1b\x00\x01", "deflate"),
        (b"\x23" + json.dumps(GOOD_EVENT).encode(), "version 2"),
        (b"\x13{", "truncated"),
        (
            _raw(
                4,
                {
                    "seq": 1,
                    "id": "c1",
                    "version": 1,
                    "kind": "route_plan",
                    "payload": {"a": [[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]},
                    "issued_at_us": 1,
                },
            ),
            "deeper",
        ),
        (_raw(6, {"seq": 1, "stream": "telemetry", "ranges": [[5, 4]], "time_us": 1}), "range"),
        (_raw(6, {"seq": 1, "stream": "x", "ranges": [[1, 4]], "time_us": 1}), "unknown value"),
        (_raw(7, {"seq": 1, "online": 1, "time_us": 1}), "true or false"),
    ],
)
def test_defects_raise_wire_error_with_a_reason(payload: bytes, message: str) -> None:
    kind = payload[0] & 0x07
    decoders = {3: jc.decode_event, 4: jc.decode_command, 6: jc.decode_stored_ack}
    decoders[7] = jc.decode_state
    with pytest.raises(WireError, match=message):
        decoders.get(kind, jc.decode_event)(payload)


VALID = [
    encode(Event(1, 2, "harsh_brake", Severity.WARNING, 60_000_000, 24_000_000, (("g", 0.7),))),
    encode(Command(3, "plan-7", 2, CommandKind.ROUTE_PLAN, {"stops": [1, 2, 3] * 30}, 5, 9)),
    encode(CommandAck(4, "plan-7", 2, AckStatus.APPLIED, 6)),
    encode(StoredAck(5, Stream.TELEMETRY, ((1, 10), (12, 40)), 7)),
    encode(DeviceState(6, True, 8, "0.1.0")),
]


@given(st.sampled_from(VALID), st.binary(max_size=40), st.integers(0, 10**6), st.integers(0, 7))
@settings(max_examples=1000)
def test_mutations_raise_only_wire_error(payload: bytes, junk: bytes, pos: int, bit: int) -> None:
    decoders: list[Callable[[bytes], object]] = [jc.decode_event, jc.decode_command]
    decoders += [jc.decode_command_ack, jc.decode_stored_ack, jc.decode_state]
    decoders.append(lambda p: jc.decode_sensors(p, V))
    flipped = bytearray(payload)
    flipped[pos % len(payload)] ^= 1 << bit
    for data in (bytes(flipped), payload[: pos % len(payload)], payload + junk, junk):
        for dec in decoders:
            with contextlib.suppress(WireError):
                dec(data)


def test_encoders_refuse_what_v1_cannot_carry() -> None:
    bad: list[Any] = [
        Event(1, 2, "UPPER", Severity.INFO),
        Event(1, 2, "ok", Severity.INFO, lat_e6=1),
        Event(-1, 2, "ok", Severity.INFO),
        Event(1, 2, "ok", Severity.INFO, details=(("k", float("nan")),)),
        Command(1, "bad id!", 1, CommandKind.CONFIG, {}, 1),
        Command(1, "ok", 1, CommandKind.CONFIG, [], 1),  # payload must be an object
        StoredAck(1, Stream.EVENTS, (), 1),
        SensorBatch(V, ()),
        Event(1, 2, 42, Severity.INFO),  # type: ignore[arg-type]
        CommandAck(1, "c", 1, "done", 1),  # type: ignore[arg-type]
        StoredAck(1, "nope", ((1, 2),), 1),  # type: ignore[arg-type]
        Command(1, None, 1, CommandKind.CONFIG, {}, 1),  # type: ignore[arg-type]
        Command(1, "plan\n", 1, CommandKind.CONFIG, {}, 1),  # an id is the whole text
        StoredAck(1, Stream.EVENTS, ((1, 2),), 1, cloud=""),
        StoredAck(1, Stream.EVENTS, ((1, 2),), 1, cloud="eu/1"),
        StoredAck(1, Stream.EVENTS, ((1, 2),), 1, cloud="eu\n"),
        StoredAck(1, Stream.EVENTS, ((1, 2),), 1, cloud=7),  # type: ignore[arg-type]
    ]
    for message in bad:
        with pytest.raises(WireError):
            encode(message)
    with pytest.raises(WireError):
        encode("not a message")  # type: ignore[arg-type]


def test_stored_ack_helpers() -> None:
    assert merge_ranges([(5, 9), (1, 3), (4, 4), (20, 30), (25, 26)]) == ((1, 9), (20, 30))
    payload = encode_stored_ack([(1, 3), (4, 10)], time_us=99)
    ack = jc.decode_stored_ack(payload)
    assert ack == StoredAck(seq=99, stream=Stream.TELEMETRY, ranges=((1, 10),), time_us=99)
    assert ack.covers(10)
    assert not ack.covers(11)
    assert ack.up_to == 10


def test_telemetry_batch_through_the_entry_points() -> None:
    batch = TelemetryBatch(V, (Fix(seq=1, time_us=10**15, lat_e6=1, lon_e6=2),))
    got = decode(topic("acme", "van-0042", Channel.TELEMETRY), encode(batch))
    assert got.message == batch


def test_stored_ack_names_its_cloud_and_stays_compatible() -> None:
    named = encode_stored_ack([(1, 5)], time_us=9, stream=Stream.EVENTS, cloud="eu-1")
    ack = jc.decode_stored_ack(named)
    assert ack.cloud == "eu-1"
    assert ack.stream == Stream.EVENTS
    # an ack without a cloud id (from before the field) is the same bytes as before: no key
    old = encode_stored_ack([(1, 5)], time_us=9)
    assert old == b"\x16" + b'{"seq":9,"stream":"telemetry","ranges":[[1,5]],"time_us":9}'
    assert jc.decode_stored_ack(old).cloud is None
    # the device rule: a configured cloud accepts only acks naming it
    assert accepts_stored_ack(ack, "eu-1")
    assert not accepts_stored_ack(ack, "us-2")
    assert not accepts_stored_ack(jc.decode_stored_ack(old), "eu-1")
    assert accepts_stored_ack(ack, None)
    assert accepts_stored_ack(jc.decode_stored_ack(old), None)


@pytest.mark.parametrize("cloud", ['""', '"a b"', '"x\\n"', "7", "null", '"' + "c" * 65 + '"'])
def test_stored_ack_refuses_a_bad_cloud_id(cloud: str) -> None:
    body = '{"seq":1,"stream":"telemetry","ranges":[[1,2]],"time_us":1,"cloud":' + cloud + "}"
    with pytest.raises(WireError, match="cloud"):
        jc.decode_stored_ack(b"\x16" + body.encode())


def test_header_check_without_decoding() -> None:
    from flota_wire import check_header

    good = encode(TelemetryBatch(V, (Fix(seq=1, time_us=10**15, lat_e6=1, lon_e6=2),)))
    check_header(Channel.TELEMETRY, good)
    check_header(Channel.TELEMETRY, good[:1] + b"\xff\xff")  # a body is not looked at
    check_header(Channel.EVENTS, encode(Event(1, 2, "harsh_brake", Severity.WARNING)))
    for channel, payload, why in [
        (Channel.EVENTS, good, "not an event: expected message type 3, got type 1"),
        (Channel.TELEMETRY, b"\x21" + good[1:], "version 2"),
        (Channel.TELEMETRY, good[:1], "truncated"),
        (Channel.TELEMETRY, b"\x11" + bytes(256 * 1024), "oversized"),
        (Channel.TELEMETRY, "text", "bytes"),
    ]:
        with pytest.raises(WireError, match=why):
            check_header(channel, payload)  # type: ignore[arg-type]
