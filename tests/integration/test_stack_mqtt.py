"""Mosquitto of the local stack, for real: generated credentials and the per-device ACL.

A device publishes only under its own topics and reads only its own commands; the bridge user
reads every uplink and writes every downlink. "Not delivered" is proven without sleeping: after
the forbidden publish the same device publishes a marker on its own topic, and Mosquitto keeps
one connection's messages in order, so once the marker has arrived the forbidden message would
have arrived before it.
"""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.reasoncodes import ReasonCode
from stack_support import MqttBroker, MqttDevice, MqttUser

from flota_wire.topics import Channel, subscription, topic

pytestmark = pytest.mark.integration

WAIT_S = 10.0
# MQTT 5 "Not authorized". Mosquitto also answers a bad password with it (MQTT 5), or with the
# 3.1.1 CONNACK code 5, which paho reports as the same reason code.
NOT_AUTHORIZED = 135
V311_SUBACK_FAILURE = 0x80


class Session:
    """A paho client driven synchronously: each call waits for the broker's answer."""

    def __init__(
        self, broker: MqttBroker, user: MqttUser, protocol: mqtt.MQTTProtocolVersion
    ) -> None:
        self.broker = broker
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"test-{user.username}-{uuid.uuid4().hex[:8]}",
            protocol=protocol,
            reconnect_on_failure=False,
        )
        self.client.username_pw_set(user.username, user.password)
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._connected = threading.Event()
        self.connack: ReasonCode | None = None
        self._acks: dict[int, queue.Queue[list[ReasonCode]]] = {}
        self._lock = threading.Lock()
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish
        self.client.on_message = lambda _c, _u, msg: self.messages.put(msg)

    def _on_connect(self, _c: object, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
        self.connack = rc
        self._connected.set()

    def _ack_queue(self, mid: int) -> queue.Queue[list[ReasonCode]]:
        with self._lock:
            return self._acks.setdefault(mid, queue.Queue())

    def _on_subscribe(
        self, _c: object, _u: object, mid: int, rcs: list[ReasonCode], _p: object
    ) -> None:
        self._ack_queue(mid).put(list(rcs))

    def _on_publish(self, _c: object, _u: object, mid: int, rc: ReasonCode, _p: object) -> None:
        self._ack_queue(mid).put([rc])

    def connect(self) -> ReasonCode:
        self.client.connect(self.broker.host, self.broker.port, keepalive=30)
        self.client.loop_start()
        assert self._connected.wait(WAIT_S), "no CONNACK from Mosquitto"
        assert self.connack is not None
        return self.connack

    def subscribe(self, topic_filter: str) -> ReasonCode:
        _, mid = self.client.subscribe(topic_filter, qos=1)
        assert mid is not None
        return self._ack_queue(mid).get(timeout=WAIT_S)[0]

    def publish(self, topic_name: str, payload: bytes) -> ReasonCode:
        """Publish at QoS 1; return the PUBACK's reason code (always success on 3.1.1)."""
        info = self.client.publish(topic_name, payload, qos=1)
        return self._ack_queue(info.mid).get(timeout=WAIT_S)[0]

    def receive_until(self, payload: bytes) -> list[mqtt.MQTTMessage]:
        """Every message received until (and including) the one carrying ``payload``."""
        seen: list[mqtt.MQTTMessage] = []
        while True:
            msg = self.messages.get(timeout=WAIT_S)
            seen.append(msg)
            if msg.payload == payload:
                return seen

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def sessions(mqtt_broker: MqttBroker) -> Iterator[list[Session]]:
    opened: list[Session] = []
    yield opened
    for session in opened:
        session.close()


@pytest.fixture(params=[mqtt.MQTTv5, mqtt.MQTTv311], ids=["mqtt5", "mqtt311"])
def protocol(request: pytest.FixtureRequest) -> mqtt.MQTTProtocolVersion:
    return request.param  # type: ignore[no-any-return]


def _open(
    sessions: list[Session],
    broker: MqttBroker,
    user: MqttUser,
    protocol: mqtt.MQTTProtocolVersion = mqtt.MQTTv5,
) -> Session:
    session = Session(broker, user, protocol)
    sessions.append(session)
    rc = session.connect()
    assert not rc.is_failure, f"{user.username} refused at CONNECT: {rc}"
    return session


def _two_devices(broker: MqttBroker) -> tuple[MqttDevice, MqttDevice]:
    assert len(broker.devices) >= 2, "the device registry must list at least two devices"
    return broker.devices[0], broker.devices[1]


def _nonce(label: str) -> bytes:
    return f"{label}-{uuid.uuid4().hex}".encode()


def test_device_telemetry_reaches_the_bridge(
    mqtt_broker: MqttBroker, sessions: list[Session], protocol: mqtt.MQTTProtocolVersion
) -> None:
    device, _ = _two_devices(mqtt_broker)
    bridge = _open(sessions, mqtt_broker, mqtt_broker.bridge, protocol)
    assert not bridge.subscribe(subscription(Channel.TELEMETRY)).is_failure
    sender = _open(sessions, mqtt_broker, device, protocol)

    payload = _nonce("fix")
    own_topic = topic(device.tenant, device.vehicle, Channel.TELEMETRY)
    assert not sender.publish(own_topic, payload).is_failure

    received = bridge.receive_until(payload)[-1]
    assert received.topic == own_topic
    assert received.qos == 1


def test_bridge_shared_subscription_receives(
    mqtt_broker: MqttBroker, sessions: list[Session]
) -> None:
    device, _ = _two_devices(mqtt_broker)
    bridge = _open(sessions, mqtt_broker, mqtt_broker.bridge)
    rc = bridge.subscribe(subscription(Channel.EVENTS, group="bridge"))
    assert not rc.is_failure, f"shared subscription refused: {rc}"
    sender = _open(sessions, mqtt_broker, device)

    payload = _nonce("event")
    assert not sender.publish(
        topic(device.tenant, device.vehicle, Channel.EVENTS), payload
    ).is_failure
    assert bridge.receive_until(payload)[-1].payload == payload


def test_publish_to_another_devices_topic_is_refused(
    mqtt_broker: MqttBroker, sessions: list[Session], protocol: mqtt.MQTTProtocolVersion
) -> None:
    device, other = _two_devices(mqtt_broker)
    bridge = _open(sessions, mqtt_broker, mqtt_broker.bridge, protocol)
    assert not bridge.subscribe(subscription(Channel.TELEMETRY)).is_failure
    intruder = _open(sessions, mqtt_broker, device, protocol)

    forged = _nonce("forged")
    rc = intruder.publish(topic(other.tenant, other.vehicle, Channel.TELEMETRY), forged)
    if protocol == mqtt.MQTTv5:
        assert rc.value == NOT_AUTHORIZED, f"expected PUBACK 'Not authorized', got {rc}"
    marker = _nonce("marker")
    assert not intruder.publish(
        topic(device.tenant, device.vehicle, Channel.TELEMETRY), marker
    ).is_failure

    seen = bridge.receive_until(marker)
    assert [m.payload for m in seen if m.payload == forged] == []


def test_device_cannot_subscribe_to_another_devices_commands(
    mqtt_broker: MqttBroker, sessions: list[Session], protocol: mqtt.MQTTProtocolVersion
) -> None:
    device, other = _two_devices(mqtt_broker)
    snoop = _open(sessions, mqtt_broker, device, protocol)
    rc = snoop.subscribe(topic(other.tenant, other.vehicle, Channel.COMMANDS))
    assert rc.is_failure
    assert rc.value == (NOT_AUTHORIZED if protocol == mqtt.MQTTv5 else V311_SUBACK_FAILURE)
    # A wildcard over the tenant's vehicles is refused too, not narrowed to the device's own.
    wide = snoop.subscribe(f"flota/v1/{other.tenant}/+/down/commands")
    assert wide.is_failure


def test_device_receives_only_its_own_commands(
    mqtt_broker: MqttBroker, sessions: list[Session]
) -> None:
    device, other = _two_devices(mqtt_broker)
    receiver = _open(sessions, mqtt_broker, device)
    assert not receiver.subscribe(topic(device.tenant, device.vehicle, Channel.COMMANDS)).is_failure
    bridge = _open(sessions, mqtt_broker, mqtt_broker.bridge)

    not_mine = _nonce("cmd-other")
    mine = _nonce("cmd-mine")
    assert not bridge.publish(
        topic(other.tenant, other.vehicle, Channel.COMMANDS), not_mine
    ).is_failure
    assert not bridge.publish(
        topic(device.tenant, device.vehicle, Channel.COMMANDS), mine
    ).is_failure

    seen = receiver.receive_until(mine)
    assert [m.payload for m in seen] == [mine]


def test_device_cannot_write_downlink(mqtt_broker: MqttBroker, sessions: list[Session]) -> None:
    device, _ = _two_devices(mqtt_broker)
    session = _open(sessions, mqtt_broker, device)
    rc = session.publish(topic(device.tenant, device.vehicle, Channel.COMMANDS), b"self-command")
    assert rc.value == NOT_AUTHORIZED


@pytest.mark.parametrize("password", ["wrong-password", ""])
def test_wrong_password_is_refused_at_connect(
    mqtt_broker: MqttBroker, protocol: mqtt.MQTTProtocolVersion, password: str
) -> None:
    device, _ = _two_devices(mqtt_broker)
    session = Session(mqtt_broker, MqttUser(device.username, password), protocol)
    try:
        rc = session.connect()
    finally:
        session.close()
    assert rc.is_failure
    assert rc.value == NOT_AUTHORIZED, f"unexpected CONNACK {rc}"


def test_unknown_user_is_refused_at_connect(mqtt_broker: MqttBroker) -> None:
    session = Session(mqtt_broker, MqttUser("nobody.none", "x"), mqtt.MQTTv5)
    try:
        rc = session.connect()
    finally:
        session.close()
    assert rc.value == NOT_AUTHORIZED
