"""The screen's verdicts: the column-wise fast path and the exact sequential path agree, jumps
are judged against the last accepted fix, late fixes against their time neighbours."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.ingest import validate
from cloud.ingest.screen import NULL, Point, Screen, gather
from cloud.ingest.store import binary_copy, newest_per_vehicle
from flota_wire.schema import Fix
from flota_wire.telemetry import decode_telemetry_columns, encode_telemetry

NOW = 1_795_780_800_000_000
LIM = validate.Limits()


def drive(n: int, t0: int = NOW - 3_600_000_000, seq0: int = 1) -> list[Fix]:
    return [
        Fix(seq=seq0 + i, time_us=t0 + i * 1_000_000, lat_e6=60_000_000 + i * 100,
            lon_e6=24_000_000, speed_cmps=1100, track_cdeg=0, alt_dm=100, hdop_c=80, sats=9)
        for i in range(n)
    ]  # fmt: skip


def no_neighbours(_v: int, times: Sequence[int]) -> list[tuple[Point | None, Point | None]]:
    return [(None, None)] * len(times)


def run(screen: Screen, parts: list[tuple[int, list[Fix]]], neighbours=no_neighbours):  # type: ignore[no-untyped-def]
    cols = [(v, decode_telemetry_columns(encode_telemetry(f))) for v, f in parts]
    vix, arrays = gather(cols)
    return screen.screen(vix, arrays, now_us=NOW, neighbours=neighbours)


def reasons(result) -> dict[int, str]:  # type: ignore[no-untyped-def]
    return {r.seq: r.reason for r in result.rejected}


def test_clean_batches_pass_whole_and_remember_the_last_fix() -> None:
    screen = Screen(LIM)
    fixes = drive(50)
    out = run(screen, [(0, fixes[:25]), (1, drive(10, seq0=1)), (0, fixes[25:])])
    assert len(out) == 60
    assert out.rejected == []
    assert out.cols["seq"][:25].tolist() == list(range(1, 26))  # arrival order kept
    last = fixes[-1]
    assert screen.last[0] == (last.time_us, last.lat_e6, last.lon_e6)


def test_each_bad_kind_gets_its_reason() -> None:
    screen = Screen(LIM)
    fixes = drive(30)
    bad = {
        3: replace(fixes[3], lat_e6=0, lon_e6=0),
        5: replace(fixes[5], lat_e6=91_000_000),
        7: replace(fixes[7], speed_cmps=16_000),
        9: replace(fixes[9], time_us=NOW + 10**9),
        11: replace(fixes[11], time_us=NOW - 31 * 86_400 * 10**6),
        15: replace(fixes[15], lat_e6=fixes[15].lat_e6 + 1_000_000),  # 111 km away
        20: replace(fixes[20], time_us=fixes[19].time_us),
    }
    out = run(screen, [(0, [bad.get(i, f) for i, f in enumerate(fixes)])])
    assert reasons(out) == {
        4: "null_island", 6: "out_of_range", 8: "out_of_range", 10: "future", 12: "too_old",
        16: "impossible_speed", 21: "duplicate",
    }  # fmt: skip
    assert len(out) == 30 - 7


def test_after_a_jump_the_next_fix_is_judged_against_the_last_good_one() -> None:
    screen = Screen(LIM)
    fixes = drive(10)
    jumped = [replace(f, lat_e6=f.lat_e6 + 2_000_000) if f.seq in (4, 5) else f for f in fixes]
    out = run(screen, [(0, jumped)])
    assert reasons(out) == {4: "impossible_speed", 5: "impossible_speed"}


def test_the_remembered_fix_judges_the_next_poll() -> None:
    screen = Screen(LIM)
    fixes = drive(20)
    run(screen, [(0, fixes[:10])])
    far = replace(fixes[10], lat_e6=fixes[10].lat_e6 + 3_000_000)
    out = run(screen, [(0, [far, *fixes[11:]])])
    assert reasons(out) == {11: "impossible_speed"}


def test_a_late_fix_is_judged_by_its_neighbours_not_by_the_newest() -> None:
    screen = Screen(LIM)
    fixes = drive(200)
    run(screen, [(0, fixes[100:])])  # the newest is fix 200, far along the road
    stored = {f.time_us: f for f in fixes[100:]}
    calls: list[list[int]] = []

    def neighbours(_v: int, times: Sequence[int]) -> list[tuple[Point | None, Point | None]]:
        calls.append(list(times))
        nxt = min(stored)
        return [(None, (nxt, stored[nxt].lat_e6, stored[nxt].lon_e6)) for _ in times]

    late = fixes[90:100]
    out = run(screen, [(0, late)], neighbours)
    assert out.rejected == []  # 10 s and 1 km back from the newest is not a jump
    assert calls == [[f.time_us for f in late]]
    assert screen.last[0][0] == fixes[-1].time_us  # a late fix never moves the newest


def test_a_late_jump_is_caught() -> None:
    screen = Screen(LIM)
    fixes = drive(50)
    run(screen, [(0, fixes[20:])])
    before = (fixes[18].time_us, fixes[18].lat_e6, fixes[18].lon_e6)
    after = (fixes[20].time_us, fixes[20].lat_e6, fixes[20].lon_e6)
    late = replace(fixes[19], lon_e6=fixes[19].lon_e6 + 1_000_000)
    out = run(screen, [(0, [late])], lambda _v, t: [(before, after)] * len(t))
    assert reasons(out) == {20: "impossible_speed"}


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(1, 40)), min_size=1, max_size=8),
       st.integers(0, 10**6))  # fmt: skip
def test_fast_path_equals_sequential_rules(parts: list[tuple[int, int]], seed: int) -> None:
    """Whatever mix of vehicles and (sometimes bad) fixes: the screen's verdicts equal a plain
    fix-by-fix application of the rules."""
    rng = random.Random(seed)
    tracks = {v: drive(400, seq0=1) for v in range(3)}
    pos = dict.fromkeys(range(3), 0)
    batches = []
    for v, n in parts:
        chunk = tracks[v][pos[v] : pos[v] + n]
        pos[v] += n
        if not chunk:
            continue
        if rng.random() < 0.3:
            i = rng.randrange(len(chunk))
            chunk[i] = replace(chunk[i], lat_e6=chunk[i].lat_e6 + 5_000_000)
        batches.append((v, chunk))
    if not batches:
        return
    out = run(Screen(LIM), batches)
    last: dict[int, tuple[int, int, int]] = {}
    expect_rejected = set()
    for v, chunk in batches:
        for f in chunk:
            prev = last.get(v)
            if prev is not None and validate.is_jump(prev, f.lat_e6, f.lon_e6, f.time_us, LIM):
                expect_rejected.add((v, f.seq))
            else:
                last[v] = (f.time_us, f.lat_e6, f.lon_e6)
    assert {(r.vix, r.seq) for r in out.rejected} == expect_rejected


def test_binary_copy_rows_have_fixed_width_and_null_markers() -> None:
    fixes = [replace(f, alt_dm=None, sats=None) for f in drive(3)]
    vix, cols = gather([(7, decode_telemetry_columns(encode_telemetry(fixes)))])
    assert (cols["alt_dm"] == NULL).all()
    data = binary_copy(vix, cols)
    row = 2 + 11 * 4 + 8 * 5 + 4 * 4 + 2 * 2
    assert len(data) == 19 + 3 * row + 2
    assert data.startswith(b"PGCOPY\n\xff\r\n\x00")


def test_newest_per_vehicle() -> None:
    vix = np.array([1, 0, 1, 0, 1], dtype=np.int64)
    t = np.array([5, 9, 7, 3, 6], dtype=np.int64)
    assert sorted(newest_per_vehicle(vix, t)) == [1, 2]


@pytest.mark.parametrize("speed", [None, 0, 15_000])
def test_speed_limits_in_both_paths(speed: int | None) -> None:
    out = run(Screen(LIM), [(0, [replace(f, speed_cmps=speed) for f in drive(5)])])
    assert out.rejected == []
