"""Sentences -> epochs -> fixes: boundaries, dates, validity, units, talkers."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from gps_helpers import DATA, with_checksum

from edge_agent.gps.decoder import NmeaDecoder, decode_chunks
from edge_agent.gps.fix import GpsFix


def run(*bodies: str, **kwargs: object) -> tuple[list[GpsFix], NmeaDecoder]:
    decoder = NmeaDecoder(**kwargs)  # type: ignore[arg-type]
    data = "".join(with_checksum(b) + "\r\n" for b in bodies).encode()
    return decoder.feed(data) + decoder.flush(), decoder


def epoch(hhmmss: str, *, date_ddmmyy: str = "160305", talker: str = "GP") -> list[str]:
    return [
        f"{talker}RMC,{hhmmss},A,5213.1439,N,02100.6511,E,010.0,226.0,{date_ddmmyy},004.2,E,D",
        f"{talker}GGA,{hhmmss},5213.1439,N,02100.6511,E,2,10,0.9,137.2,M,36.2,M,,",
        f"{talker}GSA,A,3,03,06,15,16,18,19,21,22,,27,29,,1.6,0.9,1.3",
    ]


def test_one_fix_per_epoch_with_units() -> None:
    fixes, _ = run(*epoch("093802"), *epoch("093803"))
    assert [f.iso_time() for f in fixes] == [
        "2005-03-16T09:38:02.000Z",
        "2005-03-16T09:38:03.000Z",
    ]
    fix = fixes[0]
    assert fix.lat == pytest.approx(52.219065, abs=1e-9)
    assert fix.lon == pytest.approx(21.0108516667, abs=1e-9)
    assert fix.speed_mps == pytest.approx(10 * 1852 / 3600)
    assert (fix.track_deg, fix.alt_m, fix.geoid_sep_m) == (226.0, 137.2, 36.2)
    assert (fix.mode, fix.quality, fix.hdop, fix.pdop, fix.sats) == (3, 2, 0.9, 1.6, 10)
    assert fix.utc == datetime(2005, 3, 16, 9, 38, 2, tzinfo=UTC)


@pytest.mark.parametrize("talker", ["GP", "GN", "GL", "GA", "GB", "BD", "QZ", "GQ"])
def test_any_talker(talker: str) -> None:
    fixes, _ = run(*epoch("093802", talker=talker), *epoch("093803", talker=talker))
    assert len(fixes) == 2
    assert fixes[0].talker == talker


def test_early_emission_after_learning_the_cycle() -> None:
    decoder = NmeaDecoder()
    emitted_at: list[int] = []
    for second in range(5):
        for index, body in enumerate(epoch(f"0938{second:02d}")):
            if decoder.feed((with_checksum(body) + "\r\n").encode()):
                emitted_at.append(second * 10 + index)
    # Epochs 0 and 1 close when the next time arrives (index 0); from epoch 2 on, the learned
    # cycle ender (GSA, index 2) closes the epoch at once.
    assert emitted_at == [10, 20, 22, 32, 42]


def test_late_sentence_is_counted_and_cycle_relearned() -> None:
    bodies = [b for s in range(4) for b in epoch(f"0938{s:02d}")]
    late = "GPGLL,5213.1439,N,02100.6511,E,093803,A,D"
    fixes, decoder = run(*bodies, late, *epoch("093804"))
    assert decoder.counters["late_sentence"] == 1
    assert len(fixes) == 5


def test_date_carried_across_epochs_and_midnight() -> None:
    gga = "GPGGA,{},5213.1439,N,02100.6511,E,1,10,0.9,137.2,M,36.2,M,,"
    fixes, _ = run(
        *epoch("235958", date_ddmmyy="311224"), gga.format("235959"), gga.format("000000")
    )
    assert [f.iso_time() for f in fixes] == [
        "2024-12-31T23:59:58.000Z",
        "2024-12-31T23:59:59.000Z",
        "2025-01-01T00:00:00.000Z",
    ]


def test_zda_gives_the_date() -> None:
    fixes, _ = run(
        "GPZDA,120000.50,05,03,2021,00,00",
        "GPGGA,120000.50,5213.1439,N,02100.6511,E,1,10,0.9,137.2,M,36.2,M,,",
    )
    assert [f.iso_time() for f in fixes] == ["2021-03-05T12:00:00.500Z"]


def test_gga_only_stream_has_no_absolute_time() -> None:
    gga = "GPGGA,{},5213.1439,N,02100.6511,E,1,10,0.9,137.2,M,36.2,M,,"
    fixes, decoder = run(gga.format("101010"), gga.format("101011"))
    assert [f.time_s for f in fixes] == [None, None]
    assert [f.time_of_day_s for f in fixes] == [36610.0, 36611.0]
    assert decoder.counters["fix_without_date"] == 2


def test_week_rollover_dates_are_corrected() -> None:
    fixes, decoder = run(*epoch("000430", date_ddmmyy="220899"))
    assert fixes[0].iso_time() == "2019-04-07T00:04:30.000Z"
    assert decoder.counters["week_rollover_corrected"] == 1


def test_reference_clock_corrects_a_rollover_after_2000() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    fixes, _ = run(*epoch("120000", date_ddmmyy="170606"), reference_clock=lambda: now)
    assert fixes[0].utc is not None
    assert fixes[0].utc.date() == date(2026, 1, 31)  # 2006-06-17 + 1024 weeks


@pytest.mark.parametrize(
    "bodies",
    [
        ["GPRMC,093802,V,5213.1439,N,02100.6511,E,0.0,0.0,160305,,,N"],
        ["GPGGA,093802,5213.1439,N,02100.6511,E,0,00,,,M,,M,,"],
        ["GPGGA,093802,5213.1439,N,02100.6511,E,8,10,2.0,268.8,M,-33.9,M,,"],  # simulator
        ["GPGLL,5213.1439,N,02100.6511,E,093802,V,N"],
        ["GNGNS,093802,5213.1439,N,02100.6511,E,NNNN,00,,,0.0,,"],
        ["GNRMC,093802,A,5213.1439,N,02100.6511,E,0.0,0.0,160305,,,A,V"],  # 4.1 nav status V
        ["GPGGA,093802,0000.0000,N,00000.0000,E,1,04,1.0,0.0,M,0.0,M,,"],  # (0, 0)
    ],
)
def test_no_fix_from_invalid_sentences(bodies: list[str]) -> None:
    fixes, decoder = run(*bodies)
    assert fixes == []
    assert decoder.counters["epochs_without_fix"] == 1


def test_nmea41_fields_and_gns() -> None:
    fixes, _ = run(
        "GNRMC,101010.00,A,4404.14083,N,12118.85886,W,0.5,90.0,110720,,,A,V"[:-2] + ",S",
        "GNGNS,101010.00,4404.14083,N,12118.85886,W,AANN,14,0.8,1000.5,-20.1,,,S",
        "GNGSA,A,3,01,02,03,,,,,,,,,,1.2,0.8,0.9,1",
        "GNGSA,A,3,65,66,,,,,,,,,,,1.2,0.8,0.9,2",
    )
    assert len(fixes) == 1
    fix = fixes[0]
    assert (fix.mode, fix.sats, fix.alt_m, fix.hdop) == (3, 14, 1000.5, 0.8)
    assert fix.lon < 0


def test_sats_from_gsa_when_no_count_given() -> None:
    fixes, _ = run(
        "GNRMC,101010.00,A,4404.14083,N,12118.85886,W,0.5,90.0,110720,,,A",
        "GNGSA,A,2,01,02,03,,,,,,,,,,1.2,0.8,0.9,1",
        "GNGSA,A,2,01,02,,,,,,,,,,,1.2,0.8,0.9,2",  # same PRNs, other system
    )
    assert (fixes[0].mode, fixes[0].sats, fixes[0].alt_m) == (2, 5, None)


def test_vtg_speed_and_gst_errors() -> None:
    fixes, _ = run(
        "GPGGA,101010.00,4404.14083,N,12118.85886,W,4,12,0.6,100.0,M,-20.0,M,1.0,0001",
        "GPVTG,45.0,T,,M,,N,36.0,K,D",
        "GPGST,101010.00,0.5,0.02,0.01,45.0,0.011,0.012,0.030",
        "GPZDA,101010.00,11,07,2020,,",
    )
    fix = fixes[0]
    assert fix.speed_mps == pytest.approx(10.0)
    assert (fix.track_deg, fix.quality) == (45.0, 4)
    assert (fix.err_lat_m, fix.err_lon_m, fix.err_alt_m) == (0.011, 0.012, 0.030)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("GPGGA,256199,5213.1439,N,02100.6511,E,1,10,0.9,137.2,M,36.2,M,,", "bad_time"),
        ("GPRMC,093802,A,5213.1439,N,02100.6511,E,0.0,0.0,320105,,,A", "bad_date"),
        ("GPGLL,36000.0000,N,72000.0000,E,000452.981,A", "bad_position"),
        ("GPGGA,093802,5213.1439,X,02100.6511,E,1,10,0.9,137.2,M,36.2,M,,", "bad_position"),
        ("GPXYZ,1,2,3", "unknown_type"),
        ("GPGSV,1,1,00", "ignored_type"),
        ("PGRME,1.7,M,2.4,M,3.0,M", "proprietary"),
    ],
)
def test_bad_sentences_counted_by_reason(body: str, reason: str) -> None:
    fixes, decoder = run(body)
    assert fixes == []
    assert decoder.counters[reason] == 1


def test_early_emission_matches_boundary_emission_on_captures() -> None:
    for name in ("ublox-8.log", "telit-he910.log", "nmea-rtk.log", "garmin48.log"):
        data = (DATA / "gpsd" / name).read_bytes()
        chunks = [data[i : i + 97] for i in range(0, len(data), 97)]
        early = list(decode_chunks(chunks, NmeaDecoder(skip_comments=True)))
        late = list(decode_chunks(chunks, NmeaDecoder(skip_comments=True, early_emit=False)))
        assert [f.time_s for f in early] == [f.time_s for f in late], name
        assert [(f.lat, f.lon) for f in early] == [(f.lat, f.lon) for f in late], name
