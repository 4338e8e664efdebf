"""The store's two ways into ``fixes`` store the same rows: the direct binary COPY (the fast
path) and the staging table with INSERT ... ON CONFLICT (the replay-proof path), on the real
TimescaleDB, with every pattern of missing optional values and ids of different lengths."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from pipeline_support import ingest_database

from cloud.ingest import store as st
from cloud.ingest.pgcopy import FIX_COLUMNS, fixes_copy
from cloud.ingest.screen import gather
from flota_wire.schema import Fix
from flota_wire.telemetry import decode_telemetry_columns, encode_telemetry

NOW = 1_795_780_800_000_000


@pytest.fixture(scope="module")
def db(database_url: str) -> Iterator[str]:
    with ingest_database(database_url, "flota_ingest_copy") as url:
        yield url


def _fixes(rng: random.Random, n: int, seq0: int) -> list[Fix]:
    out = []
    for i in range(n):
        opt = [rng.random() < 0.7 for _ in range(5)]
        out.append(
            Fix(seq=seq0 + i, time_us=NOW + i * 1_000_123,
                lat_e6=rng.randrange(-90_000_000, 90_000_001),
                lon_e6=rng.randrange(-180_000_000, 180_000_001), fix_mode=rng.choice((2, 3)),
                alt_dm=rng.randrange(-5000, 90000) if opt[0] else None,
                speed_cmps=rng.randrange(0, 9000) if opt[1] else None,
                track_cdeg=rng.randrange(0, 36000) if opt[2] else None,
                hdop_c=rng.randrange(50, 2000) if opt[3] else None,
                sats=rng.randrange(0, 30) if opt[4] else None)
        )  # fmt: skip
    return out


def _rows(conn: psycopg.Connection[Any], tenant: str) -> list[tuple[Any, ...]]:
    cols = ", ".join(c for c in FIX_COLUMNS if c != "tenant_id")
    return conn.execute(
        f"SELECT {cols} FROM fixes WHERE tenant_id = %s ORDER BY vehicle_id, time", (tenant,)
    ).fetchall()


def test_direct_copy_equals_the_staging_path(db: str) -> None:
    rng = random.Random(11)
    vehicles = ["v", "van-0042", "a-much-longer-vehicle-id-" + "x" * 30]
    parts = []
    for v, _ in enumerate(vehicles):
        fixes = _fixes(rng, 300, seq0=1000 * v)
        for i in range(0, len(fixes), 37):
            parts.append((v, decode_telemetry_columns(encode_telemetry(fixes[i : i + 37]))))
    rng.shuffle(parts)
    vix, cols = gather(parts)
    with psycopg.connect(db) as conn:
        conn.execute(st._SETUP)
        cur = conn.cursor()
        # tenant "direct": the fast path
        keys = [("direct", v) for v in vehicles]
        with cur.copy(f"COPY fixes ({', '.join(FIX_COLUMNS)}) FROM STDIN (FORMAT BINARY)") as cp:
            cp.write(fixes_copy(keys, vix, cols))
        # tenant "staged": the staging path, as the store runs it
        with cur.copy("COPY stage_vehicles (vix, tenant_id, vehicle_id) FROM STDIN") as cp:
            for v, name in enumerate(vehicles):
                cp.write_row((v, "staged", name))
        stage_cols = ", ".join(c for c, _, _ in st._STAGE)
        with cur.copy(f"COPY fixes_stage ({stage_cols}) FROM STDIN (FORMAT BINARY)") as cp:
            cp.write(st.binary_copy(vix, cols))
        assert cur.execute(st._INSERT).rowcount == len(vix)
        conn.commit()
        direct, staged = _rows(conn, "direct"), _rows(conn, "staged")
    assert len(direct) == len(vix) == 900
    assert direct == staged
    nulls = {tuple(x is None for x in r[5:10]) for r in direct}  # alt_m .. sats
    assert len(nulls) == 32  # many patterns of missing values went through both paths


def test_direct_copy_of_a_stored_fix_is_refused_whole(db: str) -> None:
    """The fast path relies on the unique key refusing the whole COPY when any fix is already
    stored; the store then takes the staging path (which counts the duplicates)."""
    fixes = _fixes(random.Random(3), 20, seq0=1)
    vix, cols = gather([(0, decode_telemetry_columns(encode_telemetry(fixes)))])
    keys = [("refused", "van")]
    copy = f"COPY fixes ({', '.join(FIX_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
    with psycopg.connect(db) as conn:
        one_vix, one_cols = vix[5:6], {k: v[5:6] for k, v in cols.items()}
        with conn.cursor().copy(copy) as cp:
            cp.write(fixes_copy(keys, one_vix, one_cols))
        conn.commit()
        with pytest.raises(psycopg.errors.UniqueViolation), conn.cursor().copy(copy) as cp:
            cp.write(fixes_copy(keys, vix, cols))
        conn.rollback()
        n = conn.execute("SELECT count(*) FROM fixes WHERE tenant_id = 'refused'").fetchone()
    assert n == (1,)
