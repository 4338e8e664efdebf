"""The framer: real-world line damage is dropped and counted, valid sentences pass intact."""

from __future__ import annotations

import pytest
from gps_helpers import DATA, with_checksum

from edge_agent.gps.counters import Counters
from edge_agent.gps.framer import NmeaFramer, nmea_checksum

GGA = with_checksum("GPGGA,093802,5213.1439,N,02100.6511,E,2,10,0.9,137.2,M,36.2,M,,")
RMC = with_checksum("GPRMC,093802,A,5213.1439,N,02100.6511,E,000.0,226.0,160305,004.2,E,D")


def frame(data: bytes, **kwargs: bool) -> tuple[list[str], Counters]:
    counters = Counters()
    framer = NmeaFramer(counters, **kwargs)
    out = framer.feed(data) + framer.flush()
    return out, counters


def test_checksum_of_known_sentence() -> None:
    assert nmea_checksum(b"GPGSA,A,3,03,06,15,16,18,19,21,22,,27,29,,1.6,0.9,1.3") == 0x34


@pytest.mark.parametrize("ending", [b"\r\n", b"\n", b"\r", b"\r\r\n"])
def test_line_endings(ending: bytes) -> None:
    out, counters = frame((GGA + "\r\n").encode().replace(b"\r\n", ending) * 3)
    assert out == [GGA] * 3
    assert counters.as_dict() == {}


def test_collided_sentences_keep_the_complete_one() -> None:
    truncated = "$GPGSV,4,1,15,02,11,115,36,0"
    out, counters = frame(f"{truncated}{RMC}\r\n".encode())
    assert out == [RMC]
    assert counters["collided"] == 1


def test_two_complete_sentences_on_one_line() -> None:
    out, _ = frame(f"{GGA}{RMC}\r\n".encode())
    assert out == [GGA, RMC]


def test_bad_checksum_dropped_and_counted() -> None:
    bad = GGA[:-2] + ("00" if GGA[-2:] != "00" else "01")
    out, counters = frame(f"{bad}\r\n{RMC}\r\n".encode())
    assert out == [RMC]
    assert counters["bad_checksum"] == 1


def test_lowercase_and_one_digit_checksums() -> None:
    candidates = (f"GPTXT,{a}{b}" for a in "MNOPQRSTUVWXYZ" for b in "0123456789")
    body = next(c for c in candidates if nmea_checksum(c.encode()) < 0x10)
    value = nmea_checksum(body.encode())
    line = f"${body}*{value:X}\r\n${body}*{value:02x}\r\n"
    out, counters = frame(line.encode())
    assert len(out) == 2
    assert counters["one_digit_checksum"] == 1


def test_missing_checksum_policy() -> None:
    line = b"$GPGGA,222449,3349.0337,S,01843.9282,E,1,07,02.31,000115.4,M,0033.3,M,,\r\n"
    out, counters = frame(line)
    assert out == []
    assert counters["no_checksum"] == 1
    out, counters = frame(line, accept_missing_checksum=True)
    assert len(out) == 1
    assert counters["accepted_without_checksum"] == 1


def test_nul_padding_and_binary_junk() -> None:
    ubx = b"\xb5\x62\x01\x07\x5c\x00" + bytes(range(256))
    data = b"\x00" * 40 + GGA.encode() + b"\r\n" + ubx + RMC.encode() + b"\r\n"
    data += b"$GPRMC,000346.03,A,4808" + b"\x00" * 12 + b"\r\n"
    out, counters = frame(data)
    assert out == [GGA, RMC]
    assert counters["binary_junk"] + counters["too_long"] >= 1
    assert counters["no_checksum"] == 1  # the NUL-padded, truncated RMC


def test_escape_sequence_inside_sentence_is_dropped() -> None:
    damaged = GGA[:20] + "\x1b[0m" + GGA[20:]
    out, counters = frame(f"{damaged}\r\n{RMC}\r\n".encode())
    assert out == [RMC]
    assert counters["binary_junk"] == 1


def test_leading_garbage_and_banners() -> None:
    out, counters = frame(f" r{RMC}\r\nSkyTraq Venus6 ready\r\n".encode())
    assert out == [RMC]
    assert counters["leading_junk"] == 1
    assert counters["not_nmea"] == 1


def test_long_lines_accepted_up_to_limit_and_counted() -> None:
    long_ok = with_checksum("GNGGA," + "1" * 90)
    too_long = with_checksum("GNGGA," + "1" * 200)
    out, counters = frame(f"{long_ok}\r\n{too_long}\r\n".encode())
    assert out == [long_ok]
    assert counters["over_82_chars"] == 1
    assert counters["too_long"] == 1


def test_unterminated_binary_stream_keeps_memory_bounded() -> None:
    framer = NmeaFramer(max_buffer=1024)
    for _ in range(100):
        framer.feed(b"\xa5" * 1000)
    assert len(framer._buffer) <= 1024
    assert framer.feed(f"\r\n{GGA}\r\n".encode()) == [GGA]


def test_byte_by_byte_equals_whole(gpsd_logs: list) -> None:
    data = (DATA / "gpsd" / "gp-320fw-2019-04-07-coldboot.log").read_bytes()
    whole, _ = frame(data)
    framer = NmeaFramer()
    pieces: list[str] = []
    for index in range(len(data)):
        pieces.extend(framer.feed(data[index : index + 1]))
    pieces.extend(framer.flush())
    assert pieces == whole
    assert len(whole) > 50


def test_comment_lines_skipped_only_when_asked() -> None:
    data = f"# $GPGGA in a comment\r\n{GGA}\r\n".encode()
    out, counters = frame(data, skip_comments=True)
    assert out == [GGA]
    assert counters["comment_line"] == 1


def test_reset_discards_partial_line() -> None:
    framer = NmeaFramer()
    assert framer.feed(GGA[:30].encode()) == []
    framer.reset()
    assert framer.counters["partial_line_discarded"] == 1
    assert framer.feed(f"{RMC}\r\n".encode()) == [RMC]
