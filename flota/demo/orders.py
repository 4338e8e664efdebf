"""The demo's order stream: a depot, its vehicles, and orders arriving (and now and then
cancelled) on the dispatcher's orders topic, as a shipper's system would send them."""

from __future__ import annotations

import json
import math
import random
import threading
import time
from typing import Any

from kafka import KafkaProducer

from cloud.optimizer.dispatch.topics import depot_key, orders_topic

DEPOT = "HEL"
DEPOT_LAT, DEPOT_LON = 60.1699, 24.9384  # the simulated fleet drives around here
ORDER_RADIUS_M = 2_500.0


class OrderFeed:
    """Publishes the depot, the vehicles and a seeded stream of orders."""

    def __init__(
        self, bootstrap: str, prefix: str, tenant: str, vehicles: list[str], seed: int = 42,
        depot: str = DEPOT,
    ) -> None:  # fmt: skip
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
        self.depot = depot
        self.topic = orders_topic(prefix)
        self.tenant = tenant
        self.vehicles = vehicles
        self.rng = random.Random(seed)
        self.sent = 0
        self.cancelled = 0

    def _send(self, doc: dict[str, Any]) -> None:
        self.producer.send(
            self.topic, key=depot_key(self.tenant, self.depot), value=json.dumps(doc).encode()
        )

    def setup(self) -> None:
        now = time.time()
        base = {"v": 1, "tenant": self.tenant, "depot": self.depot}
        self._send({**base, "type": "depot", "location": {"lat": DEPOT_LAT, "lon": DEPOT_LON},
                    "window": [now - 3600, now + 12 * 3600]})  # fmt: skip
        for v in self.vehicles:
            self._send({**base, "type": "vehicle", "vehicle": v, "capacity": [60],
                        "shift": [now - 600, now + 10 * 3600], "active": True})  # fmt: skip
        self.producer.flush(10)

    def order(self) -> None:
        """One delivery within 2.5 km of the depot (a few minutes' drive through town),
        sometimes with a time window."""
        now = time.time()
        r = ORDER_RADIUS_M * math.sqrt(self.rng.random())
        a = self.rng.uniform(0, 2 * math.pi)
        lat = DEPOT_LAT + r * math.cos(a) / 111_195
        lon = DEPOT_LON + r * math.sin(a) / (111_195 * math.cos(math.radians(DEPOT_LAT)))
        start = now + self.rng.uniform(600, 3 * 3600)
        windows = [[start, start + 3600]] if self.rng.random() < 0.5 else []
        self.sent += 1
        self._send({"v": 1, "type": "order", "tenant": self.tenant, "depot": self.depot,
                    "id": f"o-{self.sent}", "kind": "delivery",
                    "location": {"lat": round(lat, 6), "lon": round(lon, 6)},
                    "windows": windows, "service_s": 120, "demand": [self.rng.randint(1, 8)],
                    "priority": 0, "penalty": 100_000})  # fmt: skip
        if self.sent > 3 and self.rng.random() < 0.1:
            self.cancelled += 1
            victim = self.rng.randint(1, self.sent - 1)
            self._send({"v": 1, "type": "cancel", "tenant": self.tenant, "depot": self.depot,
                        "id": f"o-{victim}"})  # fmt: skip
        self.producer.flush(10)

    def run(self, stop: threading.Event, first_every_s: float = 4.0,
            then_every_s: float = 20.0) -> None:  # fmt: skip
        """Two orders per vehicle in quick succession (every vehicle gets work within
        seconds), then a steadier stream: a stop takes a vehicle minutes to drive to and serve,
        and a faster feed would only grow every plan to the vehicles' capacity."""
        self.setup()
        burst = 2 * len(self.vehicles)
        while not stop.wait(first_every_s if self.sent < burst else then_every_s):
            self.order()

    def close(self) -> None:
        self.producer.close(timeout=5)
