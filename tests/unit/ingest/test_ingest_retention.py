"""Retention chooses its path by the detected licence. The native path (TimescaleDB's own
retention jobs, ``timescale`` licence) cannot run on the local stack (Apache edition), so here it
runs against a connection that records every statement and answers like TimescaleDB's catalog:
which statements it issues, with which arguments, and that a changed retention replaces the job.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cloud.db.capabilities import Capabilities
from cloud.ingest import retention
from cloud.ingest.retention import RetentionPlan, apply_retention

TIMESCALE = Capabilities("17.2", "2.19.3", True, "timescale")
APACHE = Capabilities("17.2", "2.19.3", True, "apache")
PLAIN = Capabilities("18.1", None, False, None)
NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)
PLAN = RetentionPlan.from_days(fixes=90, quarantine=30, events=365)


class Recorder:
    """A psycopg-like connection: records (sql, args); jobs holds the existing retention jobs
    as table -> drop_after, as ``timescaledb_information.jobs`` would show them."""

    def __init__(self, jobs: dict[str, timedelta] | None = None) -> None:
        self.jobs = dict(jobs or {})
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self._rows: list[tuple[Any, ...]] = []

    def execute(self, sql: str, args: tuple[Any, ...] = ()) -> Recorder:
        self.calls.append((" ".join(sql.split()), args))
        if "FROM timeseries_tables" in sql:
            self._rows = [("fixes",), ("sensor_samples",), ("quarantine",), ("events",)]
        elif sql == retention.POLICY_OF:
            keep, table = args
            self._rows = [(1000, self.jobs[table] == keep)] if table in self.jobs else []
        elif sql == retention.ADD_POLICY:
            self.jobs[args[0]] = args[1]
            self._rows = [(1001,)]
        elif sql == retention.REMOVE_POLICY:
            self.jobs.pop(args[0], None)
            self._rows = [(None,)]
        return self

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._rows

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self._rows)

    def statements(self, sql: str) -> list[tuple[Any, ...]]:
        return [args for s, args in self.calls if s == " ".join(sql.split())]


def test_native_policies_are_registered_once_per_table() -> None:
    conn = Recorder()
    done = apply_retention(conn, TIMESCALE, PLAN, NOW)  # type: ignore[arg-type]
    assert done == {"fixes": -1, "sensor_samples": -1, "quarantine": -1, "events": -1}
    assert sorted(conn.statements(retention.ADD_POLICY)) == sorted(
        [("fixes", timedelta(days=90)), ("sensor_samples", timedelta(days=90)),
         ("quarantine", timedelta(days=30)), ("events", timedelta(days=365))]
    )  # fmt: skip
    assert conn.statements(retention.REMOVE_POLICY) == []
    # the next pass finds every job as wanted and changes nothing
    conn.calls.clear()
    apply_retention(conn, TIMESCALE, PLAN, NOW)  # type: ignore[arg-type]
    assert conn.statements(retention.ADD_POLICY) == []
    assert len(conn.statements(retention.POLICY_OF)) == 4


def test_a_changed_retention_replaces_the_native_job() -> None:
    conn = Recorder(jobs={"fixes": timedelta(days=90), "events": timedelta(days=365)})
    shorter = RetentionPlan.from_days(fixes=30, quarantine=30, events=365)
    apply_retention(conn, TIMESCALE, shorter, NOW)  # type: ignore[arg-type]
    assert conn.statements(retention.REMOVE_POLICY) == [("fixes",)]
    assert ("fixes", timedelta(days=30)) in conn.statements(retention.ADD_POLICY)
    assert ("events", timedelta(days=365)) not in conn.statements(retention.ADD_POLICY)
    assert conn.jobs["fixes"] == timedelta(days=30)


@pytest.mark.parametrize("caps", [APACHE, PLAIN])
def test_without_the_licence_our_own_drop_runs_and_no_policy_is_touched(
    caps: Capabilities, monkeypatch: pytest.MonkeyPatch
) -> None:
    dropped: list[tuple[str, datetime]] = []

    def fake_drop(_conn: object, table: str, before: datetime) -> int:
        dropped.append((table, before))
        return 2 if table == "fixes" else 0

    monkeypatch.setattr(retention, "drop_before", fake_drop)
    conn = Recorder()
    done = apply_retention(conn, caps, PLAN, NOW)  # type: ignore[arg-type]
    assert done == {"fixes": 2, "sensor_samples": 0, "quarantine": 0, "events": 0}
    assert ("fixes", NOW - timedelta(days=90)) in dropped
    assert ("quarantine", NOW - timedelta(days=30)) in dropped
    assert not any("retention_policy" in s or "jobs" in s for s, _ in conn.calls)


def test_capabilities_choose_the_path() -> None:
    assert TIMESCALE.native_policies
    assert not APACHE.native_policies
    assert not PLAIN.native_policies
    assert "native policies" in TIMESCALE.describe()
    assert "own retention" in APACHE.describe()
