"""`flota bridge run` killed with SIGKILL mid-stream, against the real Mosquitto, Kafka and
TimescaleDB of the local stack (none of which is restarted): 0 fixes lost, 0 stored twice.

The device behaves as the agent does: it forgets a batch only on the end-to-end stored-ack and
publishes again what stays unacknowledged too long."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import psycopg
import pytest
from ingest_fault_support import AckDevice, flota, ingest_database, process_env

from flota.commands.bench_ingest import _stack_env
from flota_wire.schema import Fix
from flota_wire.telemetry import encode_telemetry

pytestmark = [pytest.mark.fault, pytest.mark.slow]

BATCHES = 150
PER_BATCH = 50
RESEND_AFTER_S = 10.0


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
    register = [(dev["tenant"], dev["vehicle"])]
    with ingest_database(env["FLOTA_DATABASE_URL"], "flota_bridge_fault", register) as url:
        # FLOTA_MQTT_CLIENT_ID in it keeps the bridge's session across the crash
        penv = process_env(env, url, f"bf{tag}")
        log = tmp_path / "procs.log"
        store = flota(["ingest", "store"], penv, log)
        bridge = flota(["bridge", "run"], penv, log)
        # only this cloud's acks count (other clouds on the shared broker ack this vehicle too)
        device = AckDevice(
            env["FLOTA_MQTT_HOST"], int(env["FLOTA_MQTT_PORT"]), dev, penv["FLOTA_CLOUD_ID"]
        )
        published_at: dict[int, float] = {}
        resends = 0
        try:
            # The bridge's session must exist before the stream starts (else nobody gets it).
            deadline = time.monotonic() + 180  # start-up on a loaded machine
            first = {f.seq for f in batches[0]}
            while time.monotonic() < deadline and device.missing(first):
                device.publish(payloads[0], wait=False)
                published_at[0] = time.monotonic()
                time.sleep(1.0)
            assert not device.missing(first), log.read_text()[-3000:]
            for b in range(1, BATCHES):
                device.publish(payloads[b], wait=False)
                published_at[b] = time.monotonic()
                time.sleep(0.02)
                if b == BATCHES // 3:
                    bridge.kill()  # SIGKILL mid-stream, messages in flight
                    bridge.wait(10)
                    bridge = flota(["bridge", "run"], penv, log)
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                missing = [b for b in range(BATCHES) if device.missing({f.seq for f in batches[b]})]
                if not missing:
                    break
                for b in missing:  # what the agent's outbox does with unacknowledged rows
                    if time.monotonic() - published_at[b] > RESEND_AFTER_S:
                        device.publish(payloads[b], wait=False)
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
