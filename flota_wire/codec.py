"""One entry point per direction: ``encode(message)`` and ``decode(topic, payload)``.

The vehicle comes from the topic (which the broker binds to the device's credentials); the
payload's header byte must match the topic's channel.
"""

from __future__ import annotations

from dataclasses import dataclass

from flota_wire import jsoncodec as jc
from flota_wire.envelope import check_envelope
from flota_wire.errors import WireError
from flota_wire.schema import (
    Command,
    CommandAck,
    DeviceState,
    Event,
    SensorBatch,
    StoredAck,
    TelemetryBatch,
    VehicleRef,
)
from flota_wire.telemetry import TYPE_TELEMETRY, decode_telemetry, encode_telemetry
from flota_wire.topics import Channel, parse

Message = TelemetryBatch | SensorBatch | Event | Command | CommandAck | StoredAck | DeviceState

CHANNEL_OF: dict[type, Channel] = {
    TelemetryBatch: Channel.TELEMETRY,
    SensorBatch: Channel.SENSORS,
    Event: Channel.EVENTS,
    CommandAck: Channel.COMMAND_ACKS,
    DeviceState: Channel.STATE,
    Command: Channel.COMMANDS,
    StoredAck: Channel.STORED,
}


@dataclass(frozen=True, slots=True)
class Received:
    """A decoded message with the vehicle and channel its topic named."""

    vehicle: VehicleRef
    channel: Channel
    message: Message


def encode(message: Message) -> bytes:
    """The payload of ``message`` (publish it on ``topic(..., CHANNEL_OF[type(message)])``)."""
    if isinstance(message, TelemetryBatch):
        return encode_telemetry(message)
    if isinstance(message, SensorBatch):
        return jc.encode_sensors(message)
    if isinstance(message, Event):
        return jc.encode_event(message)
    if isinstance(message, Command):
        return jc.encode_command(message)
    if isinstance(message, CommandAck):
        return jc.encode_command_ack(message)
    if isinstance(message, StoredAck):
        return jc.encode_stored_ack(message)
    if isinstance(message, DeviceState):
        return jc.encode_state(message)
    raise WireError(f"not a v1 message: {type(message).__name__}")


# The message type (low 3 bits of the header byte) each channel carries (section 3).
TYPE_OF: dict[Channel, int] = {
    Channel.TELEMETRY: TYPE_TELEMETRY,
    Channel.SENSORS: jc.TYPE_SENSORS,
    Channel.EVENTS: jc.TYPE_EVENT,
    Channel.COMMANDS: jc.TYPE_COMMAND,
    Channel.COMMAND_ACKS: jc.TYPE_COMMAND_ACK,
    Channel.STORED: jc.TYPE_STORED_ACK,
    Channel.STATE: jc.TYPE_STATE,
}


def check_header(channel: Channel, payload: bytes) -> None:
    """The checks that need no decoding: size limits, schema version and message type of the
    header byte against the channel. Raises WireError. A relay (the cloud's bridge) uses this
    and leaves the full decode to the consumer, which must still expect WireError."""
    check_envelope(payload, TYPE_OF[channel])


def decode(topic: str, payload: bytes) -> Received:
    """Decode a payload received on ``topic``; anything wrong raises WireError."""
    address = parse(topic)
    vehicle = VehicleRef(address.tenant, address.vehicle)
    channel = address.channel
    message: Message
    if channel is Channel.TELEMETRY:
        message = decode_telemetry(payload, vehicle)
    elif channel is Channel.SENSORS:
        message = jc.decode_sensors(payload, vehicle)
    elif channel is Channel.EVENTS:
        message = jc.decode_event(payload)
    elif channel is Channel.COMMAND_ACKS:
        message = jc.decode_command_ack(payload)
    elif channel is Channel.STATE:
        message = jc.decode_state(payload)
    elif channel is Channel.COMMANDS:
        message = jc.decode_command(payload)
    else:
        message = jc.decode_stored_ack(payload)
    return Received(vehicle, channel, message)
