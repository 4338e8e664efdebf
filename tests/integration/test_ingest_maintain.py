"""`flota ingest maintain` on both engines: the stack's TimescaleDB (Apache edition: our own
drop_chunks) and embedded PostgreSQL (plain partitions): rollups per hour and day with GPS jumps
left out of the distance, and retention dropping whole chunks or partitions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr

from cloud.db.capabilities import detect
from cloud.db.connection import connect
from cloud.db.embedded import EmbeddedPostgres
from cloud.db.migrate import migrate
from cloud.db.scratch import scratch_database
from cloud.ingest.maintain import maintain_once
from cloud.settings import MaintainSettings

H0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
M_PER_DEG = 111_195.0  # metres per degree of latitude on the rollup's sphere


@pytest.fixture(params=["timescaledb", "embedded"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "timescaledb":
        with scratch_database(request.getfixturevalue("database_url"), prefix="flota_maint") as url:
            with connect(url, autocommit=True) as conn:
                migrate(conn)
            yield url
    else:
        pg = EmbeddedPostgres(tmp_path / "pg", keep_data=False)
        url = pg.start()
        try:
            with connect(url, autocommit=True) as conn:
                migrate(conn)
            yield url
        finally:
            pg.stop()


def _fixes(conn: psycopg.Connection[Any]) -> None:
    rows = []
    # 30 min driving north at 10 m/s, then 10 min standing; one GPS jump of 55 km at 00:10:00.
    for i in range(2400):
        moving = i < 1800
        lat = 60.0 + min(i, 1799) * 10 / M_PER_DEG
        if i == 600:
            lat += 0.5
        rows.append(("acme", "t1", H0 + timedelta(seconds=i), i + 1, lat, 24.9,
                     10.0 if moving else 0.0))  # fmt: skip
    with conn.cursor().copy(
        "COPY fixes (tenant_id, vehicle_id, time, seq, lat, lon, speed_mps) FROM STDIN"
    ) as cp:
        for r in rows:
            cp.write_row(r)
    for k in range(3):
        conn.execute(
            "INSERT INTO events (tenant_id, vehicle_id, time, kind, event_key, source) "
            "VALUES ('acme', 't1', %s, 'harsh_braking', %s, 'vehicle')",
            (H0 + timedelta(minutes=5 + k), str(k)),
        )


def test_rollups_and_retention(db: str) -> None:
    settings = MaintainSettings(database_url=SecretStr(db), retention_fixes_days=90)
    with connect(db, autocommit=True) as conn:
        caps = detect(conn)
        _fixes(conn)
        old = datetime.now(UTC) - timedelta(days=200)
        conn.execute(
            "INSERT INTO fixes (tenant_id, vehicle_id, time, seq, lat, lon) "
            "VALUES ('acme', 'old', %s, 1, 1, 1), ('acme', 'old', %s, 2, 1, 1)",
            (old, old + timedelta(seconds=1)),
        )
        result = maintain_once(conn, settings, now=H0 + timedelta(hours=2))
        assert result.failed == []
        assert not caps.native_policies  # the stack's edition: our own jobs ran
        assert result.dropped["fixes"] >= 1
        assert conn.execute("SELECT count(*) FROM fixes WHERE vehicle_id = 'old'").fetchone() == (
            0,
        )
        assert conn.execute("SELECT count(*) FROM fixes").fetchone() == (2400,)

        hour = conn.execute(
            "SELECT fixes, distance_m, driving_s, idling_s, jumps_ignored, events, max_speed_mps "
            "FROM vehicle_rollup_hourly WHERE vehicle_id = 't1' AND bucket = %s",
            (H0,),
        ).fetchone()
        assert hour is not None
        fixes, distance, driving, idling, jumps, events, vmax = hour
        assert fixes == 2400
        assert jumps == 2  # there and back
        # 1799 segments of 10 m, less the two around the jump: the jump adds nothing.
        assert distance == pytest.approx(1797 * 10, rel=0.01)
        assert driving == pytest.approx(1797, abs=2)
        assert idling == pytest.approx(600, abs=2)
        assert events == 3
        assert vmax == pytest.approx(10.0)
        day = conn.execute(
            "SELECT sum(fixes), sum(events) FROM vehicle_rollup_daily WHERE vehicle_id = 't1'"
        ).fetchone()
        assert day == (2400, 3)

        # A rerun rewrites buckets, never adds twice; a late fix lands in its own hour.
        conn.execute(
            "INSERT INTO fixes (tenant_id, vehicle_id, time, seq, lat, lon) "
            "VALUES ('acme', 't1', %s, 9999, 60.2, 24.9)",
            (H0 + timedelta(hours=1, minutes=30),),
        )
        maintain_once(conn, settings, now=H0 + timedelta(hours=2))
        rows = conn.execute(
            "SELECT bucket, fixes FROM vehicle_rollup_hourly WHERE vehicle_id = 't1' ORDER BY 1"
        ).fetchall()
        assert rows == [(H0, 2400), (H0 + timedelta(hours=1), 1)]
