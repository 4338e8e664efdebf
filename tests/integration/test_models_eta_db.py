"""The ETA model learns from the real database: trips written as `flota ingest geo` writes them
are read back by `models.eta.db` into the same legs and features as the simulator gives."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cloud.db.connection import connect
from cloud.db.migrate import migrate
from cloud.db.scratch import scratch_database
from flota.cli import app
from models.eta.dataset import feature_matrix, from_sim
from models.eta.db import insert_trips, load_legs
from models.eta.fleet import simulate

TENANT = "eta-test"


@pytest.fixture(scope="module")
def eta_db(database_url: str) -> Iterator[tuple[str, list]]:  # type: ignore[type-arg]
    legs = from_sim(simulate(11, range(6), days=8))
    with scratch_database(database_url, prefix="flota_eta") as url:
        with connect(url, autocommit=True) as conn:
            migrate(conn)
            conn.execute(
                "INSERT INTO tenants (tenant_id, name) VALUES (%s, %s)", (TENANT, "eta test")
            )
            insert_trips(conn, TENANT, legs)
            insert_trips(conn, TENANT, legs[:10])  # a replay: no duplicate trips
        yield url, legs


def test_db_legs_equal_the_simulated_ones(eta_db) -> None:  # type: ignore[no-untyped-def]
    url, legs = eta_db
    with connect(url) as conn:
        got = load_legs(conn, tenants=[TENANT])
        assert load_legs(conn, tenants=["nobody"]).records == []
    assert got.trips_read == len(legs)
    assert not got.skipped
    want = sorted(legs, key=lambda r: (r.vehicle, r.depart_s))
    assert len(got.records) == len(want)
    np.testing.assert_allclose(feature_matrix(got.records), feature_matrix(want), atol=1e-6)
    np.testing.assert_allclose([r.travel_s for r in got.records], [r.travel_s for r in want])
    # dwell is the gap to the next trip within a working day; the day's last stop is unknown
    for g, w in zip(got.records, want, strict=True):
        if np.isfinite(g.dwell_s):
            assert g.dwell_s == pytest.approx(w.dwell_s, abs=1e-3)
    n_routes = len({r.route for r in want})
    assert sum(not np.isfinite(r.dwell_s) for r in got.records) == n_routes
    assert len({r.route for r in got.records}) == n_routes


def test_train_from_db_through_the_cli(eta_db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url, legs = eta_db
    result = CliRunner().invoke(
        app,
        [
            "models",
            "train",
            "--from-db",
            "--db-url",
            url,
            "--tenant",
            TENANT,
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"read {len(legs)} trips" in result.output
    card = json.loads((tmp_path / "eta" / "card.json").read_text())
    assert card["data"]["source"] == "database"
    assert sum(card["data"]["legs"].values()) == len(legs)
    assert card["parity_max_abs_diff"] <= 1e-5
    assert card["headline"]["value"] < card["headline"]["baseline"]
