"""The model service over real HTTP on 127.0.0.1 (an ephemeral port): answers equal the offline
models', bad requests are refused with a reason and counted, and changed model files are
reloaded only when they match their cards."""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cloud.models_service.client import ModelServiceClient
from cloud.models_service.errors import ClientError
from cloud.models_service.eta_features import Leg, features
from cloud.models_service.server import ServiceThread
from cloud.models_service.settings import ModelsServiceSettings
from models.demand.features import features as demand_features
from models.demand.history import simulate_history
from models.demand.train import onnx_predict as demand_onnx
from models.eta.dataset import to_seconds
from models.eta.train import onnx_predictor
from models.training.train import MODELS_ROOT

HELSINKI = (60.1699, 24.9384)
STOPS = [(60.19, 24.90), (60.16, 24.95), (60.21, 25.02)]
MONDAY_7 = datetime(2026, 11, 30, 7, tzinfo=UTC)


def _post(url: str, body: bytes) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        url, data=body, method="POST", headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _metrics(url: str) -> str:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:
        return str(resp.read().decode())


def _wait_for(cond: Callable[[], bool], what: str, limit_s: float = 30.0) -> None:
    deadline = time.monotonic() + limit_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.1)


@pytest.fixture
def model_root(tmp_path: Path) -> Path:
    for name in ("eta", "demand"):
        shutil.copytree(MODELS_ROOT / name, tmp_path / name)
    return tmp_path


@pytest.fixture
def service(model_root: Path) -> Iterator[ServiceThread]:
    settings = ModelsServiceSettings(root=model_root, port=0, reload_interval_s=0.2, max_legs=50)
    with ServiceThread(settings) as svc:
        yield svc


def test_health_and_models(service: ServiceThread) -> None:
    client = ModelServiceClient(service.url)
    versions = {
        n: json.loads((MODELS_ROOT / n / "card.json").read_text())["version"]
        for n in ("eta", "demand")
    }
    assert client.health() == {"status": "ok", "models": versions}
    with urllib.request.urlopen(service.url + "/v1/models", timeout=10) as resp:
        models = json.loads(resp.read())
    assert models["eta"]["headline"]["metric"] == "stop_mae_s"
    assert models["demand"]["available"] is True


def test_eta_equals_the_offline_model_and_chains_the_stops(service: ServiceThread) -> None:
    answer = ModelServiceClient(service.url).eta(MONDAY_7, STOPS, origin=HELSINKI)
    card = json.loads((MODELS_ROOT / "eta" / "card.json").read_text())
    assert (answer.version, answer.sha256) == (card["version"], card["sha256"])
    assert len(answer.stops) == 3
    predict = onnx_predictor((MODELS_ROOT / "eta" / "model.onnx").read_bytes())
    clock = MONDAY_7.timestamp()
    points = [HELSINKI, *STOPS]
    for i, stop in enumerate(answer.stops):
        assert datetime.fromisoformat(stop.depart_time).timestamp() == pytest.approx(clock)
        x = features([Leg(*points[i], *points[i + 1], clock)])
        travel, dwell = to_seconds(x, *predict(x.astype(np.float32)))
        assert stop.travel_s == pytest.approx(travel[0], abs=1e-3)
        assert stop.dwell_s == pytest.approx(dwell[0], abs=1e-3)
        assert stop.reference_travel_s == pytest.approx(x[0, 0] * 1.3 / (30 / 3.6), abs=1e-3)
        clock += travel[0] + dwell[0]
        assert datetime.fromisoformat(stop.leave_time).timestamp() == pytest.approx(clock)
    assert answer.total_s == pytest.approx(clock - MONDAY_7.timestamp(), abs=1e-2)


def test_legs_with_their_own_departure(service: ServiceThread) -> None:
    leg = {"origin": {"lat": 60.17, "lon": 24.94}, "dest": {"lat": 60.2, "lon": 24.9}}
    body = {
        "depart_time": "2026-11-30T06:00:00Z",  # 08:00 in Helsinki, the morning peak
        "legs": [leg, {**leg, "depart_time": "2026-12-01T01:00:00+02:00"}],
    }
    status, out = _post(service.url + "/v1/eta", json.dumps(body).encode())
    assert status == 200, out
    assert out["legs"][1]["depart_time"] == "2026-11-30T23:00:00Z"
    assert out["legs"][1]["travel_s"] < out["legs"][0]["travel_s"]  # night vs morning peak


