"""Topics, MQTT framing sizes and the physical-limits check."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flota_wire import Fix, WireError, fix_problems
from flota_wire.mqtt import publish_size
from flota_wire.topics import (
    DOWNLINK,
    UPLINK,
    Channel,
    TopicError,
    parse,
    subscription,
    topic,
    vehicle_prefix,
)

segments = st.from_regex(r"\A[A-Za-z0-9_-]{1,64}\Z")


@given(segments, segments, st.sampled_from(Channel))
def test_topic_parse_roundtrip(tenant: str, vehicle: str, channel: Channel) -> None:
    address = parse(topic(tenant, vehicle, channel))
    assert (address.tenant, address.vehicle, address.channel) == (tenant, vehicle, channel)
    assert topic(tenant, vehicle, channel).startswith(vehicle_prefix(tenant, vehicle) + "/")


def test_topic_names_are_the_contract() -> None:
    assert topic("acme", "van-0042", Channel.TELEMETRY) == "flota/v1/acme/van-0042/up/telemetry"
    assert subscription(Channel.TELEMETRY) == "flota/v1/+/+/up/telemetry"
    assert subscription(Channel.EVENTS, "bridge") == "$share/bridge/flota/v1/+/+/up/events"
    assert set(Channel) == UPLINK | DOWNLINK
    assert not UPLINK & DOWNLINK


@pytest.mark.parametrize(
    "bad",
    [
        "flota/v1/acme/van/up/nope",
        "flota/v2/acme/van/up/telemetry",
        "other/v1/acme/van/up/telemetry",
        "flota/v1/ac+me/van/up/telemetry",
        "flota/v1/acme//up/telemetry",
        "flota/v1/acme",
        "",
    ],
)
def test_bad_topics_raise_topic_error_a_wire_error(bad: str) -> None:
    with pytest.raises(TopicError):
        parse(bad)
    assert issubclass(TopicError, WireError)


def test_segments_cannot_inject_levels_or_wildcards() -> None:
    for bad in ("a/b", "#", "+", "x" * 65, "", "van\n"):
        with pytest.raises(TopicError):
            topic(bad, "van", Channel.STATE)
    with pytest.raises(TopicError):
        subscription(Channel.STATE, "g/x")


def test_publish_sizes_are_exact() -> None:
    t = "flota/v1/acme/van-0042/up/telemetry"  # 35 bytes
    # 3.1.1 QoS 1: 1 fixed + 1 remaining length + 2 + 35 topic + 2 packet id + payload
    assert publish_size(t, 60) == 1 + 1 + 2 + 35 + 2 + 60
    # MQTT 5 adds a property length byte; with an alias the topic becomes 3 property bytes
    assert publish_size(t, 60, mqtt5=True) == 1 + 1 + 2 + 35 + 2 + 1 + 60
    assert publish_size(t, 60, mqtt5=True, alias=True) == 1 + 1 + 2 + 0 + 2 + 1 + 3 + 60
    assert publish_size(t, 200) == 1 + 2 + 2 + 35 + 2 + 200  # remaining length >= 128
    assert publish_size(t, 60, qos=0) == 1 + 1 + 2 + 35 + 60
    with pytest.raises(ValueError, match="MQTT 5"):
        publish_size(t, 1, alias=True)


def test_physical_limits_name_each_problem() -> None:
    now = 1_795_780_800_000_000
    good = Fix(seq=1, time_us=now, lat_e6=60_000_000, lon_e6=24_000_000, speed_cmps=1500)
    assert fix_problems(good, now) == []
    bad = Fix(
        seq=1, time_us=now + 10**9, lat_e6=0, lon_e6=0, speed_cmps=20_000, track_cdeg=36_000,
        alt_dm=-10_000, hdop_c=-1, sats=500,
    )  # fmt: skip
    assert fix_problems(bad, now) == [
        "null_island", "time_in_future", "speed_impossible", "track_out_of_range",
        "alt_out_of_range", "hdop_out_of_range", "sats_out_of_range",
    ]  # fmt: skip
    worse = Fix(seq=1, time_us=0, lat_e6=90_000_001, lon_e6=-180_000_001)
    assert fix_problems(worse, now) == ["lat_out_of_range", "lon_out_of_range", "time_too_old"]
