"""A vehicle plan as a `route_plan` command (flota_wire), and back (for tests and the app)."""

from __future__ import annotations

import time
from typing import Any

from cloud.optimizer.dispatch.dispatcher import PLAN_COMMAND_ID, plan_id
from cloud.optimizer.dispatch.state import VehiclePlan, VehicleState
from flota_wire import Command, CommandKind
from flota_wire.route_plan import check_route_plan


def _t(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def _us(x: float | None) -> int | None:
    return None if x is None else round(x * 1e6)


def plan_payload(plan: VehiclePlan) -> dict[str, Any]:
    """The command's payload: the wire contract's keys (``flota_wire.route_plan``: plan_id,
    stop id, eta_us) plus the dispatcher's own (docs/dispatch.md); times in epoch seconds."""
    return {
        "plan_id": plan_id(plan.depot, plan.vehicle, plan.version),
        "tenant": plan.tenant,
        "depot": plan.depot,
        "vehicle": plan.vehicle,
        "version": plan.version,
        "generated_at_s": _t(plan.generated_at_s),
        "trigger": plan.trigger,
        "stops": [
            {
                "id": f"{s.order}:{s.task}"[:128],
                "order": s.order,
                "task": s.task,
                "lat": s.lat,
                "lon": s.lon,
                "eta_s": _t(s.eta_s),
                "eta_us": _us(s.eta_s),
                "start_s": _t(s.start_s),
                "departure_s": _t(s.departure_s),
                "service_s": _t(s.service_s),
                "committed": plan.committed == s.key,
            }
            for s in plan.stops
        ],
        "end_eta_s": _t(plan.end_eta_s),
    }


def plan_command(plan: VehiclePlan, vehicle: VehicleState, now_s: float | None = None) -> Command:
    """The command carrying `plan`; takes the vehicle's next downlink seq (epoch microseconds,
    forced above the last one, as the wire contract lets a stateless cloud process do)."""
    now_us = int((time.time() if now_s is None else now_s) * 1e6)
    seq = max(now_us, vehicle.last_seq + 1)
    vehicle.last_seq = seq
    return Command(
        seq=seq,
        id=PLAN_COMMAND_ID,
        version=plan.version,
        kind=CommandKind.ROUTE_PLAN,
        payload=check_route_plan(plan_payload(plan)),
        issued_at_us=now_us,
    )
