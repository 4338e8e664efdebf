"""The whole agent (``python -m edge_agent``) killed with SIGKILL while it publishes at 10 Hz to
a real Mosquitto (a private one: see ``broker``), with the cloud bridge and store writing to the
stack's Kafka and TimescaleDB and acknowledging.

A scripted receiver feeds 10 Hz NMEA into a pty for the whole test; every epoch is reported
(thresholds at 0.1 s). The agent's audit log names, after each commit, the seqs its outbox
accepted. After every kill: the outbox passes PRAGMA integrity_check, and every accepted seq is
still queued or already a row in the database (a row leaves the outbox only on the store's
acknowledgement, sent after its commit). At the end the agent runs undisturbed until its outbox
is empty: then the rows are exactly the accepted seqs, each once.

FLOTA_FAULT_AGENT_KILLS sets the number of kills (default 25, about 1.5 minutes).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from stack_support import (  # noqa: E402  (the integration tests' helpers)
    STACK_ENV_FILE,
    MqttBroker,
    MqttDevice,
    MqttUser,
    StackEnv,
    read_env_file,
)

KILLS = int(os.environ.get("FLOTA_FAULT_AGENT_KILLS", "25"))


@pytest.fixture(scope="module")
def stack() -> StackEnv:
    merged = read_env_file(STACK_ENV_FILE)
    merged.update({k: v for k, v in os.environ.items() if k.startswith("FLOTA_")})
    return StackEnv(merged)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MqttBroker]:
    """A private Mosquitto (Debian's, like the stack's) on a free loopback port: on the
    stack's shared broker every other running cloud subscribes to every vehicle and
    acknowledges what it stores, so a fix could be forgotten on another test's say-so."""
    import shutil
    import socket

    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = tmp_path_factory.mktemp("mosquitto")
    conf = folder / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "max_queued_messages 1000000\nmax_inflight_messages 1000\n"
    )
    proc = subprocess.Popen([exe, "-c", str(conf)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail(f"private Mosquitto did not listen on {port} (exit {proc.poll()})")
        time.sleep(0.1)
    user = MqttUser("fault-bridge", uuid.uuid4().hex)
    dev = MqttDevice("acme.fault-1", uuid.uuid4().hex, "acme", "fault-1")
    yield MqttBroker(host="127.0.0.1", port=port, bridge=user, devices=(dev,))
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def db_url(stack: StackEnv) -> Iterator[str]:
    from cloud.db.connection import connect
    from cloud.db.migrate import migrate
    from cloud.db.scratch import scratch_database

    with scratch_database(stack.require("FLOTA_DATABASE_URL"), prefix="flota_agentkill") as url:
        with connect(url, autocommit=True) as conn:
            migrate(conn)
        yield url


@pytest.fixture(scope="module")
def cloud(db_url: str, broker: MqttBroker, stack: StackEnv) -> Iterator[None]:
    from cloud.ingest.bridge import Bridge
    from cloud.ingest.checks import check_payload
    from cloud.ingest.store import Store
    from cloud.settings import BridgeSettings, StoreSettings

    kafka = stack.require("FLOTA_KAFKA_BOOTSTRAP")
    prefix = f"k{uuid.uuid4().hex[:8]}"
    bridge = Bridge(
        BridgeSettings(  # type: ignore[call-arg]
            mqtt_host=broker.host,
            mqtt_port=broker.port,
            mqtt_username=broker.bridge.username,
            mqtt_password=SecretStr(broker.bridge.password),
            kafka_bootstrap=kafka,
            kafka_topic_prefix=prefix,
            share_group=f"g{prefix}",
        ),
        check=check_payload,
    )
    store = Store(
        StoreSettings(  # type: ignore[call-arg]
            kafka_bootstrap=kafka,
            kafka_topic_prefix=prefix,
            database_url=SecretStr(db_url),
            consumer_group=f"store-{prefix}",
            batch_max_wait_ms=50,
        )
    )
    stop = threading.Event()
    threads = [threading.Thread(target=x.run, args=(stop,), daemon=True) for x in (bridge, store)]
    for t in threads:
        t.start()
    yield
    stop.set()
    for t in threads:
        t.join(timeout=20)


def _accepted(audit: Path) -> list[int]:
    seqs: list[int] = []
    for line in audit.read_text().split("\n")[:-1]:  # the last line may be torn
        parts = line.split()
        if len(parts) == 2:
            seqs.extend(range(int(parts[0]), int(parts[1]) + 1))
    return seqs


def _db_seqs(url: str, dev: MqttDevice, min_seq: int) -> list[int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT seq FROM fixes WHERE tenant_id = %s AND vehicle_id = %s AND seq >= %s "
            "ORDER BY seq",
            (dev.tenant, dev.vehicle, min_seq),
        ).fetchall()
    return [int(r[0]) for r in rows]


def _quarantined(url: str, dev: MqttDevice, seqs: list[int]) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT reason, count(*), min(detail) FROM quarantine "
            "WHERE vehicle_id = %s AND seq = ANY(%s) GROUP BY reason",
            (dev.vehicle, seqs),
        ).fetchall()


@pytest.mark.fault
@pytest.mark.integration
def test_agent_killed_while_publishing_loses_nothing(
    cloud: None, db_url: str, broker: MqttBroker, tmp_path: Path
) -> None:
    from edge_agent.outbox import Outbox
    from edge_agent.simpeer import GpsPeer
    from flota_wire.tracesim import simulate_city

    dev = broker.devices[0]
    state = tmp_path / "state"
    audit = tmp_path / "audit.log"
    audit.touch()
    first_seq = int(time.time() * 100)
    env: dict[str, Any] = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "FLOTA_AGENT_TENANT": dev.tenant,
        "FLOTA_AGENT_VEHICLE": dev.vehicle,
        "FLOTA_AGENT_MQTT_HOST": broker.host,
        "FLOTA_AGENT_MQTT_PORT": str(broker.port),
        "FLOTA_AGENT_MQTT_USERNAME": dev.username,
        "FLOTA_AGENT_MQTT_PASSWORD": dev.password,
        "FLOTA_AGENT_MQTT_CLIENT_ID": f"kill-{uuid.uuid4().hex[:8]}",
        "FLOTA_AGENT_MQTT_RECONNECT_MAX_S": "2",
        "FLOTA_AGENT_STATE_DIR": str(state),
        "FLOTA_AGENT_OUTBOX_FIRST_SEQ": str(first_seq),
        "FLOTA_AGENT_AUDIT_LOG": str(audit),
        "FLOTA_AGENT_GPS_BAUD": "9600",
        "FLOTA_AGENT_REPORT_MAX_INTERVAL_S": "0.1",
        "FLOTA_AGENT_REPORT_STOPPED_INTERVAL_S": "0.1",
        "FLOTA_AGENT_REPORT_MIN_INTERVAL_S": "0.05",
        "FLOTA_AGENT_BATCH_INTERVAL_S": "1",
        "FLOTA_AGENT_RESEND_AFTER_S": "15",
        "FLOTA_AGENT_STATS_INTERVAL_S": "2",  # stats.json explains a stalled drain
    }
    gps = GpsPeer()
    env["FLOTA_AGENT_GPS_URL"] = gps.path
    feeder = gps.stream(simulate_city(3600, rate_hz=10, seed=21), 10.0)
    cmd = [sys.executable, "-m", "edge_agent", "--log-level", "WARNING"]
    rng = random.Random(20261128)
    gone: set[int] = set()
    try:
        for i in range(KILLS):
            proc = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.3, 4.5))  # start-up, first connect, publishing
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            box = Outbox(state / "outbox.sqlite", first_seq=first_seq)
            try:
                assert box.integrity_ok(), f"corrupt outbox after kill {i}"
                queued = set(box.queued_seqs())
            finally:
                box.close()
            accepted = _accepted(audit)
            assert len(accepted) == len(set(accepted)), f"a seq accepted twice (kill {i})"
            # Not queued any more means acknowledged by the store after its commit; the check
            # that each such fix is a row is on the database at the end.
            gone.update(set(accepted) - queued)
        # Undisturbed: everything queued arrives, once.
        box = Outbox(state / "outbox.sqlite", first_seq=first_seq)
        backlog = box.fix_rows
        box.close()
        log_path = tmp_path / "final-agent.log"
        with log_path.open("wb") as log_file:
            proc = subprocess.Popen(
                [*cmd[:-1], "INFO"], env=env, stderr=log_file, stdout=subprocess.DEVNULL
            )
        drain_t0 = time.monotonic()
        time.sleep(3)
        gps.close()  # the drive ends; the agent flushes what it has
        deadline = time.monotonic() + 120
        try:
            while time.monotonic() < deadline:
                time.sleep(1)
                box = Outbox(state / "outbox.sqlite", first_seq=first_seq)
                left = box.fix_rows
                box.close()
                if left == 0:
                    break
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        accepted = _accepted(audit)
        rows = _db_seqs(db_url, dev, first_seq)
        settle = time.monotonic() + 30
        while set(accepted) - set(rows) and time.monotonic() < settle:
            time.sleep(1)
            rows = _db_seqs(db_url, dev, first_seq)
        drain_s = time.monotonic() - drain_t0
        if left:
            stats = (state / "stats.json").read_text() if (state / "stats.json").exists() else ""
            tail = log_path.read_text()[-4000:]
            # 0 acked between kills means the cloud acknowledged nothing in the whole run
            # (a stuck bridge or store, e.g. the shared Kafka restarted by another test)
            print(
                f"backlog {backlog}; {len(gone)} acked between kills; stats {stats}\n"
                f"--- agent log tail ---\n{tail}"
            )
        assert left == 0, f"{left} of {backlog} fixes still queued after 120 s"
        assert len(rows) == len(set(rows)), "duplicate rows"
        lost = set(accepted) - set(rows)
        assert not lost, (
            f"{len(lost)} accepted fixes never stored: {sorted(lost)[:10]}; "
            f"quarantined: {_quarantined(db_url, dev, sorted(lost))}"
        )
        # Rows the log does not name: committed, then killed before the log line was written
        # (the log is written after the commit). They must still be seqs the outbox handed out.
        box = Outbox(state / "outbox.sqlite", first_seq=first_seq)
        next_seq = box.next_seq("telemetry")
        box.close()
        unlogged = set(rows) - set(accepted)
        assert all(first_seq <= s < next_seq for s in rows), "a row the outbox never made"
        assert len(accepted) > 3 * KILLS  # it really published between the kills
        print(
            f"{KILLS} kills, backlog {backlog} drained in {drain_s:.0f} s; "
            f"{len(accepted)} logged fixes stored once each, plus "
            f"{len(unlogged)} committed just before a kill; {len(gone)} acked between kills"
        )
    finally:
        if not gps._stop.is_set():
            gps.close()
        feeder.join(2)
