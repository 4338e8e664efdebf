"""The native retention path against the real (Apache-edition) TimescaleDB of the local stack.

The stack cannot run TimescaleDB's own retention jobs (the Apache licence refuses them), so this
checks what can be checked here: the licence is detected and the pass takes our own path; and
every statement of the native path, issued with the arguments it would get, reaches the real
functions and is refused only for the licence (SQLSTATE 0A000), not as an unknown function or a
wrong argument type (which a typo in a name or a parameter would give).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest
from pipeline_support import ingest_database

from cloud.db.capabilities import detect
from cloud.db.connection import connect
from cloud.ingest import retention
from cloud.ingest.retention import RetentionPlan, apply_retention


@pytest.fixture(scope="module")
def db(database_url: str) -> Iterator[str]:
    with ingest_database(database_url, "flota_ingest_ret") as url:
        yield url


def test_the_apache_edition_takes_our_own_path(db: str) -> None:
    with connect(db, autocommit=True) as conn:
        caps = detect(conn)
        assert caps.license == "apache"
        assert not caps.native_policies
        done = apply_retention(conn, caps, RetentionPlan.from_days(90, 30, 365))
    assert set(done) == {"fixes", "sensor_samples", "quarantine", "events"}
    assert all(n >= 0 for n in done.values())  # dropped by us, never left to a policy


def test_native_statements_resolve_and_are_refused_only_for_the_licence(db: str) -> None:
    keep = timedelta(days=90)
    with connect(db, autocommit=True) as conn:
        # the catalog query runs as it is (the view exists in every edition): no job yet
        assert conn.execute(retention.POLICY_OF, (keep, "fixes")).fetchall() == []
        for sql, args in ((retention.ADD_POLICY, ("fixes", keep)),
                          (retention.REMOVE_POLICY, ("fixes",))):  # fmt: skip
            with pytest.raises(psycopg.errors.FeatureNotSupported, match="license"):
                conn.execute(sql, args)
        with pytest.raises(psycopg.errors.UndefinedFunction):  # what a wrong call would give
            conn.execute(
                retention.ADD_POLICY.replace("if_not_exists", "if_missing"), ("fixes", keep)
            )
        # and native_retention, run as the licensed path would, stops at that refusal
        with pytest.raises(psycopg.errors.FeatureNotSupported):
            retention.native_retention(conn, "fixes", keep)
