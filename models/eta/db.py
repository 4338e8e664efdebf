"""Legs from the database: the `trips` view (written by `flota ingest geo`), per vehicle in time.

A leg is one finished trip: from its start to its end place, leaving at its start time, travel =
its duration. The dwell at its destination is the gap until the same vehicle's next trip starts,
when that gap is under ``max_dwell_s`` (a longer gap is the end of a working day: unknown). This
fits delivery vehicles that switch the ignition off at each stop (an ignition trip spans shorter
stops, which then count as travel). Rows that cannot be learned from are counted per reason and
skipped, never raised.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cloud.models_service.eta_features import haversine_m
from models.eta.dataset import LegRecord, is_valid_record

log = logging.getLogger(__name__)
MAX_DWELL_S = 3 * 3600.0
MAX_SPEED_MPS = 70.0  # great-circle speed no road vehicle reaches (the geo processor's limit)
MAX_TRIP_S = 6 * 3600.0

QUERY = """
SELECT tenant_id, vehicle_id, trip_id, start_time, end_time, duration_s,
       start_lat, start_lon, end_lat, end_lon
  FROM trips
 WHERE (%(tenants)s::text[] IS NULL OR tenant_id = ANY(%(tenants)s::text[]))
   AND (%(since)s::timestamptz IS NULL OR start_time >= %(since)s::timestamptz)
   AND (%(until)s::timestamptz IS NULL OR start_time < %(until)s::timestamptz)
 ORDER BY tenant_id, vehicle_id, start_time
"""


@dataclass
class DbLegs:
    records: list[LegRecord]
    skipped: Counter[str] = field(default_factory=Counter)
    trips_read: int = 0


def _num(v: Any) -> float:
    return float(v) if v is not None else math.nan


def legs_from_rows(rows: Sequence[Sequence[Any]], max_dwell_s: float = MAX_DWELL_S) -> DbLegs:
    """Rows as `QUERY` returns them (sorted by tenant, vehicle, start) to leg records."""
    out = DbLegs(records=[], trips_read=len(rows))
    route_no: Counter[str] = Counter()
    for i, row in enumerate(rows):
        tenant, vehicle, _trip, start, end, duration, s_lat, s_lon, e_lat, e_lon = row
        key = f"{tenant}/{vehicle}"
        nxt = rows[i + 1] if i + 1 < len(rows) else None
        dwell = math.nan
        if nxt is not None and f"{nxt[0]}/{nxt[1]}" == key:
            gap = (nxt[3] - end).total_seconds()
            if 0 < gap <= max_dwell_s:
                dwell = gap
        rec = LegRecord(
            vehicle=key,
            route=f"{key}/{route_no[key]}",
            origin_lat=_num(s_lat),
            origin_lon=_num(s_lon),
            dest_lat=_num(e_lat),
            dest_lon=_num(e_lon),
            depart_s=start.timestamp() if start is not None else math.nan,
            travel_s=_num(duration),
            dwell_s=dwell,
        )
        if math.isnan(dwell):
            route_no[key] += 1  # the next trip starts a new route (a new working day)
        reason = is_valid_record(rec)
        if reason is None and rec.travel_s > MAX_TRIP_S:
            reason = "duration_too_long"
        if reason is None:
            gc = haversine_m(rec.origin_lat, rec.origin_lon, rec.dest_lat, rec.dest_lon)
            if gc / rec.travel_s > MAX_SPEED_MPS:
                reason = "impossible_speed"
        if reason is not None:
            out.skipped[reason] += 1
            continue
        out.records.append(rec)
    if out.skipped:
        log.warning("eta: skipped %d of %d trips: %s", out.skipped.total(), len(rows), out.skipped)
    return out


def load_legs(
    conn: Any,
    tenants: Sequence[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    max_dwell_s: float = MAX_DWELL_S,
) -> DbLegs:
    """Every finished trip of ``tenants`` (all when None) starting in [since, until)."""
    params = {"tenants": list(tenants) if tenants else None, "since": since, "until": until}
    rows = conn.execute(QUERY, params).fetchall()
    return legs_from_rows(rows, max_dwell_s)


def insert_trips(conn: Any, tenant: str, records: Sequence[LegRecord]) -> int:
    """Write legs as the geo processor's `trip.end` events (for tests, demos and benchmarks)."""
    rows = []
    for r in records:
        start_us = round(r.depart_s * 1e6)
        end = datetime.fromtimestamp(r.depart_s + r.travel_s, tz=UTC)
        detail = {
            "start_us": start_us,
            "start_lat": r.origin_lat,
            "start_lon": r.origin_lon,
            "end_lat": r.dest_lat,
            "end_lon": r.dest_lon,
            "duration_s": r.travel_s,
            "distance_m": haversine_m(r.origin_lat, r.origin_lon, r.dest_lat, r.dest_lon) * 1.3,
            "ended_by": "ignition",
        }
        rows.append((tenant, r.vehicle, end, f"trip:{start_us}", detail))
    from psycopg.types.json import Jsonb

    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO events (tenant_id, vehicle_id, time, kind, event_key, source, detail) "
            "VALUES (%s, %s, %s, 'trip.end', %s, 'cloud', %s) ON CONFLICT DO NOTHING",
            [(t, v, e, k, Jsonb(d)) for t, v, e, k, d in rows],
        )
    return len(rows)
