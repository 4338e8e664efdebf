"""The bridge's device registry cache, the metrics registry and the JSON log lines."""

from __future__ import annotations

import json
import logging
import urllib.request
from pathlib import Path

import pytest

from cloud.ingest.logs import JsonFormatter
from cloud.ingest.metrics import IngestMetrics
from cloud.ingest.registry import DeviceRegistry, load_from_file


def test_registry_file_and_refresh_keeps_last_good_set(tmp_path: Path) -> None:
    path = tmp_path / "devices.json"
    path.write_text(json.dumps({"devices": [
        {"tenant": "acme", "vehicle": "t1"},
        {"tenant": "acme", "vehicle": "t2", "registered": False},
    ]}))  # fmt: skip
    reg = DeviceRegistry(lambda: load_from_file(path), refresh_s=60)
    assert reg.is_registered("acme", "t1")
    assert not reg.is_registered("acme", "t2")
    assert not reg.is_registered("other", "t1")  # a vehicle id is unique only per tenant
    path.write_text("not json")
    assert reg.refresh() is False
    assert reg.refresh_failures == 1
    assert reg.is_registered("acme", "t1")  # a failed refresh turns nobody away
    path.write_text(json.dumps([{"tenant": "acme", "vehicle": "t3"}]))
    assert reg.refresh() is True
    assert reg.is_registered("acme", "t3")
    assert not reg.is_registered("acme", "t1")


def test_first_load_must_succeed(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        DeviceRegistry(lambda: load_from_file(tmp_path / "missing.json"))


def test_metrics_are_served_on_loopback() -> None:
    m = IngestMetrics("store")
    m.quarantine("null_island", 3)
    m.quarantine("duplicate", 0)
    m.fixes_stored.labels("store").inc(10)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    m.serve(port)
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert 'flota_ingest_quarantined_total{process="store",reason="null_island"} 3.0' in body
    assert 'reason="duplicate"' not in body  # nothing counted, no series
    assert 'flota_ingest_fixes_stored_total{process="store"} 10.0' in body


def test_json_log_lines_carry_extra_fields() -> None:
    record = logging.LogRecord(
        "cloud.ingest.bridge", logging.WARNING, "", 0, "quarantine", (), None
    )
    record.reason = "unregistered"
    record.topic = "flota/v1/acme/x/up/telemetry"
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "quarantine"
    assert line["reason"] == "unregistered"
    assert line["level"] == "WARNING"
    assert line["topic"].endswith("/up/telemetry")
