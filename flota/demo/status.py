"""What the demo shows and sums up: one snapshot of the whole system, read from where an
operator would read it (the database, the store's Prometheus endpoint, the agents' own stats)."""

from __future__ import annotations

import contextlib
import time
import urllib.request
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flota.demo.etas import NextStop, NextStopEtas
from flota.demo.vehicle import DemoVehicle


@dataclass
class VehicleRow:
    name: str
    online: bool
    accepted: int  # fixes the outbox committed since the agent started
    queued: int  # fixes waiting for the cloud's stored-ack
    speed_kmh: float | None  # the cloud's latest state of the vehicle
    age_s: float | None  # how old that latest fix is
    imu_batches: int  # IMU batches received over the MCU link
    events: int  # events the agent raised (its models, GNSS loss, ...)
    obd_ready: bool
    stops_done: int = 0  # the agent's own count of stops completed
    stops_planned: int = 0
    next_stop: NextStop | None = None


@dataclass
class Snapshot:
    elapsed_s: float
    vehicles: list[VehicleRow]
    fixes_stored: int
    fixes_per_s: float
    consumer_lag: int | None
    events: dict[str, int]
    sensors: dict[str, int]  # samples stored per source (obd, can, io, ...)
    plans_pushed: int
    plans_acked: int
    plans_refused: int
    orders: int
    orders_done: int  # the dispatcher's own record: every task of the order completed
    quarantine: dict[str, int]

    @property
    def online(self) -> int:
        return sum(v.online for v in self.vehicles)

    @property
    def queued(self) -> int:
        return sum(v.queued for v in self.vehicles)


def db_totals(
    url: str, tenant: str, vehicles: list[str], since: datetime, depot: str = ""
) -> dict[str, Any]:
    """Rows stored, events per kind, plans and quarantine per reason of this run (its fleet,
    since it started: on shared services other data is there too)."""
    from cloud.db.connection import connect

    mine = "tenant_id = %s AND vehicle_id = ANY(%s)"
    args = (tenant, vehicles, since)
    with connect(url, autocommit=True) as conn:
        fixes = conn.execute(f"SELECT count(*) FROM fixes WHERE {mine} AND time >= %s", args)
        n_fixes = int(fixes.fetchone()[0])  # type: ignore[index]
        events = conn.execute(
            f"SELECT kind, count(*) FROM events WHERE {mine} AND time >= %s GROUP BY kind", args
        ).fetchall()
        sensors = conn.execute(
            f"SELECT split_part(sensor, '.', 1), count(*) FROM sensor_samples WHERE {mine}"
            " AND time >= %s GROUP BY 1",
            args,
        ).fetchall()
        plans = conn.execute(
            "SELECT count(*) FILTER (WHERE pushed_at IS NOT NULL),"
            " count(*) FILTER (WHERE ack_status = 'applied'),"
            " count(*) FILTER (WHERE ack_status IN ('rejected', 'failed')) FROM dispatch_plans"
            f" WHERE {mine} AND created_at >= %s",
            args,
        ).fetchone()
        latest = conn.execute(
            "SELECT vehicle_id, speed_mps, extract(epoch FROM now() - time), lat, lon"
            " FROM vehicle_latest"
            f" WHERE {mine}",
            args[:2],
        ).fetchall()
        done = conn.execute(
            "SELECT count(*) FROM dispatch_orders WHERE tenant_id = %s AND depot_id = %s"
            " AND status = 'done' AND created_at >= %s",
            (tenant, depot, since),
        ).fetchone()
        quarantine = conn.execute(
            "SELECT reason, count(*) FROM quarantine WHERE received_at >= %s"
            " AND (tenant_id = %s OR tenant_id IS NULL) GROUP BY reason",
            (since, tenant),
        ).fetchall()
    assert plans is not None
    return {
        "fixes": n_fixes,
        "events": {str(k): int(n) for k, n in events},
        "sensors": {str(k): int(n) for k, n in sensors},
        "plans_pushed": int(plans[0]),
        "plans_acked": int(plans[1]),  # applied on the vehicle
        "plans_refused": int(plans[2]),
        "orders_done": int(done[0]) if done else 0,
        "quarantine": {str(r): int(n) for r, n in quarantine},
        "latest": {str(v): (sp, float(age), (la, lo)) for v, sp, age, la, lo in latest},
    }


