"""The model service's parts without HTTP: loading against cards, reloads, inputs, boundaries."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cloud.models_service.client import ModelServiceClient
from cloud.models_service.errors import (
    ClientError,
    InputError,
    ModelLoadError,
    ModelUnavailableError,
)
from cloud.models_service.loaded import load_model
from cloud.models_service.predict import CellQuery, LegQuery, predict_demand, predict_eta
from cloud.models_service.registry import ModelRegistry
from models.training.train import MODELS_ROOT


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for name in ("eta", "demand"):
        shutil.copytree(MODELS_ROOT / name, tmp_path / name)
    return tmp_path


def test_load_checks_the_sha256_against_the_card(root: Path) -> None:
    assert load_model(root / "eta", "eta").version
    card = json.loads((root / "eta" / "card.json").read_text())
    (root / "eta" / "card.json").write_text(json.dumps({**card, "sha256": "0" * 64}))
    with pytest.raises(ModelLoadError, match="does not match the card"):
        load_model(root / "eta", "eta")


def test_load_runs_the_cards_selftest(root: Path) -> None:
    card = json.loads((root / "demand" / "card.json").read_text())
    card["selftest"]["outputs"][0] += 1.0
    (root / "demand" / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match="self-test"):
        load_model(root / "demand", "demand")


def test_load_refuses_a_folder_of_another_model(root: Path) -> None:
    with pytest.raises(ModelLoadError, match="names"):
        load_model(root / "eta", "demand")
    with pytest.raises(ModelLoadError, match="cannot read"):
        load_model(root / "nothing", "eta")


def test_registry_keeps_the_old_model_when_the_new_one_is_bad(root: Path) -> None:
    events: list[tuple[str, str]] = []
    reg = ModelRegistry(root, on_load=lambda n, r, _m: events.append((n, r)))
    assert sorted(events) == [("demand", "ok"), ("eta", "ok")]
    old = reg.get("eta")
    assert reg.check() == []  # nothing changed: nothing reloaded
    (root / "eta" / "model.onnx").write_bytes(b"not a model")
    assert reg.check() == []
    assert reg.get("eta") is old
    assert "does not match" in reg.errors()["eta"]
    assert reg.check() == []  # the same bad files are not retried
    assert events.count(("eta", "error")) == 1
    shutil.copy(MODELS_ROOT / "eta" / "model.onnx", root / "eta" / "model.onnx")
    assert reg.check() == ["eta"]
    assert reg.get("eta") is not old
    assert "eta" not in reg.errors()


def test_registry_without_a_model_says_why(root: Path) -> None:
    shutil.rmtree(root / "demand")
    reg = ModelRegistry(root)
    assert reg.versions()["demand"] is None
    with pytest.raises(ModelUnavailableError, match="demand"):
        reg.get("demand")


def test_predict_refuses_bad_input_with_a_reason(root: Path) -> None:
    eta = load_model(root / "eta", "eta")
    far = LegQuery(60.0, 24.0, 40.0, 24.0, None)
    with pytest.raises(InputError) as err:
        predict_eta(eta, 1.8e9, [LegQuery(60.1, 24.9, 60.2, 24.9, None), far])
    assert (err.value.reason, err.value.detail.split(":")[0]) == ("bad_leg", "leg 1")
    demand = load_model(root / "demand", "demand")
    for query, reason in (
        (CellQuery("zzz", 7, 1, [1.0] * 700), "bad_cell"),
        (CellQuery("881126d137fffff", 7, 1, [1.0] * 10), "short_history"),
        (CellQuery("881126d137fffff", 7, 1, [float("nan")] * 700), "bad_history"),
    ):
        with pytest.raises(InputError) as err:
            predict_demand(demand, [query])
        assert err.value.reason == reason


def test_eta_chains_legs_and_night_is_faster_than_the_morning_peak(root: Path) -> None:
    eta = load_model(root / "eta", "eta")
    monday_6_utc = 1_796_018_400.0  # 2026-11-30 06:00 UTC, 08:00 in Helsinki: the peak
    legs = [LegQuery(60.17, 24.94, 60.20, 24.90, None), LegQuery(60.20, 24.90, 60.16, 24.95, None)]
    a, b = predict_eta(eta, monday_6_utc, legs)
    assert b.depart_s == pytest.approx(a.leave_s)
    assert a.arrive_s == pytest.approx(a.depart_s + a.travel_s)
    (night,) = predict_eta(eta, monday_6_utc + 17 * 3600, legs[:1])  # 01:00 local
    assert night.travel_s < a.travel_s


def test_client_without_a_server_raises_a_retriable_error() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ClientError) as err:
        ModelServiceClient(f"http://127.0.0.1:{port}", timeout_s=2).health()
    assert err.value.status == 0
    assert err.value.retriable


def test_the_service_imports_nothing_of_the_vehicle_or_training() -> None:
    code = (
        "import sys, cloud.models_service.server, cloud.models_service.client; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('edge_agent', 'firmware_bridge', 'models', 'sklearn', 'skl2onnx')]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_legs_with_their_own_departures_are_predicted_in_one_batch_the_same(root: Path) -> None:
    eta = load_model(root / "eta", "eta")
    t0 = 1_796_018_400.0
    chained = predict_eta(
        eta,
        t0,
        [LegQuery(60.17, 24.94, 60.20, 24.90, None), LegQuery(60.2, 24.9, 60.1, 25.0, None)],
    )
    given = [
        LegQuery(60.17, 24.94, 60.20, 24.90, t0),
        LegQuery(60.2, 24.9, 60.1, 25.0, chained[0].leave_s),
    ]
    batched = predict_eta(eta, 0.0, given)
    for a, b in zip(chained, batched, strict=True):
        assert a.travel_s == pytest.approx(b.travel_s, rel=1e-12)
        assert a.dwell_s == pytest.approx(b.dwell_s, rel=1e-12)
        assert a.leave_s == pytest.approx(b.leave_s)
    with pytest.raises(InputError, match="leg 1"):
        predict_eta(eta, 0.0, [given[0], LegQuery(60.0, 24.0, 30.0, 24.0, t0)])
