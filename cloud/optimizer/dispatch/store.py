"""The dispatcher's tables (migration 0007): load the memory at start, save what changed.

Callers own the transaction: the service writes one batch of changes, commits, and only then
commits its Kafka offsets.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import psycopg

from cloud.optimizer.dispatch.dispatcher import PLAN_COMMAND_ID, Dispatcher
from cloud.optimizer.dispatch.messages import (
    DepotDoc,
    OrderDoc,
    Position,
    VehicleDoc,
)
from cloud.optimizer.dispatch.planner import Fix
from cloud.optimizer.dispatch.state import (
    DepotState,
    OrderState,
    PlannedStop,
    VehiclePlan,
    VehicleState,
)
from flota_wire import AckStatus, Command, CommandAck, CommandKind

Conn = psycopg.Connection[Any]

# An acknowledgement never moves a plan's status backwards (a late "accepted" after "applied").
_RANK = {None: 0, "accepted": 1, "applied": 2, "rejected": 2, "failed": 2}


def _ts(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _doc_json(doc: Any) -> str:
    return json.dumps(doc.model_dump(mode="json"))


def save_depot(conn: Conn, depot: DepotState) -> None:
    if depot.doc is None:
        return
    conn.execute(
        """INSERT INTO dispatch_depots (tenant_id, depot_id, doc) VALUES (%s, %s, %s)
           ON CONFLICT (tenant_id, depot_id)
           DO UPDATE SET doc = EXCLUDED.doc, updated_at = now()""",
        (depot.tenant, depot.depot, _doc_json(depot.doc)),
    )


def save_vehicle(conn: Conn, v: VehicleState) -> None:
    at = v.broken_at
    conn.execute(
        """INSERT INTO dispatch_vehicles (tenant_id, vehicle_id, depot_id, doc, broken,
               broken_lat, broken_lon, available_from)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (tenant_id, vehicle_id) DO UPDATE SET depot_id = EXCLUDED.depot_id,
               doc = EXCLUDED.doc, broken = EXCLUDED.broken, broken_lat = EXCLUDED.broken_lat,
               broken_lon = EXCLUDED.broken_lon, available_from = EXCLUDED.available_from,
               updated_at = now()""",
        (
            v.doc.tenant,
            v.doc.vehicle,
            v.doc.depot,
            _doc_json(v.doc),
            v.broken,
            at.lat if at else None,
            at.lon if at else None,
            _ts(v.available_from_s) if v.available_from_s > 0 else None,
        ),
    )


def save_order(conn: Conn, o: OrderState) -> None:
    conn.execute(
        """INSERT INTO dispatch_orders (tenant_id, order_id, depot_id, doc, status, done_tasks,
               picked_by, assigned_to, reason)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (tenant_id, order_id) DO UPDATE SET depot_id = EXCLUDED.depot_id,
               doc = EXCLUDED.doc, status = EXCLUDED.status, done_tasks = EXCLUDED.done_tasks,
               picked_by = EXCLUDED.picked_by, assigned_to = EXCLUDED.assigned_to,
               reason = EXCLUDED.reason, updated_at = now()""",
        (
            o.doc.tenant,
            o.doc.id,
            o.doc.depot,
            _doc_json(o.doc),
            o.status,
            sorted(o.done),
            o.picked_by,
            o.assigned,
            o.reason,
        ),
    )


def order_closed(conn: Conn, tenant: str, order_id: str) -> bool:
    """Done or cancelled (the memory forgets closed orders; their ids stay taken)."""
    row = conn.execute(
        "SELECT status FROM dispatch_orders WHERE tenant_id = %s AND order_id = %s",
        (tenant, order_id),
    ).fetchone()
    return row is not None and row[0] != "open"


def save_plan(conn: Conn, plan: VehiclePlan, payload: Mapping[str, Any], seq: int) -> None:
    """Reserve the plan's version before its command is produced (the primary key refuses a
    version given twice)."""
    conn.execute(
        """INSERT INTO dispatch_plans (tenant_id, vehicle_id, version, depot_id, trigger,
               payload, stops, command_seq)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s)""",
        (
            plan.tenant,
            plan.vehicle,
            plan.version,
            plan.depot,
            plan.trigger,
            json.dumps(payload),
            len(plan.stops),
            seq,
        ),
    )


def mark_pushed(conn: Conn, plans: Iterable[VehiclePlan]) -> None:
    for p in plans:
        conn.execute(
            """UPDATE dispatch_plans SET pushed_at = now()
               WHERE tenant_id = %s AND vehicle_id = %s AND version = %s""",
            (p.tenant, p.vehicle, p.version),
        )


def record_ack(conn: Conn, tenant: str, vehicle: str, ack: CommandAck) -> bool:
    """Store one route-plan acknowledgement; False if it was a duplicate."""
    status = AckStatus(ack.status).value
    acked_at = _ts(ack.time_us / 1e6)
    cur = conn.execute(
        """INSERT INTO plan_acks (tenant_id, vehicle_id, ack_seq, version, status, reason,
               acked_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING""",
        (tenant, vehicle, ack.seq, ack.command_version, status, ack.reason, acked_at),
    )
    if cur.rowcount == 0:
        return False
    row = conn.execute(
        """SELECT ack_status FROM dispatch_plans
           WHERE tenant_id = %s AND vehicle_id = %s AND version = %s FOR UPDATE""",
        (tenant, vehicle, ack.command_version),
    ).fetchone()
    if row is not None and _RANK[status] >= _RANK[row[0]]:
        conn.execute(
            """UPDATE dispatch_plans SET ack_status = %s, acked_at = %s
               WHERE tenant_id = %s AND vehicle_id = %s AND version = %s""",
            (status, acked_at, tenant, vehicle, ack.command_version),
        )
    return True


def positions(conn: Conn, tenant: str, vehicles: list[str]) -> dict[str, Fix]:
    """Latest positions from `vehicle_latest` (kept by the ingest store)."""
    rows = conn.execute(
        """SELECT vehicle_id, lat, lon, extract(epoch FROM time) FROM vehicle_latest
           WHERE tenant_id = %s AND vehicle_id = ANY(%s)""",
        (tenant, vehicles),
    ).fetchall()
    return {r[0]: Fix(float(r[1]), float(r[2]), float(r[3])) for r in rows}


def _plan_from(row: tuple[Any, ...]) -> VehiclePlan:
    tenant, vehicle, version, depot, trigger, payload = row
    stops = tuple(
        PlannedStop(
            order=s["order"],
            task=s["task"],
            lat=s["lat"],
            lon=s["lon"],
            eta_s=s["eta_s"],
            start_s=s["start_s"],
            departure_s=s["departure_s"],
            service_s=s["service_s"],
        )
        for s in payload["stops"]
    )
    committed = next(((s["order"], s["task"]) for s in payload["stops"] if s["committed"]), None)
    return VehiclePlan(
        tenant, depot, vehicle, version, stops, payload.get("end_eta_s"),
        payload.get("generated_at_s", 0.0), trigger, committed,
    )  # fmt: skip


def load(conn: Conn, d: Dispatcher) -> None:
    """Rebuild the dispatcher's memory: depots, vehicles, open orders, recent plans."""
    for tenant, depot_id, doc in conn.execute(
        "SELECT tenant_id, depot_id, doc FROM dispatch_depots"
    ):
        d.depot(tenant, depot_id).doc = DepotDoc.model_validate(doc)
    for tenant, vid, doc, broken, blat, blon, avail in conn.execute(
        """SELECT tenant_id, vehicle_id, doc, broken, broken_lat, broken_lon,
                  extract(epoch FROM available_from) FROM dispatch_vehicles"""
    ):
        v = VehicleState(VehicleDoc.model_validate(doc), broken=broken)
        if blat is not None and blon is not None:
            v.broken_at = Position(lat=blat, lon=blon)
        v.available_from_s = float(avail or 0.0)
        d.vehicles[(tenant, vid)] = v
        d.depot(tenant, v.doc.depot)
    for tenant, oid, doc, status, done, picked, assigned, reason in conn.execute(
        """SELECT tenant_id, order_id, doc, status, done_tasks, picked_by, assigned_to, reason
           FROM dispatch_orders WHERE status = 'open'"""
    ):
        o = OrderState(OrderDoc.model_validate(doc), status, set(done), picked, assigned, reason)
        d.orders[(tenant, oid)] = o
    # Per vehicle: its newest plan and the newest plan it accepted (the committed stop).
    for row in conn.execute(
        """SELECT DISTINCT ON (tenant_id, vehicle_id, kind) tenant_id, vehicle_id, version,
                  depot_id, trigger, payload, kind, command_seq
           FROM (SELECT *, 'last' AS kind FROM dispatch_plans
                 UNION ALL
                 SELECT *, 'acked' AS kind FROM dispatch_plans
                 WHERE ack_status IN ('accepted', 'applied')) p
           ORDER BY tenant_id, vehicle_id, kind, version DESC"""
    ):
        v_state = d.vehicles.get((row[0], row[1]))
        if v_state is None:
            continue
        plan = _plan_from(row[:6])
        v_state.remember(plan)
        v_state.last_seq = max(v_state.last_seq, int(row[7]))
        if row[6] == "acked":
            v_state.acked_version = max(v_state.acked_version, plan.version)


def unpushed(conn: Conn) -> list[tuple[VehiclePlan, Command]]:
    """Each vehicle's newest plan if its command never reached Kafka (crash between the
    reservation and the produce): re-sent at start, with its original seq."""
    out = []
    for row in conn.execute(
        """SELECT DISTINCT ON (tenant_id, vehicle_id) tenant_id, vehicle_id, version, depot_id,
                  trigger, payload, command_seq, pushed_at IS NULL,
                  (extract(epoch FROM created_at) * 1e6)::bigint
           FROM dispatch_plans ORDER BY tenant_id, vehicle_id, version DESC"""
    ):
        if not row[7]:
            continue
        plan = _plan_from(row[:6])
        command = Command(
            seq=int(row[6]),
            id=PLAN_COMMAND_ID,
            version=plan.version,
            kind=CommandKind.ROUTE_PLAN,
            payload=row[5],
            issued_at_us=int(row[8]),
        )
        out.append((plan, command))
    return out
