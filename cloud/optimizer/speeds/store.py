"""Fixes in, learned speeds out: the `fixes` hypertable and the 0008 tables."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator
from itertools import groupby
from typing import Any

import psycopg

from cloud.optimizer.speeds.learn import LearnParams, Report, learn
from cloud.optimizer.speeds.model import LearnedSpeeds

FLEET = "*"  # the `cell` of a fleet-wide per-hour speed

Conn = psycopg.Connection[Any]


def read_fixes(
    conn: Conn, tenant: str, since_s: float, until_s: float
) -> Iterator[tuple[str, Iterator[tuple[float, float, float]]]]:
    """(vehicle, its (time s, lat, lon) in time order), streamed with a server-side cursor."""
    with conn.cursor(name="speeds_fixes") as cur:
        cur.itersize = 20_000
        cur.execute(
            "SELECT vehicle_id, extract(epoch FROM time)::float8, lat, lon FROM fixes"
            " WHERE tenant_id = %s AND time >= to_timestamp(%s) AND time < to_timestamp(%s)"
            " ORDER BY vehicle_id, time",
            (tenant, since_s, until_s),
        )
        for vehicle, rows in groupby(cur, key=lambda r: r[0]):
            yield vehicle, ((float(t), float(lat), float(lon)) for _, t, lat, lon in rows)


def _clean(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    return x


def report_json(report: Report, params: LearnParams) -> dict[str, Any]:
    return _clean({"params": dataclasses.asdict(params), **dataclasses.asdict(report)})  # type: ignore[no-any-return]


def save(conn: Conn, tenant: str, model: LearnedSpeeds, report: Report, params: LearnParams) -> str:
    """Replace the tenant's model (one transaction); returns its version (learned_at)."""
    with conn.transaction():
        conn.execute("DELETE FROM travel_speed_models WHERE tenant_id = %s", (tenant,))
        row = conn.execute(
            "INSERT INTO travel_speed_models (tenant_id, resolution, default_mps, report)"
            " VALUES (%s, %s, %s, %s) RETURNING learned_at::text",
            (tenant, model.resolution, model.default_mps, json.dumps(report_json(report, params))),
        ).fetchone()
        rows = [(tenant, c, h, v) for (c, h), v in model.cells.items()]
        rows += [(tenant, FLEET, h, v) for h, v in model.hours.items()]
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO travel_speeds (tenant_id, cell, hour_of_week, speed_mps)"
                " VALUES (%s, %s, %s, %s)",
                rows,
            )
    assert row is not None
    return str(row[0])


def version(conn: Conn, tenant: str) -> str | None:
    """The stored model's version (its learned_at), or None."""
    row = conn.execute(
        "SELECT learned_at::text FROM travel_speed_models WHERE tenant_id = %s", (tenant,)
    ).fetchone()
    return None if row is None else str(row[0])


def load(conn: Conn, tenant: str) -> LearnedSpeeds | None:
    head = conn.execute(
        "SELECT learned_at::text, resolution, default_mps FROM travel_speed_models"
        " WHERE tenant_id = %s",
        (tenant,),
    ).fetchone()
    if head is None:
        return None
    cells: dict[tuple[str, int], float] = {}
    hours: dict[int, float] = {}
    for cell, hour, mps in conn.execute(
        "SELECT cell, hour_of_week, speed_mps FROM travel_speeds WHERE tenant_id = %s", (tenant,)
    ):
        if cell == FLEET:
            hours[int(hour)] = float(mps)
        else:
            cells[(str(cell), int(hour))] = float(mps)
    return LearnedSpeeds(int(head[1]), float(head[2]), cells, hours, str(head[0]))


def learn_from_db(
    conn: Conn, tenant: str, since_s: float, until_s: float, params: LearnParams
) -> tuple[LearnedSpeeds, Report]:
    return learn(read_fixes(conn, tenant, since_s, until_s), params)
