"""`flota bridge run` killed with SIGKILL mid-stream, against the real Mosquitto, Kafka and
TimescaleDB of the local stack (none of which is restarted): 0 fixes lost, 0 stored twice.

The device behaves as the agent does: it forgets a batch only on the end-to-end stored-ack and
publishes again what stays unacknowledged too long."""

from __future__ import annotations

import json
import secrets
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from ingest_fault_support import flota
from paho.mqtt.enums import CallbackAPIVersion

from cloud.db.connection import connect
from cloud.db.migrate import migrate
from cloud.db.scratch import scratch_database
from flota.commands.bench_ingest import _stack_env
from flota_wire import topics as wt
from flota_wire.acks import decode_stored_ack
from flota_wire.schema import Fix
from flota_wire.telemetry import encode_telemetry

pytestmark = [pytest.mark.fault, pytest.mark.slow]

BATCHES = 150
PER_BATCH = 50
RESEND_AFTER_S = 10.0


class Device:
    def __init__(self, host: str, port: int, dev: dict[str, str]) -> None:
        self.dev = dev
        self.acked: set[int] = set()
        self.lock = threading.Lock()
        subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bf-{secrets.token_hex(4)}"
        )
        self.client.username_pw_set(dev["username"], dev["password"])
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.connect(host, port)
        self.client.loop_start()
        self.client.subscribe(wt.topic(dev["tenant"], dev["vehicle"], wt.Channel.STORED), qos=1)
        assert subscribed.wait(10)
        self.topic = wt.topic(dev["tenant"], dev["vehicle"], wt.Channel.TELEMETRY)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        ack = decode_stored_ack(bytes(msg.payload))
        with self.lock:
            for first, last in ack.ranges:
                self.acked.update(range(first, last + 1))

    def publish(self, payload: bytes) -> None:
        self.client.publish(self.topic, payload, qos=1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_bridge_killed_mid_stream_loses_nothing(tmp_path: Path) -> None:
    env = _stack_env()
    for need in ("FLOTA_DATABASE_URL", "FLOTA_KAFKA_BOOTSTRAP", "FLOTA_MQTT_DEVICES_FILE"):
        if not env.get(need):
            pytest.fail(f"{need} unset: start the stack (deploy/local/start.sh)", pytrace=False)
    dev = json.loads(Path(env["FLOTA_MQTT_DEVICES_FILE"]).read_text())[2]
    tag = secrets.token_hex(4)
    t0 = int(time.time() * 1e6) - 86_400_000_000
    # The stack's broker is shared: other pipelines may acknowledge this vehicle's seqs too, so
    # ours are drawn from a range nobody else uses.
    seq0 = 10**12 + secrets.randbelow(10**12)
    batches = [
        [Fix(seq=seq0 + i, time_us=t0 + i * 1_000_000, lat_e6=60_000_000 + i * 90,
             lon_e6=24_900_000, speed_cmps=1000) for i in range(b * PER_BATCH, (b + 1) * PER_BATCH)]
        for b in range(BATCHES)
    ]  # fmt: skip
    payloads = [encode_telemetry(b) for b in batches]
    sent = BATCHES * PER_BATCH
    with scratch_database(env["FLOTA_DATABASE_URL"], prefix="flota_bridge_fault") as url:
        with connect(url, autocommit=True) as conn:
            migrate(conn)
            conn.execute("INSERT INTO tenants (tenant_id) VALUES (%s)", (dev["tenant"],))
            conn.execute(
                "INSERT INTO devices (tenant_id, vehicle_id) VALUES (%s, %s)",
                (dev["tenant"], dev["vehicle"]),
            )
        penv = {
            **env,
            "FLOTA_DATABASE_URL": url,
            "FLOTA_REGISTRY_DATABASE_URL": url,
            "FLOTA_KAFKA_TOPIC_PREFIX": f"bf{tag}",
            "FLOTA_SHARE_GROUP": f"bf{tag}",
            "FLOTA_CONSUMER_GROUP": f"bf-store-{tag}",
            "FLOTA_MQTT_CLIENT_ID": f"bf-bridge-{tag}",  # persistent session across the crash
            "FLOTA_LOG_LEVEL": "WARNING",
        }
        log = tmp_path / "procs.log"
        store = flota(["ingest", "store"], penv, log)
        bridge = flota(["bridge", "run"], penv, log)
        device = Device(env["FLOTA_MQTT_HOST"], int(env["FLOTA_MQTT_PORT"]), dev)
        published_at: dict[int, float] = {}
        resends = 0
        try:
            # The bridge's session must exist before the stream starts (else nobody gets it).
            deadline = time.monotonic() + 180  # start-up on a loaded machine
            while time.monotonic() < deadline and not device.acked:
                device.publish(payloads[0])
                published_at[0] = time.monotonic()
                time.sleep(1.0)
            assert device.acked, log.read_text()[-3000:]
            for b in range(1, BATCHES):
                device.publish(payloads[b])
                published_at[b] = time.monotonic()
                time.sleep(0.02)
                if b == BATCHES // 3:
                    bridge.kill()  # SIGKILL mid-stream, messages in flight
                    bridge.wait(10)
                    bridge = flota(["bridge", "run"], penv, log)
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                with device.lock:
                    missing = [b for b in range(BATCHES)
                               if not {f.seq for f in batches[b]} <= device.acked]  # fmt: skip
                if not missing:
                    break
                for b in missing:  # what the agent's outbox does with unacknowledged rows
                    if time.monotonic() - published_at[b] > RESEND_AFTER_S:
                        device.publish(payloads[b])
                        published_at[b] = time.monotonic()
                        resends += 1
                time.sleep(0.2)
            assert not missing, f"never acknowledged: batches {missing[:10]}"
            with psycopg.connect(url) as conn:
                row = conn.execute(
                    "SELECT count(*), count(DISTINCT seq) FROM fixes WHERE tenant_id = %s "
                    "AND vehicle_id = %s AND seq >= %s",  # other tests may drive this device
                    (dev["tenant"], dev["vehicle"], seq0),
                ).fetchone()
        finally:
            device.close()
            for proc in (bridge, store):
                proc.terminate()
                proc.wait(30)
    assert row == (sent, sent), f"stored {row} of {sent} (resends: {resends})"
