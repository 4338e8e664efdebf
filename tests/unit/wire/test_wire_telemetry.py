"""Telemetry batches: lossless round trips, and WireError (only) for every defect."""

from __future__ import annotations

import contextlib
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flota_wire import telemetry as tm
from flota_wire.bits import BitWriter
from flota_wire.errors import WireError
from flota_wire.limits import INT32_MAX, INT32_MIN, INT64_MAX, MAX_FIXES_PER_BATCH
from flota_wire.schema import Fix, TelemetryBatch, VehicleRef
from flota_wire.tracesim import batches, simulate_city

VEHICLE = VehicleRef("acme", "van-0042")

int32 = st.integers(INT32_MIN, INT32_MAX)
lat = st.one_of(
    st.sampled_from([-90_000_000, 90_000_000, 0, 1, -1]), st.integers(-90_000_000, 90_000_000)
)
lon = st.one_of(
    st.sampled_from([-180_000_000, 180_000_000, 179_999_999, -179_999_999, 0]),
    st.integers(-180_000_000, 180_000_000),
)
times = st.one_of(
    st.integers(0, INT64_MAX),
    st.integers(1_700_000_000, 1_900_000_000).map(lambda s: s * 1_000_000),
    st.sampled_from([0, INT64_MAX]),
)


def opt(strategy: st.SearchStrategy[int]) -> st.SearchStrategy[int | None]:
    return st.one_of(st.none(), strategy)


@st.composite
def fix_lists(draw: st.DrawFn, max_size: int = 24) -> list[Fix]:
    n = draw(st.integers(1, max_size))
    gaps = draw(st.lists(st.integers(1, 2**40), min_size=n - 1, max_size=n - 1))
    seq = draw(st.integers(0, INT64_MAX - sum(gaps)))
    all_opt = draw(st.booleans())  # half the batches have every optional field present
    out = []
    for i in range(n):
        if i:
            seq += gaps[i - 1]

        def field(s: st.SearchStrategy[int]) -> int | None:
            return draw(s if all_opt else opt(s))

        out.append(
            Fix(
                seq=seq,
                time_us=draw(times),
                lat_e6=draw(st.one_of(lat, int32)),
                lon_e6=draw(st.one_of(lon, int32)),
                fix_mode=draw(st.sampled_from([2, 3])),
                alt_dm=field(int32),
                speed_cmps=field(st.one_of(st.integers(0, 10_000), int32)),
                track_cdeg=field(st.one_of(st.integers(0, 35_999), int32)),
                hdop_c=field(st.integers(0, 9999)),
                sats=field(st.integers(0, 64)),
            )
        )
    return out


@given(fix_lists(), st.booleans())
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_roundtrip_is_lossless(fixes: list[Fix], deflate: bool) -> None:
    payload = tm.encode_telemetry(fixes, deflate=deflate)
    batch = tm.decode_telemetry(payload, VEHICLE)
    assert batch.fixes == tuple(fixes)
    assert batch.vehicle == VEHICLE
    assert batch.seq == fixes[0].seq


@given(
    st.integers(1, 30).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.integers(1_700_000_000, 1_900_000_000),
            st.lists(st.integers(-5, 5), min_size=n, max_size=n),
        )
    )
)
def test_smooth_tracks_with_time_jumps(args: tuple[int, int, list[int]]) -> None:
    """Regular seconds with occasional negative or large time jumps and a wrapping track."""
    _n, t0, jitter = args
    fixes = [
        Fix(
            seq=100 + i,
            time_us=(t0 + i + (3600 * j if j in (-5, 5) else 0)) * 1_000_000,
            lat_e6=89_999_990 + i,  # near the pole
            lon_e6=179_999_995 + i if 179_999_995 + i < 180_000_000 else -180_000_000 + i,
            track_cdeg=(35_990 + 7 * i) % 36_000,
            speed_cmps=1000 + j,
        )
        for i, j in enumerate(jitter)
    ]
    assert tm.decode_telemetry_columns(tm.encode_telemetry(fixes)).fixes() == tuple(fixes)


def test_single_fix_and_max_size_batches() -> None:
    one = [Fix(seq=0, time_us=0, lat_e6=0, lon_e6=0, fix_mode=2)]
    assert tm.decode_telemetry(tm.encode_telemetry(one), VEHICLE).fixes == tuple(one)
    trace = simulate_city(MAX_FIXES_PER_BATCH * 1.2, seed=3)[:MAX_FIXES_PER_BATCH]
    assert len(trace) == MAX_FIXES_PER_BATCH
    payload = tm.encode_telemetry(trace)
    assert tm.decode_telemetry(payload, VEHICLE).fixes == tuple(trace)
    with pytest.raises(WireError, match=r"1\.\.4096"):
        tm.encode_telemetry([*trace, Fix(seq=10**9, time_us=0, lat_e6=0, lon_e6=0)])
    with pytest.raises(WireError):
        tm.encode_telemetry([])


def test_realistic_trace_roundtrips_and_meets_the_size_goal() -> None:
    fixes = simulate_city(1800, seed=7)
    total = 0
    for chunk in batches(fixes, 10):
        payload = tm.encode_telemetry(chunk)
        total += len(payload)
        assert tm.decode_telemetry(payload, VEHICLE) == TelemetryBatch(VEHICLE, tuple(chunk))
    # payload only; the MQTT 5 framing with a topic alias adds 1.0 byte per fix (10 per batch)
    assert total / len(fixes) < 7.0


