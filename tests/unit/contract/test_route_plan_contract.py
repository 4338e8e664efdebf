"""The route plan as the dispatcher writes it is what the agent applies: one contract
(``flota_wire.route_plan``), checked from both ends, so the two cannot drift apart again."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud.optimizer.dispatch.commands import plan_command
from cloud.optimizer.dispatch.messages import VehicleDoc
from cloud.optimizer.dispatch.state import PlannedStop, VehiclePlan, VehicleState
from edge_agent.commands import CommandRejectedError, RoutePlanHandler
from flota_wire import Channel, decode, encode, topic
from flota_wire.errors import WireError
from flota_wire.route_plan import check_route_plan

T0 = 1_790_000_000.0


def _plan(stops: int) -> VehiclePlan:
    return VehiclePlan(
        tenant="t1",
        depot="HEL",
        vehicle="van-1",
        version=3,
        stops=tuple(
            PlannedStop(
                f"o-{i}",
                "delivery",
                60.17 + i / 100,
                24.94,
                T0 + 600 * i,
                T0 + 600 * i,
                T0 + 600 * i + 120,
                120.0,
            )
            for i in range(stops)
        ),
        end_eta_s=T0 + 3600,
        generated_at_s=T0,
        trigger="order",
    )


@pytest.mark.parametrize("stops", [0, 1, 7])
def test_the_agent_applies_every_plan_the_dispatcher_sends(tmp_path: Path, stops: int) -> None:
    doc = VehicleDoc.model_validate(
        {"type": "vehicle", "tenant": "t1", "depot": "HEL", "vehicle": "van-1"}
    )
    cmd = plan_command(_plan(stops), VehicleState(doc), T0)
    wire_topic = topic("t1", "van-1", Channel.COMMANDS)
    received = decode(wire_topic, encode(cmd)).message  # through the real codec
    handler = RoutePlanHandler(tmp_path / "plan.json")
    applied = handler.validate(received.payload)  # type: ignore[union-attr]
    assert handler.apply(applied) is None
    assert applied["plan_id"] == "HEL-van-1-v3"
    assert [s["id"] for s in applied["stops"]] == [f"o-{i}:delivery" for i in range(stops)]
    assert [s["eta_us"] for s in applied["stops"]] == [
        round((T0 + 600 * i) * 1e6) for i in range(stops)
    ]
    assert handler.current == applied


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"stops": []}, "plan_id"),
        ({"plan_id": "p", "stops": "x"}, "stops"),
        ({"plan_id": "p", "stops": [{"id": "", "lat": 1, "lon": 1}]}, "id"),
        ({"plan_id": "p", "stops": [{"id": "a", "lat": 0, "lon": 0}]}, "out of range"),
        ({"plan_id": "p", "stops": [{"id": "a", "lat": 1, "lon": 1, "eta_us": 1.5}]}, "eta_us"),
        ({"plan_id": "p", "stops": [{"id": "a", "lat": 1, "lon": 1, "service_s": -1}]}, ">= 0"),
        ({"plan_id": "p", "stops": [{"id": "a", "lat": 1, "lon": 1}] * 1001}, "at most"),
    ],
)
def test_a_bad_plan_is_refused_by_the_contract_and_by_the_agent(
    tmp_path: Path, payload: dict[str, object], reason: str
) -> None:
    with pytest.raises(WireError, match=reason):
        check_route_plan(payload)
    with pytest.raises(CommandRejectedError, match=reason):
        RoutePlanHandler(tmp_path / "plan.json").validate(payload)
