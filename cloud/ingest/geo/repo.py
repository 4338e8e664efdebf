"""The geo processor's database reads and writes (keyword-only, connection first)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from cloud.ingest.geo.config import GeoRules
from cloud.ingest.geo.fences import Geofence
from cloud.ingest.geo.geometry import GeometryError, parse_geojson
from cloud.ingest.geo.state import VehicleState

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RULE_COLUMNS = (
    "speed_limit_mps", "speeding_min_s", "idle_min_s", "stop_min_s", "trip_end_stop_s",
    "geofence_dwell_s",
)  # fmt: skip


def ts(us: int) -> datetime:
    """Microseconds since the epoch as an aware UTC datetime (exact)."""
    return _EPOCH + timedelta(microseconds=us)


def load_fences(conn: psycopg.Connection[Any]) -> tuple[list[Geofence], int]:
    """Active geofences, and how many rows were unusable (logged with the reason, skipped)."""
    rows = conn.execute(
        "SELECT tenant_id, geofence_id, name, geometry, dwell_s FROM geofences WHERE active"
    ).fetchall()
    fences, bad = [], 0
    for tenant, fid, name, geometry, dwell_s in rows:
        try:
            polygons = parse_geojson(geometry)
        except GeometryError as err:
            bad += 1
            log.warning("geofence %s/%s skipped: %s", tenant, fid, err)
            continue
        fences.append(Geofence(tenant, fid, name, polygons, dwell_s))
    return fences, bad


def load_rules(conn: psycopg.Connection[Any], *, defaults: GeoRules) -> dict[str, GeoRules]:
    """Each tenant with overrides -> its rules (other tenants use ``defaults``)."""
    cols = ", ".join(_RULE_COLUMNS)
    out = {}
    for row in conn.execute(f"SELECT tenant_id, {cols} FROM geo_tenant_rules").fetchall():
        try:
            out[row[0]] = defaults.with_overrides(dict(zip(_RULE_COLUMNS, row[1:], strict=True)))
        except ValueError as err:
            log.warning("geo rules of tenant %s ignored: %s", row[0], err)
    return out


def load_state(
    conn: psycopg.Connection[Any], *, group: str, tenant: str, vehicle: str
) -> VehicleState:
    row = conn.execute(
        "SELECT state FROM geo_state WHERE consumer_group = %s AND tenant_id = %s"
        " AND vehicle_id = %s",
        (group, tenant, vehicle),
    ).fetchone()
    return VehicleState() if row is None else VehicleState.from_json(row[0])


def load_offsets(conn: psycopg.Connection[Any], *, group: str) -> dict[tuple[str, int], int]:
    rows = conn.execute(
        "SELECT topic, partition, next_offset FROM geo_offsets WHERE consumer_group = %s",
        (group,),
    ).fetchall()
    return {(str(t), int(p)): int(o) for t, p, o in rows}


def save(
    conn: psycopg.Connection[Any],
    *,
    group: str,
    states: Iterable[tuple[str, str, VehicleState]],
    offsets: dict[tuple[str, int], int],
) -> None:
    """Upsert states and offsets (the caller commits: one transaction for both)."""
    with conn.cursor() as cur:
        cur.executemany(
            """
            INSERT INTO geo_state (consumer_group, tenant_id, vehicle_id, watermark, odometer_m,
                                   state)
            VALUES (%s, %s, %s, %s, %s, %s::jsonb)
            ON CONFLICT (consumer_group, tenant_id, vehicle_id) DO UPDATE
            SET watermark = EXCLUDED.watermark, odometer_m = EXCLUDED.odometer_m,
                state = EXCLUDED.state, updated_at = now()
            """,
            [
                (group, t, v, ts(s.watermark_us) if s.watermark_us >= 0 else None,
                 s.odometer_m, s.to_json())
                for t, v, s in states
            ],
        )  # fmt: skip
        cur.executemany(
            """
            INSERT INTO geo_offsets (consumer_group, topic, partition, next_offset)
            VALUES (%s, %s, %s, %s)
            ON CONFLICT (consumer_group, topic, partition) DO UPDATE
            SET next_offset = EXCLUDED.next_offset, updated_at = now()
            """,
            [(group, topic, part, off) for (topic, part), off in offsets.items()],
        )