def test_encoder_refuses_what_the_contract_cannot_carry() -> None:
    good = Fix(seq=1, time_us=1, lat_e6=1, lon_e6=1)
    cases = [
        [Fix(seq=-1, time_us=1, lat_e6=1, lon_e6=1)],
        [Fix(seq=1, time_us=-1, lat_e6=1, lon_e6=1)],
        [Fix(seq=1, time_us=1, lat_e6=INT32_MAX + 1, lon_e6=1)],
        [Fix(seq=1, time_us=1, lat_e6=1, lon_e6=1, fix_mode=1)],
        [Fix(seq=1, time_us=1, lat_e6=1, lon_e6=1, sats=2**40)],
        [good, good],  # seq must strictly increase
        [Fix(seq=1, time_us=1, lat_e6=1, lon_e6=1, alt_dm=25.3)],  # type: ignore[arg-type]
        [Fix(seq=1, time_us=1, lat_e6=True, lon_e6=1)],
    ]
    for fixes in cases:
        with pytest.raises(WireError):
            tm.encode_telemetry(fixes)


def test_from_si_rounds_once_and_properties_read_back() -> None:
    f = Fix.from_si(
        seq=5, time_s=1.5, lat=60.1699994, lon=-0.0000004, alt_m=12.34, speed_mps=3.456,
        track_deg=-0.004, hdop=0.87, sats=9,
    )  # fmt: skip
    assert (f.time_us, f.lat_e6, f.lon_e6, f.alt_dm) == (1_500_000, 60_169_999, 0, 123)
    assert (f.speed_cmps, f.track_cdeg, f.hdop_c) == (346, 0, 87)
    assert f.lat == pytest.approx(60.169999)
    assert f.speed_mps == pytest.approx(3.46)
    assert f.time.isoformat() == "1970-01-01T00:00:01.500000+00:00"
    with pytest.raises(ValueError, match="finite"):
        Fix.from_si(seq=1, time_s=0, lat=float("nan"), lon=0)


# ----------------------------------------------------------------- corrupt input: WireError only


def _decode_or_wire_error(data: bytes) -> None:
    with contextlib.suppress(WireError):
        tm.decode_telemetry_columns(data)


VALID = [tm.encode_telemetry(b) for b in batches(simulate_city(200, seed=11), 10)]
VALID_BIG = tm.encode_telemetry(simulate_city(700, seed=12))  # deflated
assert VALID_BIG[0] == tm.HEADER_DEFLATE


@given(st.binary(max_size=300))
@settings(max_examples=1000)
def test_random_bytes_raise_only_wire_error(data: bytes) -> None:
    _decode_or_wire_error(data)
    _decode_or_wire_error(bytes((tm.HEADER_PLAIN,)) + data)
    _decode_or_wire_error(bytes((tm.HEADER_DEFLATE,)) + data)


@given(
    st.sampled_from([*VALID, VALID_BIG]),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 7)), min_size=1, max_size=4),
)
@settings(max_examples=1000)
def test_bit_flips_raise_only_wire_error(payload: bytes, flips: list[tuple[int, int]]) -> None:
    data = bytearray(payload)
    for pos, bit in flips:
        data[pos % len(data)] ^= 1 << bit
    _decode_or_wire_error(bytes(data))


@given(st.sampled_from([*VALID, VALID_BIG]), st.data())
@settings(max_examples=500)
def test_truncation_and_trailing_bytes_always_raise(payload: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(payload) - 1))
    with pytest.raises(WireError):
        tm.decode_telemetry_columns(payload[:cut])
    extra = data.draw(st.binary(min_size=1, max_size=20))
    with pytest.raises(WireError):
        tm.decode_telemetry_columns(payload + extra)


@given(st.sampled_from(VALID), st.data())
@settings(max_examples=300)
def test_inserted_and_deleted_bytes_raise_only_wire_error(
    payload: bytes, data: st.DataObject
) -> None:
    i = data.draw(st.integers(0, len(payload)))
    junk = data.draw(st.binary(min_size=1, max_size=8))
    _decode_or_wire_error(payload[:i] + junk + payload[i:])
    _decode_or_wire_error(payload[:i] + payload[i + 1 :])


def test_specific_defects_have_clear_messages() -> None:
    good = VALID[0]
    cases = {
        b"": "truncated",
        bytes((0x21,)) + good[1:]: "version 2",
        bytes((0x13,)) + good[1:]: "type 3",
        good + b"\x00": "trailing",
        b"\x11" + b"\x00" * (256 * 1024): "oversized",
        b"\x19" + zlib.compress(b"\x00" * 300_000)[2:-4]: "oversized",
        b"\x19" + zlib.compress(good[1:])[2:-4] + b"x": "trailing",
        b"\x19\xff\xff": "deflate",
    }
    for data, message in cases.items():
        with pytest.raises(WireError, match=message):
            tm.decode_telemetry_columns(data)
    with pytest.raises(WireError, match="bytes"):
        tm.decode_telemetry_columns("not bytes")  # type: ignore[arg-type]


def test_declared_fix_count_beyond_the_limit_is_refused() -> None:
    w = BitWriter()
    w.n(MAX_FIXES_PER_BATCH)  # n - 1 = 4096 -> 4097 fixes
    w.u(0, 64)
    with pytest.raises(WireError, match="4097 fixes"):
        tm.decode_telemetry_columns(bytes((tm.HEADER_PLAIN,)) + w.to_bytes())


def test_wire_error_is_a_value_error() -> None:
    assert issubclass(WireError, ValueError)
    assert WireError.retriable is False


@given(st.integers(-(2**70), 2**70))
def test_zigzag_roundtrip(v: int) -> None:
    from flota_wire.bits import unzigzag, zigzag

    assert zigzag(v) >= 0
    assert unzigzag(zigzag(v)) == v
