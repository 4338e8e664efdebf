"""Domain events: the one JSON document the geo processor publishes on the domain-events topic
and the sink stores as an ``events`` row.

``event_key`` is deterministic (derived from the input, never from the wall clock), so an event
computed twice after a replay is the same row: ``(tenant, vehicle, kind, event_key, time)`` is
the table's primary key and the sink inserts with ON CONFLICT DO NOTHING.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

VERSION = 1

TRIP_START = "trip.start"
TRIP_END = "trip.end"
STOP_START = "stop.start"
STOP_END = "stop.end"
SPEEDING = "speeding"
IDLING = "idling"
GEOFENCE_ENTER = "geofence.enter"
GEOFENCE_EXIT = "geofence.exit"
GEOFENCE_DWELL = "geofence.dwell"

Source = Literal["vehicle", "cloud"]


class DomainEventError(ValueError):
    """A domain-events record that is not a domain event (counted and skipped by the sink)."""


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """Something that happened to one vehicle at ``time_us`` (microseconds, UTC)."""

    tenant: str
    vehicle: str
    time_us: int
    kind: str
    event_key: str
    detail: dict[str, Any] = field(default_factory=dict)
    source: Source = "cloud"
    seq: int | None = None  # the vehicle's event seq, for events from the vehicle

    def encode(self) -> bytes:
        doc = {
            "v": VERSION,
            "tenant": self.tenant,
            "vehicle": self.vehicle,
            "time_us": self.time_us,
            "kind": self.kind,
            "event_key": self.event_key,
            "source": self.source,
            "seq": self.seq,
            "detail": self.detail,
        }
        return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def decode(cls, payload: bytes | None) -> DomainEvent:
        if payload is None:
            raise DomainEventError("empty record")
        try:
            doc = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as err:
            raise DomainEventError(f"not JSON: {err}") from err
        if not isinstance(doc, dict) or doc.get("v") != VERSION:
            raise DomainEventError("not a version 1 domain event")
        try:
            ev = cls(
                tenant=doc["tenant"],
                vehicle=doc["vehicle"],
                time_us=doc["time_us"],
                kind=doc["kind"],
                event_key=doc["event_key"],
                detail=doc["detail"],
                source=doc["source"],
                seq=doc.get("seq"),
            )
        except KeyError as err:
            raise DomainEventError(f"missing field {err}") from err
        if not (
            all(isinstance(x, str) and x for x in (ev.tenant, ev.vehicle, ev.kind))
            and isinstance(ev.event_key, str)
            and type(ev.time_us) is int
            and ev.time_us >= 0
            and isinstance(ev.detail, dict)
            and ev.source in ("vehicle", "cloud")
            and (ev.seq is None or type(ev.seq) is int)
        ):
            raise DomainEventError("a field has the wrong type")
        return ev
