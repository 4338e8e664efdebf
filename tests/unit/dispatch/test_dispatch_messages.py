"""The orders-topic and domain-event documents: what is accepted, what is refused and why."""

from __future__ import annotations

import json

import pytest
from dispatch_helpers import doc

from cloud.optimizer.dispatch.messages import (
    CancelDoc,
    MessageError,
    OrderDoc,
    VehicleDoc,
    parse_domain_event,
    parse_orders_doc,
)

BASE = {"tenant": "acme", "depot": "HEL"}


def test_delivery_and_pair_orders_parse_with_windows_as_pairs() -> None:
    d = parse_orders_doc(doc(type="order", id="o-1", kind="delivery", demand=[3, 1],
                             location={"lat": 60.1, "lon": 24.9}, windows=[[100, 200], [300, None]],
                             service_s=60, penalty=500, priority=2, **BASE))  # fmt: skip
    assert isinstance(d, OrderDoc)
    assert [(w.start, w.end) for w in d.windows] == [(100, 200), (300, None)]
    assert d.visits()[0].service_s == 60
    p = parse_orders_doc(
        doc(
            type="order",
            id="p-1",
            kind="pair",
            **BASE,
            pickup={"location": {"lat": 60.1, "lon": 24.9}},
            delivery={"location": {"lat": 60.2, "lon": 24.8}, "service_s": 30},
        )
    )
    assert isinstance(p, OrderDoc)
    assert [v.location.lat for v in p.visits()] == [60.1, 60.2]
    assert isinstance(parse_orders_doc(doc(type="cancel", id="o-1", **BASE)), CancelDoc)
    v = parse_orders_doc(doc(type="vehicle", vehicle="van-1", capacity=[800, 4], **BASE))
    assert isinstance(v, VehicleDoc)
    assert v.active


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (doc(type="teleport", **BASE), "unknown document type"),
        (doc(type="order", id="o", kind="delivery", **BASE), "needs a location"),
        (doc(type="order", id="o", kind="pair", **BASE, pickup={"location": {"lat": 1, "lon": 2}}),
         "needs pickup and delivery"),
        (doc(type="order", id="o", kind="delivery", location={"lat": 91, "lon": 0}, **BASE),
         "location.lat"),
        (doc(type="order", id="o", kind="delivery", location={"lat": 1, "lon": 2},
             windows=[[200, 100]], **BASE), "ends before"),
        (doc(type="order", id="bad id!", kind="delivery", location={"lat": 1, "lon": 2}, **BASE),
         "id"),
        (doc(type="order", id="o", kind="delivery", location={"lat": 1, "lon": 2}, demand=[-1],
             **BASE), "demand"),
        (doc(type="order", id="o", kind="delivery", location={"lat": 1, "lon": 2}, colour="red",
             **BASE), "colour"),
    ],
)  # fmt: skip
def test_bad_orders_documents_are_refused_with_a_reason(payload: bytes, why: str) -> None:
    with pytest.raises(MessageError, match=why):
        parse_orders_doc(payload)


def _event(kind: str, **detail: object) -> bytes:
    return json.dumps({"v": 1, "tenant": "acme", "vehicle": "van-1", "time_us": 5_000_000,
                       "kind": kind, "event_key": "k", "source": "vehicle", "seq": 1,
                       "detail": detail}).encode()  # fmt: skip


def test_domain_events_only_the_dispatch_kinds_matter() -> None:
    assert parse_domain_event(_event("trip.start")) is None
    ev = parse_domain_event(_event("vehicle_breakdown", lat=60.2, lon=24.9, severity=2))
    assert ev is not None
    assert ev.time_s == 5.0
    assert ev.position is not None
    assert (ev.position.lat, ev.position.lon) == (60.2, 24.9)
    late = parse_domain_event(_event("vehicle_late", delay_s=900))
    assert late is not None
    assert late.delay_s == 900
    assert late.position is None
    odd = parse_domain_event(_event("vehicle_late", delay_s="soon"))
    assert odd is not None
    assert odd.delay_s == 0.0
    with pytest.raises(MessageError):
        parse_domain_event(b'{"kind": "vehicle_breakdown", "tenant": "acme"}')
