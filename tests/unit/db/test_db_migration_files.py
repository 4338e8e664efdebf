"""The shipped migration files and URL handling, checked without a server."""

from __future__ import annotations

import re

import pytest

from cloud.db import ConfigError, load_migrations, redact, resolve_url, with_database

TIMESERIES = re.compile(
    r"flota_create_timeseries\(\$ddl\$(?P<ddl>.*?)\$ddl\$,\s*'(?P<table>\w+)',\s*'(?P<col>\w+)'",
    re.S,
)


def test_versions_are_contiguous_and_named() -> None:
    migrations = load_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert all(re.fullmatch(r"[a-z0-9_]+", m.name) for m in migrations)
    assert len({m.checksum for m in migrations}) == len(migrations)


def test_every_timeseries_key_contains_its_time_column() -> None:
    """Hypertables and partitioned tables both need the time column in every unique key."""
    found = {}
    for m in load_migrations():
        for hit in TIMESERIES.finditer(m.sql):
            keys = re.findall(r"(?:PRIMARY KEY|UNIQUE)\s*\(([^)]*)\)", hit["ddl"])
            assert keys, f"{hit['table']} has no primary key"
            for key in keys:
                assert hit["col"] in [c.strip() for c in key.split(",")], (hit["table"], key)
            found[hit["table"]] = hit["col"]
    assert found == {
        "fixes": "time",
        "sensor_samples": "time",
        "events": "time",
        "quarantine": "received_at",
    }


def test_fixes_deduplicate_per_tenant_vehicle_and_time() -> None:
    sql = next(m.sql for m in load_migrations() if m.name == "telemetry")
    assert "PRIMARY KEY (tenant_id, vehicle_id, time)" in sql


def test_url_handling() -> None:
    url = "postgresql://flota:s3cr3t-Pw@127.0.0.1:15432/flota"
    assert resolve_url(url) == url
    assert redact(url) == "postgresql://flota:***@127.0.0.1:15432/flota"
    assert with_database(url, "other") == "postgresql://flota:s3cr3t-Pw@127.0.0.1:15432/other"
    sock = "postgresql://postgres@/flota?host=/tmp/pg"
    assert with_database(sock, "x") == "postgresql://postgres@/x?host=/tmp/pg"
    assert resolve_url(sock) == sock  # a local socket needs no password


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://flota:postgres@db:5432/flota",  # a default secret
        "postgresql://flota@db:5432/flota",  # no password over TCP
        "mysql://flota:s3cr3t-Pw@db/flota",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigError):
        resolve_url(url)


def test_missing_url_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOTA_DATABASE_URL", raising=False)
    with pytest.raises(ConfigError, match="FLOTA_DATABASE_URL"):
        resolve_url(None)
