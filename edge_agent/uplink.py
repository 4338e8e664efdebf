"""MQTT uplink: publishes the outbox, receives commands and the end-to-end acknowledgement.

paho-mqtt 2.x with its own network thread (``loop_start``), which reconnects with exponential
backoff. Persistent session (stable client id; MQTT 5 session expiry, or clean_session=False on
3.1.1) so commands queued while the vehicle was offline arrive. Retained last will: an
"offline" ``DeviceState`` whose seq is the persisted connection counter; "online" with the same
seq on every connect.

Delivery is go-back-N over the outbox: after each (re)connect the cursor starts again at the
oldest queued row, so everything not yet acknowledged is replayed in order; batches in flight
are limited; a batch whose rows are still queued ``resend_after_s`` after it was sent makes the
cursor go back too. Rows are deleted only by a ``StoredAck`` (``down/stored``) naming their
seqs. The cloud's unique keys make every resend harmless. Streams the cloud does not store-ack
yet (command acks; events with ``events_ack="puback"``) are deleted on the broker's PUBACK.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge_agent import __version__
from edge_agent.outbox import TELEMETRY, Outbox
from flota_wire import (
    Channel,
    Command,
    DeviceState,
    SensorBatch,
    SensorSample,
    StoredAck,
    TelemetryBatch,
    VehicleRef,
    WireError,
    decode,
    encode,
    topic,
)
from flota_wire.acks import accepts_stored_ack, merge_ranges

log = logging.getLogger(__name__)

_MESSAGE_CHANNEL = {"events": Channel.EVENTS, "acks": Channel.COMMAND_ACKS}


@dataclass(frozen=True)
class UplinkConfig:
    tenant: str
    vehicle: str
    host: str
    port: int
    username: str
    password: str
    client_id: str
    mqtt5: bool = True
    keepalive_s: int = 30
    session_expiry_s: int = 7 * 86400
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    batch_interval_s: float = 10.0
    batch_max_fixes: int = 250
    inflight_batches: int = 20
    resend_after_s: float = 60.0
    events_ack: str = "stored"  # wait for a StoredAck of stream "events"; "puback": not
    topic_alias: bool = True  # MQTT 5: telemetry topic sent once per connection
    reconnect_min_s: int = 1
    reconnect_max_s: int = 60
    # Stored acks are believed only when they name this cloud; None: from any cloud.
    cloud_id: str | None = None


@dataclass
class _InFlight:
    first: int
    last: int
    sent: float  # monotonic


class Uplink:
    """Owns the MQTT client. ``pump()`` is called from the agent's loop; paho's callbacks run
    on paho's thread; shared state is behind one lock."""

    def __init__(
        self,
        config: UplinkConfig,
        outbox: Outbox,
        on_command: Callable[[Command], None],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.outbox = outbox
        self.on_command = on_command
        self._mono = monotonic
        self.vehicle = VehicleRef(config.tenant, config.vehicle)
        self.topics = {ch: topic(config.tenant, config.vehicle, ch) for ch in Channel}
        self.counters: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._connected = False
        self._cursor: dict[str, int] = {}
        self._inflight: dict[str, list[_InFlight]] = {}
        self._puback: dict[int, tuple[str, int]] = {}  # mid -> (stream, seq)
        self._last_telemetry = -1e18
        self._backlog = True
        self._conn_seq = 0
        self._timeouts = 0  # replays for lack of acks since the last ack that deleted rows
        self._messages_dirty = True
        self._alias_ok = False  # the broker allows a topic alias on this connection
        self._alias_sent = False  # ... and it has been set by a publish carrying the topic
        self._telemetry_topic = self.topics[Channel.TELEMETRY].encode()
        self.client = self._make_client()

    # -- client ------------------------------------------------------------------------
    def _make_client(self) -> mqtt.Client:
        c = self.config
        if c.mqtt5:
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2, client_id=c.client_id, protocol=mqtt.MQTTv5
            )
        else:
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=c.client_id,
                protocol=mqtt.MQTTv311,
                clean_session=False,
            )
        client.username_pw_set(c.username, c.password)
        if c.tls_ca is not None:
            client.tls_set(
                ca_certs=str(c.tls_ca),
                certfile=str(c.tls_cert) if c.tls_cert else None,
                keyfile=str(c.tls_key) if c.tls_key else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        client.reconnect_delay_set(c.reconnect_min_s, c.reconnect_max_s)
        client.max_inflight_messages_set(max(20, c.inflight_batches * 2))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        return client

    def _set_will(self) -> None:
        """A fresh connection number for the next connect, persisted before it is used."""
        self._conn_seq = self.outbox.bump("connections")
        will = DeviceState(seq=self._conn_seq, online=False, time_us=_now_us())
        self.client.will_set(self.topics[Channel.STATE], encode(will), qos=1, retain=True)

    def start(self) -> None:
        c = self.config
        self._set_will()
        props = None
        kwargs: dict[str, Any] = {}
        if c.mqtt5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = c.session_expiry_s
            kwargs = {"clean_start": False, "properties": props}
        self.client.connect_async(c.host, c.port, keepalive=c.keepalive_s, **kwargs)
        self.client.loop_start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Say "offline" (a clean disconnect sends no will) and stop the network thread."""
        if self.connected:
            state = DeviceState(seq=self._conn_seq, online=False, time_us=_now_us())
            info = self.client.publish(
                self.topics[Channel.STATE], encode(state), qos=1, retain=True
            )
            try:
                info.wait_for_publish(timeout_s)
            except (RuntimeError, ValueError) as err:
                log.debug("offline state not confirmed: %s", err)
        self.client.disconnect()
        self.client.loop_stop()

    @property
    def connected(self) -> bool:
        return self._connected

    # -- paho callbacks (paho's thread) ------------------------------------------------
    def _on_connect(
        self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, props: Any = None
    ) -> None:
        if rc.is_failure:
            self.counters["connect_refused"] += 1
            log.warning("mqtt: connection refused: %s", rc)
            return
        self.counters["connected"] += 1
        self._restore_alias_topics(client)
        alias_max = getattr(props, "TopicAliasMaximum", 0) if props is not None else 0
        self._alias_ok = self.config.mqtt5 and self.config.topic_alias and alias_max >= 1
        self._alias_sent = False
        log.info("mqtt: connected (connection %d)", self._conn_seq)
        state = DeviceState(
            seq=self._conn_seq, online=True, time_us=_now_us(), agent_version=__version__
        )
        client.publish(self.topics[Channel.STATE], encode(state), qos=1, retain=True)
        client.subscribe([(self.topics[Channel.COMMANDS], 1), (self.topics[Channel.STORED], 1)])
        with self._lock:
            self._go_back("connect")
            self._connected = True

    def _restore_alias_topics(self, client: mqtt.Client) -> None:
        """Publishes still in paho's queue are resent right after this callback, on a new
        connection that knows no alias: give the alias-only ones their topic back (a PUBLISH
        with topic and alias is valid and sets the alias again). paho keeps that queue in a
        private attribute; if it is ever gone, aliases are simply not used."""
        out = getattr(client, "_out_messages", None)
        lock = getattr(client, "_out_message_mutex", None)
        if out is None or lock is None:
            self.config = replace(self.config, topic_alias=False)
            return
        with lock:
            for m in out.values():
                if not m.topic:
                    m.topic = self._telemetry_topic
                    self.counters["alias_topic_restored"] += 1

    def _on_subscribe(self, _c: Any, _u: Any, _mid: int, codes: Any, _p: Any = None) -> None:
        for code in codes:
            if getattr(code, "is_failure", False):
                self.counters["subscribe_refused"] += 1
                log.error("mqtt: subscription refused: %s", code)

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        with self._lock:
            self._connected = False
            self._puback.clear()
        self.counters["disconnected"] += 1
        log.warning("mqtt: disconnected: %s", rc)
        try:
            self._set_will()  # paho reconnects on its own; the next CONNECT carries this will
        except Exception as err:  # the outbox is gone (shutting down): keep the old will
            log.debug("will not renewed: %s", err)

    def _on_publish(self, _c: Any, _u: Any, mid: int, rc: Any, _p: Any = None) -> None:
        with self._lock:
            target = self._puback.pop(mid, None)
        if target is None:
            return
        if getattr(rc, "is_failure", False):
            self.counters["publish_refused"] += 1
            log.error("mqtt: publish refused by the broker: %s", rc)
            return
        stream, seq = target
        self.outbox.ack(stream, [(seq, seq)])
        self.counters[f"puback_deleted_{stream}"] += 1

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            received = decode(msg.topic, bytes(msg.payload))
        except WireError as err:
            self.counters["bad_downlink"] += 1
            log.warning("mqtt: bad downlink on %s: %s", msg.topic, err)
            return
        if (received.vehicle.tenant, received.vehicle.vehicle) != (
            self.config.tenant,
            self.config.vehicle,
        ):
            self.counters["foreign_downlink"] += 1
            log.warning("mqtt: downlink for another vehicle on %s", msg.topic)
            return
        message = received.message
        try:
            if isinstance(message, StoredAck):
                if accepts_stored_ack(message, self.config.cloud_id):
                    self.handle_stored(message)
                else:  # another cloud on this broker, or one that does not name itself
                    self.counters["stored_acks_foreign_cloud"] += 1
                    log.debug("mqtt: stored ack from cloud %r ignored", message.cloud)
            elif isinstance(message, Command):
                self.counters["commands"] += 1
                self.on_command(message)
        except Exception:  # never let a downlink kill the network thread
            self.counters["downlink_errors"] += 1
            log.exception("mqtt: handling downlink on %s failed", msg.topic)

    # -- acknowledgements ---------------------------------------------------------------
    def handle_stored(self, ack: StoredAck) -> int:
        """Delete the acknowledged rows; return how many went."""
        stream = str(ack.stream)
        ranges = merge_ranges(ack.ranges)
        if stream == "sensors":  # never queued here (see Agent._sensors): count, no delete
            self.counters["stored_acks_sensors"] += 1
            self.counters["sensor_samples_stored"] += sum(b - a + 1 for a, b in ranges)
            return 0
        deleted = self.outbox.ack(stream, ranges)
        if deleted:
            self._timeouts = 0  # the cloud is acknowledging again
        self.counters[f"stored_acks_{stream}"] += 1
        self.counters[f"stored_deleted_{stream}"] += deleted
        with self._lock:
            flights = list(self._inflight.get(stream, []))
        # A batch is done when none of its rows is queued any more. Its seqs may have gaps
        # (rows acknowledged earlier), so an ack of exactly its rows need not cover first..last.
        done = {
            id(f)
            for f in flights
            if any(a <= f.last and f.first <= b for a, b in ranges)
            and not self.outbox.any_in_range(stream, f.first, f.last)
        }
        with self._lock:
            self._inflight[stream] = [
                f for f in self._inflight.get(stream, []) if id(f) not in done
            ]
        return deleted

    def _go_back(self, why: str) -> None:
        """Replay from the oldest queued row (caller holds the lock)."""
        self._cursor.clear()
        self._inflight.clear()
        self._backlog = True
        self._messages_dirty = True
        self.counters[f"replay_{why}"] += 1

    # -- sending (agent thread) --------------------------------------------------------
    def pump(self) -> int:
        """Publish what is due; return the number of messages handed to paho."""
        if not self._connected:
            return 0
        sent = 0
        stored_events = self.config.events_ack == "stored"
        if stored_events:
            self._check_timeouts("events")
        if self._messages_dirty:
            self._messages_dirty = False
            sent += self._pump_messages("acks", puback=True)
            sent += self._pump_messages("events", puback=not stored_events)
        sent += self._pump_telemetry()
        return sent

    def resend_after(self) -> float:
        """``resend_after_s``, doubled per replay that brought no ack (at most 4x): a cloud
        that is down or far behind is not sent the same window again and again."""
        return self.config.resend_after_s * float(1 << min(self._timeouts, 2))

    def _check_timeouts(self, stream: str) -> None:
        now = self._mono()
        with self._lock:
            flights = self._inflight.get(stream)
            if not flights or now - flights[0].sent < self.resend_after():
                return
            oldest = flights[0]
        if self.outbox.any_in_range(stream, oldest.first, oldest.last):
            with self._lock:
                self._go_back("timeout")
                self._timeouts += 1
            log.info("uplink: %s %d..%d not stored in time; replaying", stream, oldest.first,
                     oldest.last)  # fmt: skip
        else:
            with self._lock:
                if self._inflight.get(stream) and self._inflight[stream][0] is oldest:
                    self._inflight[stream].pop(0)

    def _pump_telemetry(self) -> int:
        c = self.config
        self._check_timeouts(TELEMETRY)
        now = self._mono()
        if not self._backlog and now - self._last_telemetry < c.batch_interval_s:
            return 0
        sent = 0
        while True:
            with self._lock:
                if not self._connected:
                    return sent
                flights = self._inflight.setdefault(TELEMETRY, [])
                if len(flights) >= c.inflight_batches:
                    self._backlog = True
                    return sent
                cursor = self._cursor.get(TELEMETRY, 0)
            fixes = self.outbox.fixes_after(cursor, c.batch_max_fixes)
            self._backlog = len(fixes) == c.batch_max_fixes
            if not fixes:
                self._last_telemetry = now
                return sent
            payload = encode(TelemetryBatch(self.vehicle, tuple(fixes)))
            info = self._publish_telemetry(payload)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                self.counters["publish_errors"] += 1
                return sent
            with self._lock:
                self._cursor[TELEMETRY] = fixes[-1].seq
                flights.append(_InFlight(fixes[0].seq, fixes[-1].seq, now))
            self.counters["telemetry_batches"] += 1
            self.counters["telemetry_fixes_sent"] += len(fixes)
            self._last_telemetry = now
            sent += 1
            if not self._backlog:
                return sent

    def notify_messages(self) -> None:
        """A message was queued: the next pump looks for it."""
        self._messages_dirty = True

    def _publish_telemetry(self, payload: bytes) -> mqtt.MQTTMessageInfo:
        if not self._alias_ok:
            return self.client.publish(self.topics[Channel.TELEMETRY], payload, qos=1)
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.TopicAlias = 1
        name = "" if self._alias_sent else self.topics[Channel.TELEMETRY]
        self._alias_sent = True
        if not name:
            self.counters["telemetry_alias_only"] += 1
        return self.client.publish(name, payload, qos=1, properties=props)

    def _pump_messages(self, stream: str, *, puback: bool) -> int:
        with self._lock:
            cursor = self._cursor.get(stream, 0)
        rows = self.outbox.messages_after(stream, cursor, 100)
        for row in rows:
            info = self.client.publish(self.topics[_MESSAGE_CHANNEL[stream]], row.payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                self.counters["publish_errors"] += 1
                self._messages_dirty = True
                break
            with self._lock:
                self._cursor[stream] = row.seq
                if puback:
                    self._puback[info.mid] = (stream, row.seq)
                else:
                    self._inflight.setdefault(stream, []).append(
                        _InFlight(row.seq, row.seq, self._mono())
                    )
            self.counters[f"{stream}_sent"] += 1
        if len(rows) == 100:
            self._messages_dirty = True
        return len(rows)

    def publish_sensors(self, samples: list[SensorSample]) -> bool:
        """Hand one sensor batch to paho (QoS 1); False while offline (the caller keeps the
        samples: ``Agent`` holds a bounded buffer of them, not the outbox)."""
        if not samples or not self._connected:
            return False
        try:
            payload = encode(SensorBatch(self.vehicle, tuple(samples)))
        except WireError as err:
            self.counters["sensor_encode_errors"] += 1
            log.warning("sensor batch not encodable: %s", err)
            return True  # never sendable: the caller must not keep it
        info = self.client.publish(self.topics[Channel.SENSORS], payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            self.counters["publish_errors"] += 1
            return False
        self.counters["sensor_batches"] += 1
        self.counters["sensor_samples_sent"] += len(samples)
        return True


def _now_us() -> int:
    return time.time_ns() // 1000
