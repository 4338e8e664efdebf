"""The demo's simulated fleet (foundation slice): each vehicle drives a seeded synthetic city
trace at 1 Hz and publishes 10-s batches in the flota_wire encoding over MQTT, keeping every
fix until the cloud's end-to-end acknowledgement says it is stored.

The real edge agent (outbox, GPS over a pseudo-terminal, MCU link) replaces this in the agent
and demo issues; the wire, topics and acknowledgements are already the real ones.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from flota_wire import topics as wt
from flota_wire.acks import decode_stored_ack
from flota_wire.codec import decode, encode
from flota_wire.errors import WireError
from flota_wire.schema import AckStatus, Command, CommandAck, DeviceState, Fix
from flota_wire.telemetry import encode_telemetry
from flota_wire.tracesim import batches, simulate_city

log = logging.getLogger(__name__)


@dataclass
class SimVehicle:
    """One simulated vehicle with an in-memory outbox."""

    tenant: str
    vehicle: str
    seed: int
    host: str
    port: int
    batch_s: float = 10.0
    sent: dict[int, Fix] = field(default_factory=dict)  # seq -> fix, until acknowledged
    acked: set[int] = field(default_factory=set)
    published: int = 0
    plans: dict[int, int] = field(default_factory=dict)  # plan version -> stops
    bad_downlink: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"demo-{self.vehicle}-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv311,
        )
        self.client.username_pw_set(self.vehicle, "demo-device-" + uuid.uuid4().hex)
        self._connections = 0
        self._acks = 0
        state = wt.topic(self.tenant, self.vehicle, wt.Channel.STATE)
        self.client.will_set(state, self._state(online=False), qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message

    def _on_connect(self, client: mqtt.Client, *_: object) -> None:
        client.subscribe(
            [
                (wt.topic(self.tenant, self.vehicle, wt.Channel.STORED), 1),
                (wt.topic(self.tenant, self.vehicle, wt.Channel.COMMANDS), 1),
            ]
        )
        client.publish(
            wt.topic(self.tenant, self.vehicle, wt.Channel.STATE),
            self._state(online=True),
            qos=1,
            retain=True,
        )

    def _state(self, *, online: bool) -> bytes:
        self._connections += 1
        return encode(
            DeviceState(seq=self._connections, online=online, time_us=int(time.time() * 1e6))
        )

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        if msg.topic.endswith(wt.Channel.COMMANDS.value):
            self._on_command(msg)
            return
        try:
            ack = decode_stored_ack(bytes(msg.payload))
        except WireError as err:
            self.bad_downlink += 1
            log.warning("%s: undecodable stored-ack: %s", self.vehicle, err)
            return
        with self.lock:
            for first, last in ack.ranges:
                for seq in range(first, last + 1):
                    if self.sent.pop(seq, None) is not None:
                        self.acked.add(seq)

    def _on_command(self, msg: mqtt.MQTTMessage) -> None:
        """Accept a route plan and acknowledge it (the agent's command handling, simplified)."""
        try:
            command = decode(msg.topic, bytes(msg.payload)).message
        except WireError as err:
            self.bad_downlink += 1
            log.warning("%s: undecodable command: %s", self.vehicle, err)
            return
        if not isinstance(command, Command):
            self.bad_downlink += 1
            return
        stops = command.payload.get("stops", []) if isinstance(command.payload, dict) else []
        with self.lock:
            self.plans[command.version] = len(stops)
            self._acks += 1
            ack_seq = self._acks
        ack = CommandAck(
            seq=ack_seq,
            command_id=command.id,
            command_version=command.version,
            status=AckStatus.APPLIED,
            time_us=int(time.time() * 1e6),
        )
        self.client.publish(
            wt.topic(self.tenant, self.vehicle, wt.Channel.COMMAND_ACKS), encode(ack), qos=1
        )

    def start(self) -> None:
        self.client.connect(self.host, self.port, keepalive=30)
        self.client.loop_start()

    def drive(self, duration_s: float, stop: threading.Event) -> None:
        """Publish the trace in real time, one batch every ``batch_s`` seconds."""
        start_us = int(time.time() * 1e6)
        fixes = simulate_city(
            duration_s, seed=self.seed, start_us=start_us, first_seq=1, dropout=0.0
        )
        topic = wt.topic(self.tenant, self.vehicle, wt.Channel.TELEMETRY)
        per_batch = max(1, round(self.batch_s))
        for chunk in batches(fixes, per_batch):
            # Real time: a batch leaves once its last fix has happened.
            wait_s = chunk[-1].time_us / 1e6 - time.time()
            if wait_s > 0 and stop.wait(wait_s):
                break
            with self.lock:
                for f in chunk:
                    self.sent[f.seq] = f
            self.client.publish(topic, encode_telemetry(chunk), qos=1)
            self.published += len(chunk)

    def resend_unacked(self) -> int:
        """Publish again what was not acknowledged (what the agent's outbox does on a
        timeout); returns how many fixes were resent."""
        with self.lock:
            pending = sorted(self.sent.values(), key=lambda f: f.seq)
        topic = wt.topic(self.tenant, self.vehicle, wt.Channel.TELEMETRY)
        for i in range(0, len(pending), 10):
            self.client.publish(topic, encode_telemetry(pending[i : i + 10]), qos=1)
        return len(pending)

    def stop(self) -> None:
        self.client.publish(
            wt.topic(self.tenant, self.vehicle, wt.Channel.STATE),
            self._state(online=False),
            qos=1,
            retain=True,
        )
        self.client.disconnect()
        self.client.loop_stop()
