"""The dispatch service's Prometheus endpoint against the real Kafka and TimescaleDB: an order
in, a route plan out, and /metrics on FLOTA_METRICS_PORT showing the records, the
re-optimisation, its solve time and the pushed plan; the endpoint closes with the service."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from dispatch_support import fast_dispatch_settings, first_plan
from kafka import KafkaProducer
from pipeline_support import ingest_database
from prometheus_client.parser import text_string_to_metric_families

from cloud.optimizer.dispatch.service import DispatchService
from cloud.optimizer.dispatch.topics import depot_key, orders_topic

TENANT, DEPOT = "acme", f"MET{uuid.uuid4().hex[:4]}"
VAN = f"van-{uuid.uuid4().hex[:6]}"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def metrics_db(database_url: str) -> Iterator[str]:
    with ingest_database(database_url, prefix="flota_dmetrics") as url:
        yield url


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _scrape(port: int) -> Samples:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def _get(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def test_metrics_endpoint_shows_the_order_the_solve_and_the_plan(
    metrics_db: str, kafka_bootstrap: str
) -> None:
    port = _free_port()
    settings = fast_dispatch_settings(metrics_db, kafka_bootstrap).model_copy(
        update={"metrics_port": port}
    )
    service = DispatchService(settings)
    stop = threading.Event()
    thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
    thread.start()
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap.split(","))
    try:
        now = time.time()
        name = orders_topic(settings.kafka_topic_prefix)

        def send(doc: dict[str, Any]) -> None:
            value = json.dumps({"v": 1, "tenant": TENANT, "depot": DEPOT, **doc}).encode()
            producer.send(name, key=depot_key(TENANT, DEPOT), value=value)

        send({"type": "depot", "location": {"lat": 60.17, "lon": 24.94}})
        send({"type": "vehicle", "vehicle": VAN, "capacity": [10],
              "shift": [now - 600, now + 8 * 3600]})  # fmt: skip
        send({"type": "order", "id": "o-1", "kind": "delivery", "demand": [1],
              "location": {"lat": 60.18, "lon": 24.95}})  # fmt: skip
        send({"type": "order", "id": "no-location", "kind": "delivery"})  # counted, skipped
        producer.flush()

        plan = first_plan(settings, VAN)
        assert isinstance(plan.payload, dict)
        assert [s["order"] for s in plan.payload["stops"]] == ["o-1"]

        # The plan is on the topic before the service has counted it: scrape until it has.
        deadline = time.monotonic() + 30
        samples = _scrape(port)
        while not _get(samples, "flota_dispatch_plans_pushed_total"):
            assert time.monotonic() < deadline, "plans_pushed never counted"
            time.sleep(0.2)
            samples = _scrape(port)

        assert _get(samples, "flota_dispatch_records_in_total", topic="orders") == 4
        assert _get(samples, "flota_dispatch_bad_records_total", reason="orders") == 1
        replans = {
            dict(labels)["outcome"]: value
            for (sample, labels), value in samples.items()
            if sample == "flota_dispatch_replans_total"
        }
        assert replans.get("planned", 0) >= 1, replans
        triggers = _get(samples, "flota_dispatch_replan_triggers_total", trigger="order_new")
        assert triggers is not None
        assert triggers >= 1
        assert _get(samples, "flota_dispatch_plans_pushed_total") == 1
        assert _get(samples, "flota_dispatch_plans_unpushed") == 0
        # One solve-time observation per re-optimisation; a real engine ran for the plan.
        engines = {
            dict(labels)["engine"]: value
            for (sample, labels), value in samples.items()
            if sample == "flota_dispatch_solve_seconds_count"
        }
        assert sum(engines.values()) == sum(replans.values())
        assert set(engines) - {"none"}, engines
        for engine, count in engines.items():
            total = _get(samples, "flota_dispatch_solve_seconds_sum", engine=engine)
            assert total is not None
            assert total > 0
            inf = _get(samples, "flota_dispatch_solve_seconds_bucket", engine=engine, le="+Inf")
            assert inf == count
        depot = {"tenant": TENANT, "depot": DEPOT}
        assert _get(samples, "flota_dispatch_open_orders", **depot) == 1
        assert _get(samples, "flota_dispatch_unassigned_orders", **depot) == 0
        assert _get(samples, "flota_dispatch_vehicles", state="usable", **depot) == 1
        assert _get(samples, "flota_dispatch_stop_completions_applied_total") == 0
    finally:
        producer.close()
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    with pytest.raises(urllib.error.URLError, match="refused"):  # the endpoint went with it
        _scrape(port)
