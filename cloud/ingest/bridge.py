"""`flota bridge`: MQTT uplink -> Kafka, and Kafka downlink -> MQTT.

Uplink: a (shared) subscription to every vehicle's uplink channels. Each message is checked
(topic inside the contract, device registered, payload decodes), then produced to Kafka keyed
by vehicle, exactly as the vehicle encoded it. The MQTT
acknowledgement goes to the broker only after Kafka acknowledged the record, so a bridge that
crashes loses nothing: the broker redelivers, and the device still holds every fix until the
store's end-to-end acknowledgement. Refused messages go to the quarantine topic with a reason;
nothing is dropped silently.

The v1 payloads do not carry the vehicle: the topic names it, and the broker's ACL lets each
device's credentials publish only on its own topics (``cloud.ingest.mqtt_auth``), so the
topic's vehicle is the authenticated one. The registry check (``cloud.ingest.registry``) turns
away devices that are unknown or unregistered in the ``devices`` table (reason
``unregistered``).

Downlink: "stored up to seq N" acknowledgements and commands from Kafka to each vehicle's
``down/`` topic.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from kafka import KafkaProducer

from cloud.ingest.clients import make_consumer, make_mqtt_client, make_producer
from cloud.ingest.kafka_admin import ensure_topics
from cloud.ingest.kafka_topics import KafkaTopics, vehicle_key
from cloud.ingest.metrics import IngestMetrics
from cloud.ingest.validate import BAD_TOPIC, UNREGISTERED
from cloud.settings import BridgeSettings
from flota_wire import topics as wt

log = logging.getLogger(__name__)

# Checks a payload for its channel; returns a quarantine reason or None when it is good.
PayloadCheck = Callable[[wt.TopicAddress, bytes], str | None]

_UPLINK_TO_KAFKA = {
    wt.Channel.TELEMETRY: "telemetry",
    wt.Channel.SENSORS: "sensors",
    wt.Channel.EVENTS: "events",
    wt.Channel.COMMAND_ACKS: "command_acks",
}
_DOWNLINK = {"stored": wt.Channel.STORED, "commands": wt.Channel.COMMANDS}


@dataclass
class BridgeStats:
    """Counters the bridge exposes (and the demo and tests read)."""

    received: Counter[str] = field(default_factory=Counter)
    forwarded: Counter[str] = field(default_factory=Counter)
    quarantined: Counter[str] = field(default_factory=Counter)
    acked: int = 0
    produce_errors: int = 0
    downlinked: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Bridge:
    """One bridge process; several may share the load through ``$share/{group}``."""

    def __init__(
        self,
        settings: BridgeSettings,
        check: PayloadCheck,
        is_registered: Callable[[str, str], bool] | None = None,
        metrics: IngestMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.topics = KafkaTopics(settings.kafka_topic_prefix)
        self.check = check
        self.is_registered = is_registered
        self.stats = BridgeStats()
        self.metrics = metrics or IngestMetrics("bridge")
        self._stop = threading.Event()
        self.subscribed = threading.Event()
        """Set once the broker confirmed the uplink subscription (before it, a shared
        subscription's messages reach no bridge): readiness for callers and tests."""
        ensure_topics(settings)
        self.producer: KafkaProducer = make_producer(settings, client_id="flota-bridge")
        self.client = make_mqtt_client(settings, settings.mqtt_client_id, prefix="flota-bridge")
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self.subscribed.set()

    # --- uplink ---------------------------------------------------------------------------
    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        _flags: object,
        reason: object,
        _props: object,
    ) -> None:
        log.info("bridge connected to MQTT (%s)", reason)
        group = self.settings.share_group
        subs = [(wt.subscription(ch, group), 1) for ch in _UPLINK_TO_KAFKA]
        client.subscribe(subs)

    def _on_message(self, client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        received_ms = int(time.time() * 1000)
        try:
            addr = wt.parse(msg.topic)
        except wt.TopicError as err:
            self.metrics.messages_in.labels("bridge", "invalid").inc()
            self._quarantine(msg, None, BAD_TOPIC, str(err), received_ms)
            return
        self._count("received", addr.channel.name)
        self.metrics.messages_in.labels("bridge", addr.channel.name).inc()
        if self.is_registered is not None and not self.is_registered(addr.tenant, addr.vehicle):
            self._quarantine(msg, addr, UNREGISTERED, "", received_ms)
            return
        payload = bytes(msg.payload)
        reason = self.check(addr, payload)
        if reason is not None:
            self._quarantine(msg, addr, reason, "", received_ms)
            return
        kafka_topic = getattr(self.topics, _UPLINK_TO_KAFKA[addr.channel])
        self._produce(
            msg,
            kafka_topic=kafka_topic,
            key=vehicle_key(addr.tenant, addr.vehicle),
            value=payload,
            headers=[("received_ms", str(received_ms).encode())],
            counter=addr.channel.name,
            received_ms=received_ms,
        )

    def _quarantine(
        self,
        msg: mqtt.MQTTMessage,
        addr: wt.TopicAddress | None,
        reason: str,
        detail: str,
        received_ms: int,
    ) -> None:
        log.warning(
            "quarantine",
            extra={"reason": reason, "topic": msg.topic, "detail": detail[:200]},
        )
        with self.stats.lock:
            self.stats.quarantined[reason] += 1
        self.metrics.quarantine(reason)
        key = vehicle_key(addr.tenant, addr.vehicle) if addr else b""
        headers = [
            ("reason", reason.encode()),
            ("detail", detail.encode()[:500]),
            ("topic", msg.topic.encode()[:500]),
            ("received_ms", str(received_ms).encode()),
        ]
        self._produce(
            msg,
            kafka_topic=self.topics.quarantine,
            key=key,
            value=bytes(msg.payload),
            headers=headers,
            counter=None,
            received_ms=received_ms,
        )

    def _produce(
        self,
        msg: mqtt.MQTTMessage,
        *,
        kafka_topic: str,
        key: bytes,
        value: bytes,
        headers: list[tuple[str, bytes]],
        counter: str | None,
        received_ms: int,
    ) -> None:
        mid, qos = msg.mid, msg.qos
        m = self.metrics

        def done(_meta: object) -> None:
            if qos > 0:
                self.client.ack(mid, qos)
            m.produce_seconds.labels("bridge").observe(time.time() - received_ms / 1000)
            with self.stats.lock:
                self.stats.acked += 1
                if counter is not None:
                    self.stats.forwarded[counter] += 1
            if counter is not None:
                m.messages_out.labels("bridge", counter).inc()

        def failed(err: BaseException) -> None:
            # Not acknowledged: the broker redelivers to a (re)connected bridge, and the device
            # keeps the data until the end-to-end acknowledgement anyway.
            log.error("kafka produce to %s failed: %s", kafka_topic, err)
            m.errors.labels("bridge", "produce").inc()
            with self.stats.lock:
                self.stats.produce_errors += 1

        future = self.producer.send(kafka_topic, key=key, value=value, headers=headers)
        future.add_callback(done)
        future.add_errback(failed)

    def _count(self, kind: str, name: str) -> None:
        with self.stats.lock:
            getattr(self.stats, kind)[name] += 1

    # --- downlink -------------------------------------------------------------------------
    def _downlink_loop(self) -> None:
        consumer = make_consumer(
            self.settings,
            group=f"{self.settings.kafka_topic_prefix}-bridge-downlink",
            topics=[self.topics.stored, self.topics.commands],
            client_id="flota-bridge-downlink",
        )
        by_topic = {self.topics.stored: "stored", self.topics.commands: "commands"}
        try:
            while not self._stop.is_set():
                polled = consumer.poll(timeout_ms=200)
                if not polled:
                    continue
                infos = []
                for tp, records in polled.items():
                    channel = _DOWNLINK[by_topic[tp.topic]]
                    for rec in records:
                        tenant, _, vehicle = (
                            (rec.key or b"").decode(errors="replace").partition("/")
                        )
                        try:
                            mqtt_topic = wt.topic(tenant, vehicle, channel)
                        except wt.TopicError as err:
                            log.warning("downlink record with bad key %r: %s", rec.key, err)
                            continue
                        infos.append(self.client.publish(mqtt_topic, rec.value, qos=1))
                        self._count("downlinked", channel.name)
                        self.metrics.messages_out.labels("bridge", f"down_{channel.name}").inc()
                if _all_published(infos):
                    consumer.commit()
                    continue
                # Not delivered (MQTT down, or the broker slow to acknowledge): the offsets stay
                # where they were and the batch is read again once the broker is back. A
                # command or stored-ack may then reach a vehicle twice; both are idempotent.
                self.metrics.errors.labels("bridge", "downlink_publish").inc()
                for tp, records in polled.items():
                    consumer.seek(tp, records[0].offset)
                self._stop.wait(1.0)
        finally:
            consumer.close()

    # --- lifecycle ------------------------------------------------------------------------
    def run(self, stop: threading.Event | None = None) -> None:
        """Run until ``stop`` is set (or forever)."""
        if stop is not None:
            self._stop = stop
        self.client.connect(self.settings.mqtt_host, self.settings.mqtt_port, keepalive=30)
        self.client.loop_start()
        downlink = threading.Thread(target=self._downlink_loop, name="downlink", daemon=True)
        downlink.start()
        try:
            while not self._stop.wait(1.0):
                pass
        finally:
            self.producer.flush(timeout=10)
            self.client.disconnect()
            self.client.loop_stop()
            downlink.join(timeout=5)
            self.producer.close(timeout=5)


def _all_published(infos: list[mqtt.MQTTMessageInfo], timeout_s: float = 30.0) -> bool:
    """True once the broker acknowledged every publish (QoS 1 PUBACK); False, with the reason
    logged, when the client is not connected or an acknowledgement does not come in time."""
    deadline = time.monotonic() + timeout_s
    for info in infos:
        try:
            info.wait_for_publish(timeout=max(0.0, deadline - time.monotonic()))
        except (RuntimeError, ValueError) as err:  # paho: not connected, or queue full
            log.warning("downlink publish failed (%s): the batch will be read again", err)
            return False
        if not info.is_published():
            log.warning("downlink publish not acknowledged in %.0f s: the batch will be read"
                        " again", timeout_s)  # fmt: skip
            return False
    return True
