"""The agent end to end against the real Mosquitto, Kafka and TimescaleDB: NMEA from a
pseudo-terminal fed by a scripted receiver -> agent -> outbox -> MQTT -> bridge -> Kafka ->
store -> rows, and the store's acknowledgement empties the outbox. The network is cut by a TCP
relay between the agent and the broker: while it is down fixes queue up; afterwards every one
arrives, none twice."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr
from stack_support import MqttBroker, MqttDevice

from cloud.db.connection import connect
from cloud.db.migrate import migrate
from cloud.db.scratch import scratch_database
from cloud.ingest.bridge import Bridge
from cloud.ingest.checks import check_payload
from cloud.ingest.store import Store
from cloud.settings import BridgeSettings, StoreSettings
from edge_agent.agent import Agent
from edge_agent.settings import AgentSettings
from edge_agent.simpeer import GpsPeer
from flota_wire import Fix
from flota_wire.tracesim import simulate_city

# ---------------------------------------------------------------------------- helpers


class Relay:
    """A TCP relay to the broker that can be cut (listener closed, connections reset) and
    restored: the network going away under a running agent."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def up(self) -> None:
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.port))
        ls.listen(8)
        self._listener = ls
        threading.Thread(target=self._accept, args=(ls,), daemon=True).start()

    def down(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):  # wakes the thread blocked in accept()
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for c in self._conns:
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)
                c.close()
            self._conns.clear()

    def _accept(self, ls: socket.socket) -> None:
        while True:
            try:
                client, _ = ls.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_RDWR)


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def agent_db(database_url: str) -> Iterator[str]:
    with scratch_database(database_url, prefix="flota_agent") as url:
        with connect(url, autocommit=True) as conn:
            migrate(conn)
        yield url


@pytest.fixture(scope="module")
def cloud(agent_db: str, mqtt_broker: MqttBroker, kafka_bootstrap: str) -> Iterator[Store]:
    prefix = f"a{uuid.uuid4().hex[:8]}"
    bridge = Bridge(
        BridgeSettings(
            mqtt_host=mqtt_broker.host,
            mqtt_port=mqtt_broker.port,
            mqtt_username=mqtt_broker.bridge.username,
            mqtt_password=SecretStr(mqtt_broker.bridge.password),
            kafka_bootstrap=kafka_bootstrap,
            kafka_topic_prefix=prefix,
            share_group=f"g{prefix}",
        ),
        check=check_payload,
    )
    store = Store(
        StoreSettings(
            kafka_bootstrap=kafka_bootstrap,
            kafka_topic_prefix=prefix,
            database_url=SecretStr(agent_db),
            consumer_group=f"store-{prefix}",
            batch_max_wait_ms=50,
        )
    )
    stop = threading.Event()
    threads = [
        threading.Thread(target=bridge.run, args=(stop,), daemon=True),
        threading.Thread(target=store.run, args=(stop,), daemon=True),
    ]
    for t in threads:
        t.start()
    yield store
    stop.set()
    for t in threads:
        t.join(timeout=20)


def _settings(dev: MqttDevice, port: int, state: Path, gps: str, **kw: Any) -> AgentSettings:
    return AgentSettings(
        tenant=dev.tenant,
        vehicle=dev.vehicle,
        mqtt_host="127.0.0.1",
        mqtt_port=port,
        mqtt_username=dev.username,
        mqtt_password=SecretStr(dev.password),
        # a fresh session per run: a stale one could hold acks of an earlier run's seqs
        mqtt_client_id=f"{dev.tenant}.{dev.vehicle}.{uuid.uuid4().hex[:6]}",
        mqtt_reconnect_max_s=2,
        gps_url=gps,
        gps_baud=9600,
        state_dir=state,
        report_max_interval_s=1.0,  # every 1 Hz epoch is reported: exact counts
        report_min_interval_s=1.0,
        report_stopped_interval_s=1.0,
        batch_interval_s=0.5,
        batch_max_fixes=25,
        resend_after_s=20.0,
        stats_interval_s=5.0,
        **kw,
    )