def stored_keys(
    url: str, tenant: str, vehicles: list[str], min_seq: int
) -> Counter[tuple[str, int]]:
    """Rows per (vehicle, seq) key stored from ``min_seq`` on."""
    from cloud.db.connection import connect

    with connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT vehicle_id, seq, count(*) FROM fixes"
            " WHERE tenant_id = %s AND vehicle_id = ANY(%s) AND seq >= %s GROUP BY 1, 2",
            (tenant, vehicles, min_seq),
        ).fetchall()
    return Counter({(str(v), int(s)): int(n) for v, s, n in rows})


def scrape_lag(metrics_port: int) -> int | None:
    """Sum of ``flota_ingest_consumer_lag`` on the store's /metrics; None if unreachable."""
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=0.5) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    total = 0.0
    for line in text.splitlines():
        if line.startswith("flota_ingest_consumer_lag{"):
            with contextlib.suppress(ValueError):
                total += float(line.rsplit(" ", 1)[1])
    return round(total)


def vehicle_row(
    v: DemoVehicle, latest: dict[str, tuple[Any, float, tuple[float, float]]],
    etas: NextStopEtas | None,
) -> VehicleRow:  # fmt: skip
    st = v.stats()
    speed, age, position = latest.get(v.vehicle, (None, None, None))
    agent = st.get("agent", {})
    return VehicleRow(
        name=v.vehicle,
        online=bool(st.get("connected")),
        accepted=len(v.accepted()),
        queued=int(st.get("outbox", {}).get("fix_rows", 0)),
        speed_kmh=None if speed is None else float(speed) * 3.6,
        age_s=age,
        imu_batches=int(st.get("mcu", {}).get("rx_imu_batch", 0)),
        events=sum(int(n) for k, n in agent.items() if k.startswith("event_")),
        obd_ready=bool(st.get("obd", {}).get("initialised")),
        stops_done=int(st.get("stops", {}).get("completed", 0)),
        stops_planned=int(st.get("stops", {}).get("plan_stops", 0)),
        next_stop=None
        if etas is None
        else etas.next_stop(v.vehicle, v.state_dir / "route_plan.json", position),
    )


@dataclass
class Watcher:
    """Takes snapshots; keeps a short history of stored counts for the rate."""

    url: str
    metrics_port: int
    fleet: list[DemoVehicle]
    since: datetime  # the run's start (wall clock)
    etas: NextStopEtas | None = None
    depot: str = ""
    started: float = field(default_factory=time.monotonic)
    _history: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=6))

    def snapshot(self, orders: int) -> Snapshot:
        names = [v.vehicle for v in self.fleet]
        db = db_totals(self.url, self.fleet[0].tenant, names, self.since, self.depot)
        now = time.monotonic()
        self._history.append((now, db["fixes"]))
        t0, n0 = self._history[0]
        rate = (db["fixes"] - n0) / (now - t0) if now > t0 else 0.0
        return Snapshot(
            elapsed_s=now - self.started,
            vehicles=[vehicle_row(v, db["latest"], self.etas) for v in self.fleet],
            fixes_stored=db["fixes"],
            fixes_per_s=rate,
            consumer_lag=scrape_lag(self.metrics_port),
            events=db["events"],
            sensors=db["sensors"],
            plans_pushed=db["plans_pushed"],
            plans_acked=db["plans_acked"],
            plans_refused=db["plans_refused"],
            orders=orders,
            orders_done=db["orders_done"],
            quarantine=db["quarantine"],
        )
