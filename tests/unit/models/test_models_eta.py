"""The ETA model: features, simulator, database legs, parity, card and baseline."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from cloud.models_service.eta_features import FEATURE_NAMES, Leg, features, hour_of_week
from cloud.optimizer.matrix import ConstantSpeed, GreatCircleMatrix
from cloud.optimizer.model import Location
from cloud.settings import DispatchSettings
from edge_agent.inference.card import sha256_file
from models.eta.dataset import feature_matrix, from_sim, reference_s, targets, to_seconds
from models.eta.db import legs_from_rows
from models.eta.export import to_onnx_bytes
from models.eta.fleet import MONDAY0_S, simulate
from models.eta.train import PARITY_TOLERANCE, fit, onnx_predictor, optimizer_travel_s
from models.training.train import MODELS_ROOT

CARD = json.loads((MODELS_ROOT / "eta" / "card.json").read_text())


@pytest.fixture(scope="module")
def small() -> tuple[list, list]:  # type: ignore[type-arg]
    return from_sim(simulate(7, range(3), days=8)), from_sim(simulate(7, range(50, 52), days=8))


def test_hour_of_week_starts_monday_utc() -> None:
    assert hour_of_week(MONDAY0_S) == 0.0
    assert hour_of_week(MONDAY0_S + 6 * 86_400 + 1800) == pytest.approx(144.5)
    monday = datetime(2026, 11, 30, 7, tzinfo=UTC).timestamp()
    assert hour_of_week(monday) == pytest.approx(7.0)


def test_features_have_their_documented_width_and_meaning() -> None:
    x = features([Leg(60.17, 24.94, 60.17, 24.94, MONDAY0_S), Leg(60.17, 24.94, 60.2, 24.9, 0)])
    assert x.shape == (2, len(FEATURE_NAMES))
    assert x[0, 0] == 0.0
    assert x[0, FEATURE_NAMES.index("h3_cells_apart")] == 0.0
    assert 3500 < x[1, 0] < 4500
    assert x[1, FEATURE_NAMES.index("h3_cells_apart")] >= 4


def test_simulator_is_seeded_and_plausible() -> None:
    a, b = simulate(3, range(2), days=3), simulate(3, range(2), days=3)
    assert a == b
    assert a != simulate(4, range(2), days=3)
    speeds = np.array([leg.distance_m / leg.travel_s for leg in a])
    assert 2.0 < float(np.median(speeds)) < 15.0
    assert all(leg.dwell_s > 0 for leg in a)


def test_reference_is_the_optimizers_default_estimate(small) -> None:  # type: ignore[no-untyped-def]
    recs = small[1][:20]
    x = feature_matrix(recs)
    base = optimizer_travel_s(recs)
    long = x[:, 0] * 1.3 / (30 / 3.6) > 60
    assert long.sum() > 10
    np.testing.assert_allclose(reference_s(x)[long], base[long], rtol=1e-9)
    r = recs[0]
    # the dispatcher's configured defaults are the ones the model's reference (and card) assume;
    # if they change, retrain the ETA model
    fields = DispatchSettings.model_fields
    matrix = GreatCircleMatrix(
        circuity=fields["dispatch_circuity"].default,
        speeds=ConstantSpeed(fields["dispatch_speed_mps"].default),
    )
    _, dur = matrix.matrices(
        [Location(r.origin_lon, r.origin_lat), Location(r.dest_lon, r.dest_lat)]
    )
    assert dur[0, 1] == pytest.approx(base[0])


def test_targets_round_trip_to_seconds(small) -> None:  # type: ignore[no-untyped-def]
    recs = small[0][:50]
    x = feature_matrix(recs)
    yt, yd = targets(recs, x)
    travel, dwell = to_seconds(x, yt, yd)
    np.testing.assert_allclose(travel, [r.travel_s for r in recs])
    np.testing.assert_allclose(dwell, [r.dwell_s for r in recs])


def test_onnx_matches_sklearn_on_test(small) -> None:  # type: ignore[no-untyped-def]
    train, test = small
    x = feature_matrix(train)
    yt, yd = targets(train, x)
    tm, dm = fit(x, yt), fit(x, yd)
    predict = onnx_predictor(to_onnx_bytes(tm, dm, x.shape[1], "test"))
    xt = feature_matrix(test).astype(np.float32)
    assert len(xt) > 100
    t, d = predict(xt)
    assert float(np.max(np.abs(t - tm.predict(xt)))) <= PARITY_TOLERANCE
    assert float(np.max(np.abs(d - dm.predict(xt)))) <= PARITY_TOLERANCE


def test_card_sha256_and_contents() -> None:
    path = MODELS_ROOT / "eta" / CARD["onnx_file"]
    assert sha256_file(path) == CARD["sha256"]
    assert [i["name"] for i in CARD["inputs"]] == list(FEATURE_NAMES)
    assert all(i["unit"] for i in CARD["inputs"])
    assert set(CARD["outputs"]) == {"travel_log_ratio", "dwell_log_ratio"}
    assert CARD["parity_max_abs_diff"] <= PARITY_TOLERANCE
    assert CARD["opset"]["ai.onnx.ml"] >= 1
    assert CARD["version"]
    test = CARD["metrics"]["test"]
    for part in ("travel", "dwell", "stop", "arrival"):
        for k in ("mae_s", "p90_s"):
            assert test["model"][part][k] < test["baseline"][part][k], (part, k)
    h = CARD["headline"]
    assert h["metric"] == "stop_mae_s"
    assert h["value"] < h["baseline"]
    assert (MODELS_ROOT / "eta" / "card.md").read_text().startswith("# Model card: eta")


def test_card_selftest_reproduces() -> None:
    predict = onnx_predictor((MODELS_ROOT / "eta" / "model.onnx").read_bytes())
    t, d = predict(np.array(CARD["selftest"]["inputs"], dtype=np.float32))
    np.testing.assert_allclose(t, CARD["selftest"]["outputs"][0], atol=1e-6)
    np.testing.assert_allclose(d, CARD["selftest"]["outputs"][1], atol=1e-6)


def _row(vehicle: str, start: datetime, dur: float, **kw: float) -> tuple:  # type: ignore[type-arg]
    end = start + timedelta(seconds=dur)
    vals = {"s_lat": 60.17, "s_lon": 24.94, "e_lat": 60.18, "e_lon": 24.95, **kw}
    return ("t1", vehicle, "trip", start, end, dur, *vals.values())


def test_db_rows_become_legs_with_dwell_from_the_gap() -> None:
    t0 = datetime(2026, 11, 30, 7, tzinfo=UTC)
    rows = [
        _row("v1", t0, 600),
        _row("v1", t0 + timedelta(seconds=900), 300),  # dwell 300 s before it
        _row("v1", t0 + timedelta(hours=9), 400),  # next day's route: no dwell known
        _row("v1", t0 + timedelta(hours=10), 0),  # refused: zero duration
        _row("v2", t0, 5, e_lat=61.0),  # refused: 90 km in 5 s
        _row("v2", t0 + timedelta(hours=1), 300, s_lat=float("nan")),  # refused
        _row("v2", t0 + timedelta(hours=2), 300, e_lon=200.0),  # refused
    ]
    out = legs_from_rows(rows)
    assert out.trips_read == 7
    assert dict(out.skipped) == {
        "duration_not_positive": 1,
        "impossible_speed": 1,
        "not_finite": 1,
        "lon_out_of_range": 1,
    }
    assert [r.dwell_s for r in out.records[:1]] == [300.0]
    assert np.isnan(out.records[1].dwell_s)
    assert out.records[0].route == out.records[1].route == "t1/v1/0"
    assert out.records[2].route != out.records[0].route
    assert out.records[0].depart_s == t0.timestamp()
