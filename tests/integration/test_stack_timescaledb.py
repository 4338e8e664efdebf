"""TimescaleDB from deploy/local/timescaledb.sh, for real: migrations make hypertables, the
licence is detected, duplicates are absorbed, time_bucket answers, and migrating is idempotent
and safe when two processes race. Each test works in its own throw-away database."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from cloud.db import MigrationError, connect, load_migrations, migrate, status
from cloud.db.maintenance import drop_before
from cloud.db.migrate import Migration
from cloud.db.scratch import scratch_database

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
def scratch_url(database_url: str) -> Iterator[str]:
    with scratch_database(database_url) as url:
        yield url


@pytest.fixture
def conn(scratch_url: str) -> Iterator[psycopg.Connection[Any]]:
    with connect(scratch_url, autocommit=True) as c:
        yield c


def _fix(vehicle: str, t: datetime, seq: int, lat: float, speed: float) -> tuple[object, ...]:
    return ("acme", vehicle, t, seq, lat, 24.938, speed)


INSERT_FIX = (
    "INSERT INTO fixes (tenant_id, vehicle_id, time, seq, lat, lon, speed_mps) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
)


def test_migrate_makes_hypertables_and_detects_licence(conn: psycopg.Connection[Any]) -> None:
    result = migrate(conn)
    assert [m.version for m in result.applied] == [m.version for m in load_migrations()]
    caps = result.capabilities
    assert caps.timescaledb_version is not None
    assert caps.license in {"apache", "timescale"}
    assert caps.storage == "hypertable"
    assert caps.native_policies == (caps.license == "timescale")
    hypertables = {
        r[0]
        for r in conn.execute("SELECT hypertable_name FROM timescaledb_information.hypertables")
    }
    assert hypertables == {"fixes", "sensor_samples", "events", "quarantine"}
    assert status(conn).tables == dict.fromkeys(sorted(hypertables), "hypertable")
    # The SQL-side view of the same facts, for jobs written in SQL.
    row = conn.execute("SELECT * FROM flota_capabilities()").fetchone()
    assert row == (caps.timescaledb_version, caps.license, caps.native_policies)


def test_fixes_deduplicate_and_time_bucket(conn: psycopg.Connection[Any]) -> None:
    migrate(conn)
    rows = [
        _fix("truck-1", T0 + timedelta(seconds=s), s, 60.17 + s * 1e-6, 10.0) for s in range(120)
    ]
    rows += [_fix("truck-2", T0 + timedelta(seconds=s), s, 60.2, 20.0) for s in range(60)]
    with conn.cursor() as cur:
        cur.executemany(INSERT_FIX, rows)
        # A resent fix (same vehicle and time, even with another seq) is absorbed.
        cur.execute(INSERT_FIX, _fix("truck-1", T0, 999, 1.0, 99.0))
        assert cur.rowcount == 0
    assert conn.execute("SELECT count(*) FROM fixes").fetchone() == (180,)
    kept = conn.execute(
        "SELECT seq, lat FROM fixes WHERE vehicle_id = 'truck-1' AND time = %s", (T0,)
    ).fetchone()
    assert kept == (0, pytest.approx(60.17, abs=1e-9))
    buckets = conn.execute(
        "SELECT vehicle_id, time_bucket('1 minute', time) AS b, count(*), avg(speed_mps) "
        "FROM fixes GROUP BY 1, 2 ORDER BY 1, 2"
    ).fetchall()
    assert buckets == [
        ("truck-1", T0, 60, 10.0),
        ("truck-1", T0 + timedelta(minutes=1), 60, 10.0),
        ("truck-2", T0, 60, 20.0),
    ]
    # 1e-6 degree resolution survives the round trip exactly.
    lat = conn.execute(
        "SELECT lat FROM fixes WHERE vehicle_id = 'truck-1' AND seq = 119"
    ).fetchone()
    assert lat is not None
    assert round(lat[0] * 1e6) == round((60.17 + 119e-6) * 1e6)


def test_latest_position_never_moves_backwards(conn: psycopg.Connection[Any]) -> None:
    migrate(conn)
    upsert = (
        "INSERT INTO vehicle_latest (tenant_id, vehicle_id, time, seq, lat, lon) "
        "VALUES ('acme', 'truck-1', %s, %s, %s, 24.9) "
        "ON CONFLICT (tenant_id, vehicle_id) DO UPDATE SET time = EXCLUDED.time, "
        "seq = EXCLUDED.seq, lat = EXCLUDED.lat, lon = EXCLUDED.lon "
        "WHERE vehicle_latest.time < EXCLUDED.time"
    )
    conn.execute(upsert, (T0 + timedelta(seconds=10), 10, 60.3))
    conn.execute(upsert, (T0, 1, 60.1))  # late
    assert conn.execute("SELECT seq, lat FROM vehicle_latest").fetchall() == [(10, 60.3)]


def test_migrate_again_is_a_no_op(conn: psycopg.Connection[Any]) -> None:
    migrate(conn)
    before = conn.execute("SELECT version, applied_at FROM schema_migrations").fetchall()
    again = migrate(conn)
    assert again.applied == []
    assert conn.execute("SELECT version, applied_at FROM schema_migrations").fetchall() == before
    assert status(conn).pending == []


def test_two_racing_migrators_apply_each_migration_once(scratch_url: str) -> None:
    results: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        try:
            with connect(scratch_url, autocommit=True) as c:
                barrier.wait()
                results.append(len(migrate(c).applied))
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results) == [0, len(load_migrations())]


def test_a_migration_edited_after_apply_is_refused(conn: psycopg.Connection[Any]) -> None:
    shipped = load_migrations()
    migrate(conn)
    edited = [*shipped[:-1], Migration(shipped[-1].version, shipped[-1].name, "SELECT 1;")]
    with pytest.raises(MigrationError, match="edited after"):
        migrate(conn, migrations=edited)
    assert status(conn).mismatched == []  # the shipped files still match


def test_retention_drops_whole_old_chunks(conn: psycopg.Connection[Any]) -> None:
    migrate(conn)
    old = T0 - timedelta(days=40)
    conn.execute(INSERT_FIX, _fix("truck-1", old, 1, 60.1, 1.0))
    conn.execute(INSERT_FIX, _fix("truck-1", T0, 2, 60.1, 1.0))
    assert drop_before(conn, "fixes", T0 - timedelta(days=30)) == 1
    assert conn.execute("SELECT seq FROM fixes").fetchall() == [(2,)]


def test_partitions_path_on_the_same_server(conn: psycopg.Connection[Any]) -> None:
    """`--storage partitions` builds the plain-PostgreSQL schema even where TimescaleDB exists."""
    result = migrate(conn, storage="partitions")
    assert set(status(conn).tables.values()) == {"partitions"}
    # The server offers TimescaleDB, but this path neither installs nor uses it.
    assert result.capabilities.timescaledb_available
    assert result.capabilities.timescaledb_version is None
    now = datetime.now(UTC)
    conn.execute(INSERT_FIX, _fix("truck-1", now, 1, 60.1, 1.0))
    conn.execute(INSERT_FIX, _fix("truck-1", now, 1, 60.1, 1.0))
    part = conn.execute(
        "SELECT tableoid::regclass::text, count(*) FROM fixes GROUP BY 1"
    ).fetchall()
    assert part == [(f"fixes_p{now:%Y%m%d}", 1)]