def test_demand_equals_the_offline_model(service: ServiceThread) -> None:
    hist = simulate_history(20261128, 5)
    t = 4 * 168 + 31  # a Tuesday 07:00 in the simulated history's local time
    offline = demand_onnx(
        (MODELS_ROOT / "demand" / "model.onnx").read_bytes(),
        demand_features(hist.counts, t, hist.start_weekday),
    )
    cells = ["881126d137fffff", "881126d133fffff"]
    hour = datetime(2026, 12, 1, 7, tzinfo=timezone(timedelta(hours=2)))
    assert (hour.weekday(), hour.hour) == (((t // 24) + hist.start_weekday) % 7, t % 24)
    answer = ModelServiceClient(service.url).demand(
        hour, {c: hist.counts[:t, i].tolist() for i, c in enumerate(cells)}
    )
    for i, c in enumerate(cells):
        assert answer.orders[c] == pytest.approx(max(0.0, offline[i]), abs=1e-3)


BAD = [
    (b'{"depart_time": "2026-11-30T07:00:00Z", "legs": [', "malformed_json"),
    (b'{"depart_time": "2026-11-30T07:00:00", "legs": []}', "invalid_field"),
    (
        b'{"depart_time": "2026-11-30T07:00:00Z", "legs": [{"origin": {"lat": NaN, "lon": 1},'
        b' "dest": {"lat": 1, "lon": 1}}]}',
        "invalid_field",
    ),
    (
        b'{"depart_time": "2026-11-30T07:00:00Z", "legs": [{"origin": {"lat": 60, "lon": 24},'
        b' "dest": {"lat": 50, "lon": 24}}]}',
        "bad_leg",
    ),
    (
        b'{"depart_time": "2026-11-30T07:00:00Z", "legs": [{"origin": {"lat": 60, "lon": 24},'
        b' "dest": {"lat": 60, "lon": 24}, "speed": 3}]}',
        "invalid_field",
    ),
    (b"[1, 2, 3]", "invalid_field"),
]


@pytest.mark.parametrize(("body", "reason"), BAD)
def test_bad_eta_requests_are_refused_with_a_reason(
    service: ServiceThread, body: bytes, reason: str
) -> None:
    status, out = _post(service.url + "/v1/eta", body)
    assert status == 422
    assert out["error"] == reason
    assert out["detail"]
    assert f'flota_models_rejected_total{{reason="{reason}",route="/v1/eta"}} 1.0' in _metrics(
        service.url
    )
    assert ModelServiceClient(service.url).health()["status"] == "ok"  # still serving


def test_bad_demand_requests_and_limits(service: ServiceThread) -> None:
    client = ModelServiceClient(service.url)
    hour = datetime(2026, 12, 1, 7, tzinfo=UTC)
    with pytest.raises(ClientError) as err:
        client.demand(hour, {"not-a-cell-index": [1.0] * 700})
    assert err.value.status == 422
    assert "bad_cell" in str(err.value)
    with pytest.raises(ClientError) as err:
        client.demand(hour, {"881126d137fffff": [1.0] * 100})
    assert "short_history" in str(err.value)
    with pytest.raises(ClientError) as err:
        client.demand(hour, {"881126d137fffff": [-1.0] * 700})
    assert "bad_history" in str(err.value)
    with pytest.raises(ClientError) as err:
        client.eta(MONDAY_7, [HELSINKI] * 51, origin=HELSINKI)
    assert err.value.status == 422
    assert "too_many_legs" in str(err.value)
    assert not err.value.retriable
    text = _metrics(service.url)
    for reason in ("bad_cell", "short_history", "bad_history"):
        assert f'flota_models_rejected_total{{reason="{reason}",route="/v1/demand"}} 1.0' in text


def test_changed_model_files_are_reloaded_only_when_they_match_the_card(
    service: ServiceThread, model_root: Path
) -> None:
    client = ModelServiceClient(service.url)
    card_path = model_root / "eta" / "card.json"
    card = json.loads(card_path.read_text())
    good = (model_root / "eta" / "model.onnx").read_bytes()
    # a corrupt file (one flipped byte): refused, the loaded version keeps answering
    (model_root / "eta" / "model.onnx").write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    _wait_for(
        lambda: (
            'flota_models_reloads_total{model="eta",result="error"} 1.0' in _metrics(service.url)
        ),
        "the corrupt model refused",
    )
    assert client.eta(MONDAY_7, STOPS, origin=HELSINKI).version == "1.0.0"
    # a new version whose card matches its file: loaded, answers say so
    (model_root / "eta" / "model.onnx").write_bytes(good)
    card_path.write_text(json.dumps({**card, "version": "1.0.1"}))
    _wait_for(lambda: client.health()["models"]["eta"] == "1.0.1", "version 1.0.1 served")
    assert client.eta(MONDAY_7, STOPS, origin=HELSINKI).version == "1.0.1"
    text = _metrics(service.url)
    assert (
        'flota_models_info{model="eta",sha256="' + card["sha256"] + '",version="1.0.1"} 1.0' in text
    )
    assert 'version="1.0.0"' not in text.split("flota_models_info")[-1].split("eta")[0]


def test_a_missing_model_is_a_503_for_its_route_only(model_root: Path) -> None:
    shutil.rmtree(model_root / "demand")
    settings = ModelsServiceSettings(root=model_root, port=0, reload_interval_s=0.2)
    with ServiceThread(settings) as svc:
        client = ModelServiceClient(svc.url)
        assert client.health() == {"status": "degraded"}
        with pytest.raises(ClientError) as err:
            client.demand(datetime(2026, 12, 1, 7, tzinfo=UTC), {"881126d137fffff": [1.0] * 700})
        assert err.value.status == 503
        assert err.value.retriable
        assert client.eta(MONDAY_7, STOPS, origin=HELSINKI).stops
        shutil.copytree(MODELS_ROOT / "demand", model_root / "demand")
        _wait_for(lambda: client.health()["status"] == "ok", "demand loaded once it appears")
