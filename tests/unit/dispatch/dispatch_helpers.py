"""Builders shared by the dispatch unit tests: a depot in Helsinki, vans, orders."""

from __future__ import annotations

from typing import Any

from cloud.optimizer.dispatch.dispatcher import DispatchConfig, Dispatcher
from cloud.optimizer.dispatch.messages import (
    VehicleEvent,
    parse_orders_doc,
)
from cloud.optimizer.dispatch.planner import Fix, PlannerConfig

T0 = 1_795_780_800.0  # a Saturday, 08:00 UTC
TENANT = "acme"
DEPOT = "HEL"
HOME = (60.17, 24.94)


def doc(**fields: Any) -> bytes:
    import json

    return json.dumps({"v": 1, **fields}).encode()


def config(**kw: Any) -> DispatchConfig:
    base: dict[str, Any] = {
        "min_interval_s": 10.0,
        "settle_s": 1.0,
        "refresh_s": 300.0,
        "late_after_s": 300.0,
        "eta_tolerance_s": 120.0,
        "planner": PlannerConfig(time_limit_s=1.0),
    }
    base.update(kw)
    return DispatchConfig(**base)


class World:
    """A dispatcher with a depot, a few vans and positions the test can move."""

    def __init__(self, vans: int = 2, capacity: int = 100, **cfg: Any) -> None:
        self.fixes: dict[str, Fix] = {}
        self.d = Dispatcher(config(**cfg), positions=lambda _t, _v: dict(self.fixes))
        self.send(type="depot", tenant=TENANT, depot=DEPOT,
                  location={"lat": HOME[0], "lon": HOME[1]})  # fmt: skip
        for i in range(vans):
            self.send(type="vehicle", tenant=TENANT, depot=DEPOT, vehicle=f"van-{i}",
                      capacity=[capacity], shift=[T0 - 3600, T0 + 10 * 3600])  # fmt: skip

    def send(self, now: float = T0, **fields: Any) -> None:
        self.d.apply_doc(parse_orders_doc(doc(**fields)), now)

    def order(self, oid: str, lat: float, lon: float, now: float = T0, **kw: Any) -> None:
        fields: dict[str, Any] = {"kind": "delivery", "location": {"lat": lat, "lon": lon},
                                  "demand": [10]}  # fmt: skip
        fields.update(kw)
        self.send(now, type="order", tenant=TENANT, depot=DEPOT, id=oid, **fields)

    def event(self, vehicle: str, kind: str, now: float = T0, **detail: Any) -> None:
        ev = VehicleEvent(tenant=TENANT, vehicle=vehicle, time_s=now, kind=kind, detail=detail)
        assert self.d.apply_event(ev, now)

    def replan(self, now: float) -> Any:
        return self.d.reoptimise((TENANT, DEPOT), now)


# Ten customers around the depot, a few kilometres out.
CUSTOMERS = [(60.18 + 0.01 * (i % 4), 24.90 + 0.02 * (i // 4), f"o-{i}") for i in range(10)]