def _rows(url: str, dev: MqttDevice, min_seq: int) -> list[tuple[Any, ...]]:
    """This run's rows: other processes on the shared broker may publish as the same test
    device (with small seqs); the agent's outbox starts at 100 x the Unix time."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT seq, time, lat, lon FROM fixes WHERE tenant_id = %s AND vehicle_id = %s "
            "AND seq >= %s ORDER BY seq",
            (dev.tenant, dev.vehicle, min_seq),
        ).fetchall()


class Running:
    """The agent in a thread, with what its outbox committed."""

    def __init__(self, settings: AgentSettings) -> None:
        self.agent = Agent(settings)
        self.committed: dict[int, Fix] = {}
        self.agent.pipeline.on_commit = self._on_commit
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.agent.run, args=(self.stop,), daemon=True)

    def _on_commit(self, seqs: list[int], fixes: list[Fix]) -> None:
        self.committed.update(zip(seqs, fixes, strict=True))

    def __enter__(self) -> Running:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=20)

    def wait(self, cond: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return
            time.sleep(0.1)
        pytest.fail(f"timed out waiting for {what}; stats: {self.agent.stats()}")


# ---------------------------------------------------------------------------- tests


def test_agent_fixes_reach_the_database_and_leave_the_outbox_across_outages(
    cloud: Store, agent_db: str, mqtt_broker: MqttBroker, tmp_path: Path
) -> None:
    dev = mqtt_broker.devices[2]
    relay = Relay((mqtt_broker.host, mqtt_broker.port))
    gps = GpsPeer()
    now_us = int(time.time() * 1e6) - 240_000_000
    trace = simulate_city(200, seed=11, start_us=now_us, first_seq=1, dropout=0.0)
    settings = _settings(dev, relay.port, tmp_path / "state", gps.path)
    try:
        with Running(settings) as run:
            box = run.agent.outbox
            # 1. the network is down from the start: fixes are accepted and queue up
            gps.send(trace[:80])
            run.wait(lambda: len(run.committed) >= 78, 30, "fixes committed while offline")
            assert not run.agent.uplink.connected
            assert box.fix_rows == len(run.committed)

            # 2. the network comes: everything queued is replayed and acknowledged
            relay.up()
            run.wait(lambda: box.fix_rows == 0, 60, "the outbox to drain after connecting")

            # 3. cut while driving, then restored
            gps.send(trace[80:120])
            relay.down()
            gps.send(trace[120:190])
            run.wait(lambda: len(run.committed) >= 185, 30, "fixes committed during the cut")
            assert box.fix_rows > 0
            relay.up()
            run.wait(lambda: box.fix_rows == 0, 60, "the outbox to drain after the cut")
            counters = dict(run.agent.uplink.counters)
            acked = box.stats()["acked:telemetry"]
        committed = run.committed
        rows = _rows(agent_db, dev, min(committed))
        seqs = [r[0] for r in rows]
        assert len(seqs) == len(set(seqs)), "duplicate rows"
        assert sorted(committed) == seqs, "every committed fix is a row, and nothing else"
        for seq, t, lat, lon in rows:
            f = committed[seq]
            assert round(lat * 1e6) == f.lat_e6
            assert round(lon * 1e6) == f.lon_e6
            assert round(t.timestamp() * 1e6) == f.time_us
        assert counters["telemetry_alias_only"] > 0  # MQTT 5 topic alias in use
        assert counters.get("disconnected", 0) <= 2  # the cut (and nothing the alias caused)
        assert counters["replay_connect"] >= 2  # the first connect and the one after the cut
        assert counters["stored_deleted_telemetry"] == len(committed)
        assert acked == len(committed)
    finally:
        relay.down()
        gps.close()


def test_agent_outbox_over_its_cap_drops_oldest_positions_exactly_never_events(
    cloud: Store, agent_db: str, mqtt_broker: MqttBroker, tmp_path: Path
) -> None:
    dev = mqtt_broker.devices[4]
    relay = Relay((mqtt_broker.host, mqtt_broker.port))
    gps = GpsPeer()
    now_us = int(time.time() * 1e6) - 240_000_000
    trace = simulate_city(120, seed=12, start_us=now_us, first_seq=1, dropout=0.0)
    settings = _settings(dev, relay.port, tmp_path / "state", gps.path, outbox_max_rows=40)
    try:
        with Running(settings) as run:
            box = run.agent.outbox
            run.agent.emit_event("tamper")  # queued first; it must survive every drop
            gps.send(trace[:100])
            run.wait(lambda: len(run.committed) >= 98, 30, "fixes committed while offline")
            committed = dict(run.committed)
            dropped = box.dropped
            queued = box.queued_seqs()
            assert box.rows == 40  # 39 positions + the event
            assert dropped == len(committed) - 39
            assert queued == sorted(committed)[dropped:]  # the oldest went first
            assert len(box.queued_seqs("events")) == 1
            relay.up()
            run.wait(lambda: box.rows == 0, 60, "the outbox to drain")
            counters = run.agent.uplink.counters
            # the event left only on the store's acknowledgement, not on the broker's PUBACK
            assert counters["stored_deleted_events"] == 1
            assert counters["puback_deleted_events"] == 0
        rows = [r[0] for r in _rows(agent_db, dev, min(committed))]
        assert rows == queued  # exactly the survivors, once each
    finally:
        relay.down()
        gps.close()


def test_commands_travel_from_kafka_to_the_agent_and_acks_back(
    cloud: Store, kafka_bootstrap: str, mqtt_broker: MqttBroker, tmp_path: Path
) -> None:
    from kafka import KafkaConsumer, KafkaProducer

    from flota_wire import AckStatus, Command, CommandKind, encode
    from flota_wire.jsoncodec import decode_command_ack

    dev = mqtt_broker.devices[3]
    prefix = cloud.settings.kafka_topic_prefix
    gps = GpsPeer()
    settings = _settings(dev, mqtt_broker.port, tmp_path / "state", gps.path)
    now_us = time.time_ns() // 1000
    plan = Command(1, "plan-e2e", 3, CommandKind.ROUTE_PLAN,
                   {"plan_id": "p-9", "stops": [{"id": "s1", "lat": 60.17, "lon": 24.94}]},
                   now_us)  # fmt: skip
    config = Command(2, "cfg-e2e", 1, CommandKind.CONFIG, {"report_heading_deg": 15}, now_us)
    stale = Command(3, "old-e2e", 1, CommandKind.CONFIG, {"batch_interval_s": 5}, now_us - 10,
                    expires_at_us=now_us - 5)  # fmt: skip
    key = f"{dev.tenant}/{dev.vehicle}".encode()
    try:
        with Running(settings) as run:
            run.wait(lambda: run.agent.uplink.connected, 30, "the agent to connect")
            time.sleep(1.0)  # SUBACK for down/commands
            producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
            for cmd in (plan, config, stale):
                producer.send(f"{prefix}.commands.v1", key=key, value=encode(cmd))
            producer.flush(30)
            producer.close()
            run.wait(lambda: run.agent.processor.counters["applied"] >= 2, 90, "commands applied")
            run.wait(lambda: run.agent.outbox.message_rows == 0, 30, "acks to leave the outbox")
            assert run.agent.route_plan.current is not None
            assert run.agent.route_plan.current["plan_id"] == "p-9"
            assert run.agent.pipeline.policy.config.heading_deg == 15.0
        consumer = KafkaConsumer(
            f"{prefix}.command-acks.v1",
            bootstrap_servers=kafka_bootstrap,
            auto_offset_reset="earliest",
            consumer_timeout_ms=5000,
        )
        acks = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(acks) < 5:
            for rec in consumer:
                if rec.key == key:
                    ack = decode_command_ack(rec.value)
                    acks[(ack.command_id, ack.status)] = ack
        consumer.close()
        assert set(acks) == {
            ("plan-e2e", AckStatus.ACCEPTED), ("plan-e2e", AckStatus.APPLIED),
            ("cfg-e2e", AckStatus.ACCEPTED), ("cfg-e2e", AckStatus.APPLIED),
            ("old-e2e", AckStatus.REJECTED),
        }  # fmt: skip
        assert acks[("old-e2e", AckStatus.REJECTED)].reason == "expired"
    finally:
        gps.close()
