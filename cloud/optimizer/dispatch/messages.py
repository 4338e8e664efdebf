"""The JSON documents the dispatcher consumes (schemas in docs/dispatch.md).

Orders topic (``{prefix}.orders.v1``, keyed ``tenant/depot``): ``order``, ``cancel``, ``depot``
and ``vehicle`` documents. Domain-events topic: the geo processor's ``DomainEvent`` JSON, of
which only the kinds below matter here. Times are seconds since the Unix epoch (UTC),
positions WGS84 degrees, amounts integers per capacity dimension.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from flota_wire import EventKind

Ident = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]

# Kinds of the domain events that move the dispatcher (vehicles may send them as wire events:
# the geo processor republishes those with the same kind).
BREAKDOWN = "vehicle_breakdown"
REPAIRED = "vehicle_repaired"
LATE = "vehicle_late"
STOP_COMPLETED = EventKind.STOP_COMPLETED.value  # sent by the vehicle's agent
EVENT_KINDS = frozenset({BREAKDOWN, REPAIRED, LATE, STOP_COMPLETED})


class MessageError(ValueError):
    """A record that is not a valid dispatch document (counted, logged and skipped)."""


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Position(_Doc):
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)


class Window(_Doc):
    """Service may start in [start, end] (epoch seconds); end None = open."""

    start: Seconds = 0.0
    end: Seconds | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_pair(cls, raw: Any) -> Any:
        if isinstance(raw, list | tuple):
            if len(raw) != 2:
                raise ValueError("a window is [start, end]")
            return {"start": raw[0] if raw[0] is not None else 0.0, "end": raw[1]}
        return raw

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end is not None and self.end < self.start:
            raise ValueError("window ends before it starts")
        return self


class Visit(_Doc):
    location: Position
    windows: tuple[Window, ...] = ()
    service_s: Seconds = 0.0


class OrderDoc(_Doc):
    """A new order, or a new revision of an open one (same id: replaces it)."""

    v: Literal[1] = 1
    type: Literal["order"]
    id: Ident
    tenant: Ident
    depot: Ident
    kind: Literal["delivery", "pickup", "pair"]
    location: Position | None = None  # delivery / pickup
    windows: tuple[Window, ...] = ()
    service_s: Seconds = 0.0
    pickup: Visit | None = None  # pair
    delivery: Visit | None = None  # pair
    demand: tuple[Annotated[int, Field(ge=0)], ...] = ()
    priority: Annotated[int, Field(ge=0, le=100)] = 0
    penalty: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    skills: tuple[Ident, ...] = ()

    @model_validator(mode="after")
    def _shape(self) -> OrderDoc:
        if self.kind == "pair":
            if self.pickup is None or self.delivery is None:
                raise ValueError("a pair needs pickup and delivery")
        elif self.location is None:
            raise ValueError(f"a {self.kind} needs a location")
        return self

    def visits(self) -> tuple[Visit, ...]:
        """One visit for a delivery or pickup, two (pickup, delivery) for a pair."""
        if self.kind == "pair":
            assert self.pickup is not None
            assert self.delivery is not None
            return (self.pickup, self.delivery)
        assert self.location is not None
        return (Visit(location=self.location, windows=self.windows, service_s=self.service_s),)


class CancelDoc(_Doc):
    v: Literal[1] = 1
    type: Literal["cancel"]
    id: Ident
    tenant: Ident
    depot: Ident


class DepotDoc(_Doc):
    v: Literal[1] = 1
    type: Literal["depot"]
    tenant: Ident
    depot: Ident
    location: Position
    window: Window = Window()


class VehicleDoc(_Doc):
    """A vehicle joining (or updating its entry at) a depot; active=false takes it out."""

    v: Literal[1] = 1
    type: Literal["vehicle"]
    tenant: Ident
    depot: Ident
    vehicle: Ident
    capacity: tuple[Annotated[int, Field(ge=0)], ...] = ()
    shift: Window = Window()
    skills: tuple[Ident, ...] = ()
    active: bool = True


OrdersTopicDoc = OrderDoc | CancelDoc | DepotDoc | VehicleDoc
_BY_TYPE: dict[str, type[_Doc]] = {
    "order": OrderDoc,
    "cancel": CancelDoc,
    "depot": DepotDoc,
    "vehicle": VehicleDoc,
}


def _json(payload: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as err:
        raise MessageError(f"not JSON: {err}") from err
    if not isinstance(doc, dict):
        raise MessageError("not a JSON object")
    return doc


def parse_orders_doc(payload: bytes) -> OrdersTopicDoc:
    """One record of the orders topic; anything else raises MessageError."""
    doc = _json(payload)
    model = _BY_TYPE.get(str(doc.get("type")))
    if model is None:
        raise MessageError(f"unknown document type {doc.get('type')!r}")
    try:
        return model.model_validate(doc)  # type: ignore[return-value]
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise MessageError(f"invalid {doc['type']}: {where}: {first['msg']}") from err


def split_stop_id(stop_id: str) -> tuple[str, str]:
    """A route-plan stop id ``order:task`` (as `plan_payload` writes it) -> (order, task),
    split at the last ``:``; ("", "") when it has none."""
    order, sep, task = stop_id.rpartition(":")
    return (order, task) if sep else ("", "")


class VehicleEvent(_Doc):
    """The part of a domain event the dispatcher reads.

    A `stop_completed` may name its stop by ``stop_id`` (``order:task``, the route plan's stop
    id, as the in-vehicle agent sends it) instead of ``order`` and ``task``: the missing ones
    are filled in from it, so every reader of ``detail`` sees ``order``."""

    tenant: Ident
    vehicle: Ident
    time_s: float
    kind: str
    detail: dict[str, Any]

    @model_validator(mode="before")
    @classmethod
    def _order_from_stop_id(cls, raw: Any) -> Any:
        if not isinstance(raw, dict) or raw.get("kind") != STOP_COMPLETED:
            return raw
        detail = raw.get("detail")
        if not isinstance(detail, dict) or detail.get("order"):
            return raw
        stop_id = detail.get("stop_id")
        order, task = split_stop_id(stop_id) if isinstance(stop_id, str) else ("", "")
        if not order:
            return raw
        filled = {**detail, "order": order}
        if task and not detail.get("task"):
            filled["task"] = task
        return {**raw, "detail": filled}

    @property
    def delay_s(self) -> float:
        """`vehicle_late`: how much later than planned it can go on (0 if not said)."""
        try:
            return max(0.0, float(self.detail.get("delay_s", 0.0)))
        except (TypeError, ValueError):
            return 0.0

    @property
    def position(self) -> Position | None:
        try:
            return Position(lat=self.detail["lat"], lon=self.detail["lon"])
        except (KeyError, ValidationError):
            return None


def parse_domain_event(payload: bytes) -> VehicleEvent | None:
    """A domain event of one of EVENT_KINDS, None for other kinds; MessageError if malformed."""
    doc = _json(payload)
    kind = doc.get("kind")
    if kind not in EVENT_KINDS:
        return None
    detail = doc.get("detail")
    try:
        return VehicleEvent(
            tenant=doc["tenant"],
            vehicle=doc["vehicle"],
            time_s=int(doc["time_us"]) / 1e6,
            kind=kind,
            detail=detail if isinstance(detail, dict) else {},
        )
    except (KeyError, TypeError, ValueError) as err:
        raise MessageError(f"invalid {kind} event: {err}") from err
