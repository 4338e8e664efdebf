"""Arbitrary JSON at the service's routes: always an answer (200 or a 4xx with a reason), never a
500; every refusal is counted."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.models_service.app import create_app
from cloud.models_service.settings import ModelsServiceSettings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

LEG = {"origin": {"lat": 60.17, "lon": 24.94}, "dest": {"lat": 60.2, "lon": 24.9}}
ETA = {"depart_time": "2026-11-30T06:00:00Z", "legs": [LEG, LEG]}
DEMAND = {
    "cells": [
        {
            "cell": "881126d137fffff",
            "hour_start": "2026-12-01T07:00:00+02:00",
            "history": [1.0] * 672,
        }
    ]
}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["2026-11-30T06:00:00Z", "881126d137fffff", "2026-11-30", "NaN"]),
)
json_values = st.recursive(
    scalars,
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=20,
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:3]):
            out += _paths(v, (*prefix, i))
    return out


def _replace(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    doc = json.loads(json.dumps(doc))
    node = doc
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return doc


@pytest.fixture(scope="module")
def client() -> TestClient:
    app, _, _ = create_app(ModelsServiceSettings(max_legs=20))
    return TestClient(app, raise_server_exceptions=False)


def _check(client: TestClient, route: str, body: bytes) -> None:
    r = client.post(route, content=body, headers={"content-type": "application/json"})
    assert r.status_code in {200, 400, 413, 422}, (r.status_code, body[:200])
    if r.status_code != 200:
        assert r.json()["error"]
        assert r.json()["detail"]


SETTINGS = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(data=st.data(), route=st.sampled_from(["/v1/eta", "/v1/demand"]))
def test_mutated_requests_never_break_the_service(
    client: TestClient, data: Any, route: str
) -> None:
    base = ETA if route == "/v1/eta" else DEMAND
    path = data.draw(st.sampled_from(_paths(base)))
    body = _replace(base, path, data.draw(json_values))
    _check(client, route, json.dumps(body, allow_nan=True).encode())


@SETTINGS
@given(raw=st.binary(max_size=200), route=st.sampled_from(["/v1/eta", "/v1/demand"]))
def test_arbitrary_bytes_never_break_the_service(
    client: TestClient, raw: bytes, route: str
) -> None:
    _check(client, route, raw)


def test_refusals_are_counted(client: TestClient) -> None:
    client.post("/v1/eta", content=b"{", headers={"content-type": "application/json"})
    text = client.get("/metrics").text
    line = next(
        x
        for x in text.splitlines()
        if x.startswith('flota_models_rejected_total{reason="malformed_json",route="/v1/eta"}')
    )
    assert float(line.split()[-1]) >= 1
