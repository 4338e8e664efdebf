"""Learned travel speeds against the real TimescaleDB: simulated fixes in the `fixes` hypertable
-> `flota optimize learn-speeds` -> the 0008 tables -> the dispatcher's speed cache."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest
from dispatch_support import dispatch_settings
from typer.testing import CliRunner

from cloud.db.connection import connect
from cloud.db.migrate import migrate
from cloud.db.scratch import scratch_database
from cloud.optimizer.dispatch.service import DispatchService
from cloud.optimizer.matrix import ConstantSpeed
from cloud.optimizer.model import Location
from cloud.optimizer.speeds import LearnedSpeeds, LearnParams
from cloud.optimizer.speeds import store as speed_store
from flota.commands.optimize import app as optimize_app
from flota_wire.tracesim import simulate_city

TENANT, OTHER = "speeds-acme", "speeds-globex"
START_S = 1_795_392_000 + 9 * 3600  # Monday 09:00 UTC
VEHICLES = 4
SECONDS = 1200


@pytest.fixture(scope="module")
def db(database_url: str) -> Iterator[str]:
    with scratch_database(database_url, prefix="flota_speeds") as url:
        with connect(url, autocommit=True) as conn:
            migrate(conn)
            with conn.cursor() as cur, cur.copy(
                "COPY fixes (tenant_id, vehicle_id, time, seq, lat, lon, speed_mps)"
                " FROM STDIN"
            ) as copy:  # fmt: skip
                for tenant in (TENANT, OTHER):
                    for k in range(VEHICLES if tenant == TENANT else 1):
                        fixes = simulate_city(
                            SECONDS, seed=k, start_us=(START_S + 90 * k) * 1_000_000
                        )
                        for f in fixes:
                            copy.write_row((tenant, f"van-{k}", _ts(f.time_us), f.seq,
                                            f.lat_e6 / 1e6, f.lon_e6 / 1e6,
                                            (f.speed_cmps or 0) / 100))  # fmt: skip
        yield url


def _ts(time_us: int) -> str:
    return dt.datetime.fromtimestamp(time_us / 1e6, tz=dt.UTC).isoformat()


def test_learn_store_and_load_from_the_fixes_table(db: str) -> None:
    params = LearnParams(min_samples=20, holdout=0.3, max_trip_s=300)
    with connect(db) as conn:
        model, report = speed_store.learn_from_db(
            conn, TENANT, START_S - 60, START_S + 7200, params
        )
        conn.commit()
        assert report.fixes > VEHICLES * SECONDS * 0.95  # the other tenant's fixes are not read
        assert report.fixes < VEHICLES * SECONDS * 1.01
        assert report.trips_held_out > 0
        assert report.trips_learned > report.trips_held_out
        assert model.cells
        assert 0 < report.path.mae_s < 600
        version = speed_store.save(conn, TENANT, model, report, params)
        assert speed_store.version(conn, TENANT) == version
        assert speed_store.version(conn, OTHER) is None
        loaded = speed_store.load(conn, TENANT)
    assert loaded is not None
    assert loaded.version == version
    assert loaded.resolution == model.resolution
    assert loaded.cells.keys() == model.cells.keys()
    assert loaded.hours.keys() == model.hours.keys()
    for key, mps in model.cells.items():
        assert loaded.cells[key] == pytest.approx(mps, rel=1e-6)  # stored as real


def test_cli_learns_and_the_dispatcher_picks_the_new_model_up(
    db: str, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = dispatch_settings(db, kafka_bootstrap)
    service = DispatchService(settings)
    try:
        service.speeds.check_s = 0.0  # look at the table on every call
        speeds = service.dispatcher.config.planner.speeds
        assert speeds is not None
        assert isinstance(speeds(OTHER), ConstantSpeed)  # nothing learned for this tenant
        monkeypatch.setenv("FLOTA_DATABASE_URL", db)
        args = ["learn-speeds", "--tenant", OTHER, "--until", str(START_S + 7200), "--days", "1",
                "--min-samples", "10", "--holdout", "0.3", "--json"]  # fmt: skip
        out = CliRunner().invoke(optimize_app, args)
        assert out.exit_code == 0, out.output
        report = json.loads(out.output)
        assert report["tenant"] == OTHER
        assert report["version"]
        assert report["fixes"] > SECONDS * 0.95
        assert report["params"]["min_samples"] == 10
        provider = speeds(OTHER)
        assert isinstance(provider, LearnedSpeeds)
        assert provider.version == report["version"]
        here = Location(24.9384, 60.1699)
        assert provider.speed(here, Location(24.95, 60.175), 9) > 0
        loads = service.speeds.loads
        assert speeds(OTHER) is provider  # unchanged version: not read again
        assert service.speeds.loads == loads
    finally:
        service.producer.close(timeout=5)
        service.conn.close()
        if service._speeds_conn is not None:
            service._speeds_conn.close()
