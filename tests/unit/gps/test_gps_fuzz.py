"""Fuzzing the whole path (framer -> sentence -> observation -> assembler): whatever bytes
arrive, nothing raises, and every fix that comes out is physically sane."""

from __future__ import annotations

import math
from functools import cache

from gps_helpers import DATA, with_checksum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.gps.decoder import NmeaDecoder
from edge_agent.gps.fix import GpsFix

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)


@cache
def captures() -> tuple[bytes, ...]:
    names = ("gp-320fw-2019-04-07-coldboot.log", "ublox-8.log", "nmea-rtk.log", "isync.log")
    return tuple((DATA / "gpsd" / name).read_bytes()[:12000] for name in names)


def run(data: bytes, chunk: int = 61) -> list[GpsFix]:
    decoder = NmeaDecoder()
    fixes: list[GpsFix] = []
    for start in range(0, len(data), chunk):
        fixes.extend(decoder.feed(data[start : start + chunk]))
    fixes.extend(decoder.flush())
    for fix in fixes:
        check_sane(fix)
    return fixes


def check_sane(fix: GpsFix) -> None:
    assert -90.0 <= fix.lat <= 90.0
    assert -180.0 <= fix.lon <= 180.0
    assert fix.mode in (2, 3)
    assert 0.0 <= fix.time_of_day_s < 86_401.0
    for value in (fix.alt_m, fix.speed_mps, fix.track_deg, fix.hdop, fix.time_s):
        assert value is None or math.isfinite(value)
    assert fix.speed_mps is None or fix.speed_mps >= 0.0
    assert fix.track_deg is None or 0.0 <= fix.track_deg < 360.0
    fix.iso_time()
    fix.utc  # noqa: B018 - must not raise


@FUZZ
@given(st.binary(max_size=2000), st.integers(1, 300))
def test_random_bytes(data: bytes, chunk: int) -> None:
    run(data, chunk)


FIELD = st.text(alphabet="0123456789.,-+NSEWAVMTKDxyz* $", max_size=12)
TYPES = st.sampled_from(["GGA", "RMC", "GNS", "GLL", "GSA", "VTG", "ZDA", "GST", "GSV", "TXT"])


@FUZZ
@given(
    st.lists(
        st.tuples(st.sampled_from(["GP", "GN", "BD", "P"]), TYPES, st.lists(FIELD, max_size=20)),
        max_size=30,
    )
)
def test_checksum_valid_garbage_fields(sentences: list[tuple[str, str, list[str]]]) -> None:
    """Well-framed sentences with a correct checksum and nonsense fields reach the decoder."""
    data = "".join(
        with_checksum(",".join([talker + kind, *fields])) + "\r\n"
        for talker, kind, fields in sentences
    )
    run(data.encode())


@st.composite
def damaged_capture(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(captures())))
    for _ in range(draw(st.integers(0, 40))):  # bit flips
        index = draw(st.integers(0, len(data) - 1))
        data[index] ^= 1 << draw(st.integers(0, 7))
    if draw(st.booleans()):  # truncation
        data = data[: draw(st.integers(0, len(data)))]
    if draw(st.booleans()):  # splice in a piece of another capture
        other = draw(st.sampled_from(captures()))
        start = draw(st.integers(0, len(other) - 1))
        at = draw(st.integers(0, len(data)))
        data[at:at] = other[start : start + draw(st.integers(1, 500))]
    if draw(st.booleans()):  # drop a range
        at = draw(st.integers(0, len(data)))
        del data[at : at + draw(st.integers(1, 200))]
    return bytes(data)


@FUZZ
@given(damaged_capture(), st.integers(1, 512))
def test_damaged_real_captures(data: bytes, chunk: int) -> None:
    run(data, chunk)


def test_every_capture_decodes_whole_and_in_one_byte_chunks() -> None:
    for path in [*sorted((DATA / "gpsd").glob("*.log")), DATA / "pynmea2" / "data.log"]:
        data = path.read_bytes()
        assert [f.time_s for f in run(data)] == [f.time_s for f in run(data, 1)], path.name


def test_pynmea2_sentences_survive() -> None:
    lines = (DATA / "pynmea2" / "pynmea2_test_sentences.tsv").read_text().splitlines()[1:]
    sentences = [line.split("\t")[3] for line in lines]
    decoder = NmeaDecoder(accept_missing_checksum=True)
    for sentence in sentences:
        for fix in decoder.feed(sentence.encode() + b"\r\n"):
            check_sane(fix)
    decoder.flush()
    assert decoder.counters["sentences"] >= len(sentences) - 5
